"""Monitoring endpoints: status codes, content type and the field names tools read."""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from rawconn import RawConn


def get(server, path: str):
    with urllib.request.urlopen(server.monitor_url + path, timeout=3) as r:
        return r.status, r.headers.get("Content-Type", ""), json.loads(r.read())


def test_healthz_ok(server):
    status, ctype, body = get(server, "/healthz")
    assert status == 200
    assert "application/json" in ctype
    assert body == {"status": "ok"}


def test_healthz_jsServerOnly_ok(server):
    status, _, body = get(server, "/healthz?js-server-only=true")
    assert (status, body) == (200, {"status": "ok"})


def test_jsz_withoutJetStream_isAnEmptyReportMarkedDisabled(server):
    status, _, body = get(server, "/jsz")
    assert status == 200
    assert body["disabled"] is True
    assert (body["memory"], body["storage"], body["accounts"], body["ha_assets"]) == (0, 0, 0, 0)
    with RawConn(server.port) as c:
        assert body["server_id"] == c.info["server_id"]


def test_varz_identityAndLimits(server):
    _, ctype, v = get(server, "/varz")
    assert "application/json" in ctype
    with RawConn(server.port) as c:
        info = c.info
    assert v["server_id"] == info["server_id"]
    assert v["server_name"] == info["server_name"]
    assert v["version"] == info["version"]
    assert v["proto"] == 1
    assert v["host"] == "127.0.0.1"
    assert v["port"] == server.port
    assert v["http_port"] == server.monitor_port
    assert v["max_payload"] == 1048576
    assert v["max_control_line"] == 4096
    assert v["max_connections"] == 65536
    assert v["ping_interval"] == 120_000_000_000
    assert v["ping_max"] == 2
    assert v["auth_timeout"] == 2
    for key in ("start", "now"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", v[key]), v[key]
    assert isinstance(v["uptime"], str) and v["uptime"][-1] == "s"


def test_varz_countersMove(server):
    _, _, before = get(server, "/varz")
    with RawConn(server.port) as c:
        c.connect()
        assert c.roundtrip(b"SUB varz.t 1\r\n" + b"PUB varz.t 5\r\nhello\r\n" * 10) == b"MSG varz.t 1 5\r\nhello\r\n" * 10
        _, _, during = get(server, "/varz")
        assert during["connections"] >= 1
        assert during["subscriptions"] >= 1
    assert during["total_connections"] >= before["total_connections"] + 1
    assert during["in_msgs"] >= before["in_msgs"] + 10
    assert during["out_msgs"] >= before["out_msgs"] + 10
    assert during["in_bytes"] >= before["in_bytes"] + 50
    assert during["out_bytes"] >= before["out_bytes"] + 50


def test_connz_listsOpenConnection(server):
    with RawConn(server.port) as c:
        c.connect(b'CONNECT {"verbose":false,"name":"connz-probe","lang":"raw","version":"0"}\r\n')
        assert c.roundtrip(b"SUB connz.a 1\r\n") == b""
        _, _, z = get(server, "/connz?subs=1")
        for key in ("server_id", "now", "num_connections", "total", "offset", "limit", "connections"):
            assert key in z, key
        mine = [x for x in z["connections"] if x.get("name") == "connz-probe"]
        assert len(mine) == 1, z
        assert mine[0]["cid"] == c.info["client_id"]
        assert mine[0]["ip"] == "127.0.0.1"
        assert mine[0]["lang"] == "raw"
        assert "connz.a" in mine[0]["subscriptions_list"]


def test_subsz_countsSubscriptions(server):
    with RawConn(server.port) as c:
        c.connect()
        _, _, before = get(server, "/subsz")
        assert c.roundtrip(b"".join(b"SUB subsz.%d %d\r\n" % (i, i) for i in range(50))) == b""
        _, _, during = get(server, "/subsz")
        assert c.roundtrip(b"".join(b"UNSUB %d\r\n" % i for i in range(50))) == b""
        _, _, after = get(server, "/subsz")
    # other tests' connections may still be closing, so compare against both neighbours
    assert during["num_subscriptions"] - after["num_subscriptions"] >= 50 or \
        during["num_subscriptions"] - before["num_subscriptions"] >= 50, (before, during, after)
    assert during["num_inserts"] >= before["num_inserts"] + 50
    assert after["num_removes"] >= during["num_removes"] + 50
    for key in ("server_id", "now", "num_subscriptions", "num_cache", "num_inserts", "num_removes",
                "num_matches", "max_fanout", "avg_fanout"):
        assert key in during, key


def test_routez_standalone_noRoutes(server):
    _, _, r = get(server, "/routez")
    assert r["num_routes"] == 0
    assert r["routes"] == []
    with RawConn(server.port) as c:
        assert r["server_id"] == c.info["server_id"]


def test_unknownPath_is404(server):
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(server.monitor_url + "/no-such-endpoint", timeout=3)
    assert ei.value.code == 404


# Fields read by dashboards and prometheus-nats-exporter, all present in nats-server's /varz.
VARZ_KEYS = [
    "server_id", "server_name", "version", "proto", "go", "host", "port", "max_connections",
    "ping_interval", "ping_max", "http_host", "http_port", "auth_timeout", "max_control_line",
    "max_payload", "max_pending", "cluster", "tls_timeout", "write_deadline", "start", "now",
    "uptime", "mem", "cores", "cpu", "connections", "total_connections", "routes", "remotes",
    "leafnodes", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "slow_consumers", "subscriptions",
    "config_load_time",
]


def test_varz_hasFieldsToolsRead(server):
    _, _, v = get(server, "/varz")
    missing = [k for k in VARZ_KEYS if k not in v]
    assert missing == []
    for k in ("connections", "total_connections", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
              "slow_consumers", "subscriptions", "routes", "mem", "cores"):
        assert isinstance(v[k], int), (k, v[k])
    assert isinstance(v["cpu"], (int, float))
    assert isinstance(v["cluster"], dict)


def test_subsz_hasPagingFields(server):
    _, _, s = get(server, "/subsz")
    for key in ("total", "offset", "limit"):
        assert key in s, key
