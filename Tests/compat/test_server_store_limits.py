"""The server's JetStream storage limits (`jetstream { max_file_store, max_memory_store }`) with
nats-py, proven against nats-server 2.15.1 and clusterd: a stream whose max_bytes does not fit
beside the others' is refused (10047 file, 10028 memory), and a publish that would take the
server past its limit gets 503/10023 "insufficient resources" and is not stored; a reload
(SIGHUP) that raises the limit lets publishes in again."""
from __future__ import annotations

import asyncio
import signal

import pytest
from nats.js.errors import APIError

import nats
from natsutil import publish_until_refused
from serverproc import ServerProcess

pytestmark = [pytest.mark.jetstream,
              pytest.mark.single_node(reason="starts its own server with storage limits")]

CONF = """
jetstream { store_dir: "%(store)s", max_file_store: 1MB, max_memory_store: 64KB }
"""


@pytest.fixture
async def limited(server_binary, tmp_path):
    conf = tmp_path / "limits.conf"
    conf.write_text(CONF % {"store": str(tmp_path / "store")})
    srv = ServerProcess(server_binary, ["-c", str(conf)])
    nc = None
    try:
        srv.start()
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}", allow_reconnect=False, connect_timeout=2)
        yield nc.jetstream(timeout=3)
    finally:
        if nc is not None:
            await nc.close()
        srv.close()


async def test_streamsMaxBytes_mustFitTheServersLimit(limited):
    js = limited
    with pytest.raises(APIError) as e:
        await js.add_stream(name="BIG", subjects=["big"], max_bytes=2 * 1024 * 1024)
    assert e.value.err_code == 10047
    with pytest.raises(APIError) as e:
        await js.add_stream(name="MEM", subjects=["mem"], storage="memory", max_bytes=65 * 1024)
    assert e.value.err_code == 10028
    await js.add_stream(name="A", subjects=["a"], max_bytes=600_000)
    with pytest.raises(APIError) as e:
        await js.add_stream(name="B", subjects=["b"], max_bytes=500_000)
    assert e.value.err_code == 10047
    await js.add_stream(name="C", subjects=["c"], max_bytes=400_000)
    # No max_bytes: nothing reserved.
    await js.add_stream(name="D", subjects=["d"])


async def test_publishPastTheServersLimit_isRefusedAndNotStored(limited):
    js = limited
    await js.add_stream(name="S", subjects=["s"])
    stored, refusal = await publish_until_refused(js, "s", b"x" * 1000)
    assert refusal is not None, "2,000 KB were accepted under a 1 MB limit"
    assert (refusal.code, refusal.err_code) == (503, 10023)
    assert refusal.description == "insufficient resources"
    assert 900 <= stored <= 1048
    info = await js.stream_info("S")
    assert info.state.messages == stored
    # nats-server refuses once its usage passed the limit (here by less than one message);
    # clusterd refuses the publish that would pass it.
    assert info.state.bytes <= 1024 * 1024 + 1100
    # Room again after a purge (clusterd recounts its usage every 1.5 s).
    await js.purge_stream("S")
    ack = await _publish_once_admitted(js, "s", b"y", "the purge")
    assert ack.seq == stored + 1


async def _publish_once_admitted(js, subject: str, data: bytes, after: str):
    """The PubAck of `data`, published again (up to 4 s) while refused with 10023."""
    for _ in range(40):
        try:
            return await js.publish(subject, data)
        except APIError as err:
            assert err.err_code == 10023
            await asyncio.sleep(0.1)
    pytest.fail(f"still refused 4 s after {after}")


async def test_reloadRaisingTheLimit_letsPublishesIn(server_binary, tmp_path):
    conf = tmp_path / "reload.conf"
    store = str(tmp_path / "store")
    conf.write_text(CONF.replace("max_file_store: 1MB", "max_file_store: 100KB") % {"store": store})
    srv = ServerProcess(server_binary, ["-c", str(conf)])
    nc = None
    try:
        srv.start()
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}", allow_reconnect=False, connect_timeout=2)
        js = nc.jetstream(timeout=3)
        await js.add_stream(name="S", subjects=["s"])
        stored, refusal = await publish_until_refused(js, "s", b"x" * 1000)
        assert refusal is not None and refusal.err_code == 10023
        assert 80 <= stored <= 103
        # Raised to 200 KB (nats-server refuses to lower it on a reload; clusterd lowers it too).
        conf.write_text(CONF.replace("max_file_store: 1MB", "max_file_store: 200KB") % {"store": store})
        srv.proc.send_signal(signal.SIGHUP)
        await _publish_once_admitted(js, "s", b"x" * 1000, "the reload raised the limit")
        more, refusal = await publish_until_refused(js, "s", b"x" * 1000)
        assert refusal is not None and refusal.err_code == 10023
        assert 180 <= stored + 1 + more <= 205
    finally:
        if nc is not None:
            await nc.close()
        srv.close()
