"""JetStream in INFO and on the monitoring port."""
from __future__ import annotations

import json
import urllib.request

import pytest

from rawconn import RawConn

pytestmark = pytest.mark.jetstream


def get(server, path: str):
    with urllib.request.urlopen(server.monitor_url + path, timeout=3) as r:
        return r.status, json.loads(r.read())


def test_info_advertisesJetStreamAndApiLevel(js_server):
    with RawConn(js_server.port) as c:
        assert c.info["jetstream"] is True
        assert isinstance(c.info.get("api_lvl"), int) and c.info["api_lvl"] >= 1, c.info


@pytest.mark.single_node(reason="/jsz counts what one node stores; a stream lives on some nodes only")
async def test_jsz_countsStreamsConsumersMessages(js, js_server, uniq):
    _, before = get(js_server, "/jsz")
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    for _ in range(3):
        await js.publish(f"{uniq}.x", b"abc")
    await js.add_consumer(uniq, durable_name="c")
    status, z = get(js_server, "/jsz")
    assert status == 200
    for key in ("memory", "storage", "streams", "consumers", "messages", "bytes", "api", "config", "server_id", "now"):
        assert key in z, key
    assert z["streams"] >= before["streams"] + 1
    assert z["consumers"] >= before["consumers"] + 1
    assert z["messages"] >= before["messages"] + 3
    assert z["bytes"] > before["bytes"]
    assert z["api"]["total"] > before["api"]["total"]


@pytest.mark.single_node(reason="store_dir is per node")
def test_varz_jetstreamSection(js_server):
    _, v = get(js_server, "/varz")
    js = v["jetstream"]
    assert "config" in js and "store_dir" in js["config"]
    assert js["config"]["store_dir"].startswith(js_server.tmpdir)


@pytest.mark.parametrize("query", ["", "?js-enabled-only=true", "?js-server-only=true"])
def test_healthz_withJetStream_ok(js_server, query):
    assert get(js_server, "/healthz" + query) == (200, {"status": "ok"})
