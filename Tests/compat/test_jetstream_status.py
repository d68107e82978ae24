"""JetStream status messages clients branch on (100 heartbeats, 409s) and consumer-create actions.
Byte-exact where nats-server's bytes are fixed (docs/nats-wire-notes.md §15)."""
from __future__ import annotations

import json
import time

import pytest

from rawconn import RawConn

pytestmark = pytest.mark.jetstream

NS = 1_000_000_000


def js_request(c: RawConn, subject: str, body: dict | bytes, reply: str = "in.r") -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    c.send(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(payload), payload))


def read_json_reply(c: RawConn) -> dict:
    head = c.read_until(b"\r\n")
    assert head.startswith(b"MSG in.r 1 "), head
    size = int(head.split()[-1])
    body = c.read_exactly(size + 2)[:-2]
    return json.loads(body)


@pytest.fixture
def raw_js(js_server, uniq):
    """A raw connection with SUB in.* 1, and stream <uniq> on <uniq>.> with durable pull consumer d."""
    c = RawConn(js_server.port)
    try:
        c.connect()
        assert c.roundtrip(b"SUB in.* 1\r\n") == b""
        js_request(c, f"$JS.API.STREAM.CREATE.{uniq}", {"name": uniq, "subjects": [f"{uniq}.>"]})
        assert "error" not in read_json_reply(c)
        js_request(c, f"$JS.API.CONSUMER.CREATE.{uniq}.d",
                   {"stream_name": uniq, "config": {"durable_name": "d", "ack_policy": "explicit"}})
        assert "error" not in read_json_reply(c)
        # In cluster mode a new consumer's pulls are answered once its leader's interest has
        # reached this node (nats-server 2.15 answered a first pull with 503 once in CI): a
        # malformed pull (refused with 400, changes nothing) until the answer is not a 503.
        for _ in range(100):
            js_request(c, f"$JS.API.CONSUMER.MSG.NEXT.{uniq}.d", b"{", reply="in.p")
            if b"NATS/1.0 503" not in c.read_until(b"\r\n\r\n\r\n", timeout=3):
                break
            time.sleep(0.05)
        yield c
    finally:
        c.close()


def test_pull_idleHeartbeat_thenRequestTimeout_exactBytes(raw_js, uniq):
    t0 = time.monotonic()
    js_request(raw_js, f"$JS.API.CONSUMER.MSG.NEXT.{uniq}.d",
               {"batch": 1, "expires": int(1.2 * NS), "idle_heartbeat": int(0.4 * NS)})
    hb = b"HMSG in.r 1 75 75\r\nNATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n\r\n"
    timeout = b"HMSG in.r 1 81 81\r\nNATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\nNats-Pending-Bytes: 0\r\n\r\n\r\n"
    got = raw_js.read_until(b"408 Request Timeout\r\n", timeout=4)
    got += raw_js.read_until(b"\r\n\r\n\r\n", timeout=1)
    got = got.replace(b"PING\r\n", b"")  # the server's first keepalive PING comes ~2 s after CONNECT
    elapsed = time.monotonic() - t0
    assert got.endswith(timeout), got
    beats = got[: -len(timeout)]
    assert beats in (hb * 1, hb * 2, hb * 3), got  # one every 0.4 s within 1.2 s
    assert 1.0 <= elapsed <= 3.0, elapsed


def test_pull_maxBytesTooSmall_409MessageSizeExceedsMaxBytes(raw_js, uniq):
    js_request(raw_js, f"{uniq}.a", b"0123456789")
    assert read_json_reply(raw_js) == {"stream": uniq, "seq": 1}
    js_request(raw_js, f"$JS.API.CONSUMER.MSG.NEXT.{uniq}.d", {"batch": 1, "max_bytes": 5, "expires": NS})
    assert raw_js.read_until(b"\r\n\r\n\r\n", timeout=3) == (
        b"HMSG in.r 1 95 95\r\nNATS/1.0 409 Message Size Exceeds MaxBytes\r\n"
        b"Nats-Pending-Messages: 1\r\nNats-Pending-Bytes: 5\r\n\r\n\r\n")


def test_consumerCreate_actionCreateOnExisting_10148_actionUpdateOnMissing_10149(raw_js, uniq):
    js_request(raw_js, f"$JS.API.CONSUMER.CREATE.{uniq}.d",
               {"stream_name": uniq, "action": "create",
                "config": {"durable_name": "d", "ack_policy": "explicit", "max_deliver": 5}})
    r = read_json_reply(raw_js)
    assert r["type"] == "io.nats.jetstream.api.v1.consumer_create_response"
    assert r["error"] == {"code": 400, "err_code": 10148, "description": "consumer already exists"}
    js_request(raw_js, f"$JS.API.CONSUMER.CREATE.{uniq}.zz",
               {"stream_name": uniq, "action": "update", "config": {"durable_name": "zz", "ack_policy": "explicit"}})
    assert read_json_reply(raw_js)["error"] == {"code": 400, "err_code": 10149, "description": "consumer does not exist"}
    # same config with action create is fine (idempotent)
    js_request(raw_js, f"$JS.API.CONSUMER.CREATE.{uniq}.d",
               {"stream_name": uniq, "action": "create", "config": {"durable_name": "d", "ack_policy": "explicit"}})
    assert "error" not in read_json_reply(raw_js)


def test_pushConsumer_pullRequest_409_andIdleHeartbeatCarriesLastSeqs(raw_js, uniq):
    assert raw_js.roundtrip(b"SUB dlv.%s 2\r\n" % uniq.encode()) == b""
    js_request(raw_js, f"{uniq}.a", b"hello")
    assert read_json_reply(raw_js)["seq"] == 1
    js_request(raw_js, f"$JS.API.CONSUMER.CREATE.{uniq}.p",
               {"stream_name": uniq, "config": {"durable_name": "p", "ack_policy": "explicit",
                                                "deliver_subject": f"dlv.{uniq}", "flow_control": True,
                                                "idle_heartbeat": int(0.3 * NS)}})
    # the create response and the first push delivery may arrive in either order
    frames = dict((line.split()[1], (line, body)) for line, body in (raw_js.read_frame(), raw_js.read_frame()))
    created = json.loads(frames[b"in.r"][1])
    assert created["config"]["flow_control"] is True and created["config"]["idle_heartbeat"] == int(0.3 * NS)
    msg_head, body = frames[f"{uniq}.a".encode()]
    assert msg_head.startswith(b"MSG %s.a 2 $JS.ACK.%s.p.1.1.1." % (uniq.encode(), uniq.encode())), msg_head
    assert body == b"hello"
    hb = raw_js.read_until(b"\r\n\r\n\r\n", timeout=3).replace(b"PING\r\n", b"")
    assert hb == (b"HMSG dlv.%s 2 75 75\r\nNATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 1\r\n"
                  b"Nats-Last-Stream: 1\r\n\r\n\r\n" % uniq.encode())
    js_request(raw_js, f"$JS.API.CONSUMER.MSG.NEXT.{uniq}.p", {"batch": 1})
    got = raw_js.read_until(b"409 Consumer is push based\r\n\r\n\r\n", timeout=3)
    assert got.endswith(b"HMSG in.r 1 39 39\r\nNATS/1.0 409 Consumer is push based\r\n\r\n\r\n"), got


def test_pushConsumer_firstIdleHeartbeatWaitsOneInterval_notOnSubscribe(raw_js, uniq):
    # nats-py's KV keys()/watch() create an ordered push consumer (idle_heartbeat 5 s), then SUB its
    # deliver subject, then ask CONSUMER.INFO: num_pending == 0 with nothing delivered yet means
    # "no initial values". A heartbeat sent as soon as interest appears counts as a delivery
    # there, and keys() on an empty bucket then waits forever.
    js_request(raw_js, f"$JS.API.CONSUMER.CREATE.{uniq}",
               {"stream_name": uniq, "config": {"ack_policy": "none", "deliver_subject": f"dlv.{uniq}",
                                                "deliver_policy": "last_per_subject", "flow_control": True,
                                                "idle_heartbeat": 5 * NS, "headers_only": True,
                                                "mem_storage": True, "num_replicas": 1}})
    assert read_json_reply(raw_js).get("num_pending", 0) == 0  # nats-server omits a zero
    assert raw_js.roundtrip(b"SUB dlv.%s 2\r\n" % uniq.encode()) == b""
    time.sleep(0.5)  # many delivery ticks, a tenth of the interval
    assert raw_js.roundtrip(b"").replace(b"PING\r\n", b"") == b""
