"""Subject delete markers (`subject_delete_marker_ttl`, nats-server 2.11+; KV `limit_marker_ttl`),
proven against nats-server 2.15.1 and clusterd: when max_age or a message TTL removes the last
message of a subject, a marker (no payload; `Nats-Marker-Reason: MaxAge`, `Nats-TTL`,
`Nats-Rollup: sub`) takes its place; API deletes and purges leave none, nor does a marker that
expires; a `Nats-TTL` under the marker TTL is raised to it (not with one message per subject);
the config turns on message TTLs and roll-ups; a KV watcher sees an expired key as purged."""
from __future__ import annotations

import asyncio
import json
import time

import nats.errors
import pytest
from nats.js.api import KeyValueConfig, StreamConfig

from natsutil import wait_state

pytestmark = pytest.mark.jetstream

SECOND = 1_000_000_000
MARKER_60S = {"Nats-Marker-Reason": "MaxAge", "Nats-TTL": "1m0s", "Nats-Rollup": "sub"}


async def _api(nc, subject: str, body: dict) -> dict:
    return json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=5)).data)


async def _collect(sub, want: int, deadline_s: float = 15.0) -> list:
    """The next `want` messages of an ordered consumer (bounded wait)."""
    got = []
    end = time.monotonic() + deadline_s
    while len(got) < want:
        left = end - time.monotonic()
        assert left > 0, f"only {len(got)} of {want} messages: {[(m.subject, m.headers) for m in got]}"
        try:
            got.append(await sub.next_msg(timeout=min(left, 1.0)))
        except asyncio.TimeoutError:
            pass
        except Exception as e:  # nats-py raises its own TimeoutError
            if "Timeout" not in type(e).__name__:
                raise
    return got




async def test_markerConfig_turnsOnTTLsAndRollups(js, js_nc, uniq, js_replicas):
    base = {"subjects": [f"{uniq}.>"], "storage": "file", "num_replicas": js_replicas}
    r = await _api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}",
                   {"name": uniq, **base, "subject_delete_marker_ttl": 60 * SECOND, "deny_purge": True,
                    "allow_rollup_hdrs": False})
    assert "error" not in r, r
    c = r["config"]
    assert (c["allow_msg_ttl"], c["allow_rollup_hdrs"], c["deny_purge"], c["subject_delete_marker_ttl"]) == \
        (True, True, False, 60 * SECOND)
    assert c["metadata"]["_nats.req.level"] == "1"  # message TTLs need API level 1
    for ttl, text in [(SECOND // 2, "subject delete marker TTL must be at least 1 second"),
                      (-5, "subject delete marker TTL must not be negative")]:
        r = await _api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}X",
                       {"name": f"{uniq}X", "subjects": [f"{uniq}x.>"], "subject_delete_marker_ttl": ttl})
        assert (r["error"]["code"], r["error"]["err_code"], r["error"]["description"]) == (500, 10052, text)
    # Set by an update on a stream that had none: the same normalisation; then taken off again.
    other = {"name": f"{uniq}U", "subjects": [f"{uniq}u.>"], "storage": "file", "num_replicas": js_replicas}
    r = await _api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}U", other)
    assert "error" not in r and r["config"]["metadata"]["_nats.req.level"] == "0", r
    r = await _api(js_nc, f"$JS.API.STREAM.UPDATE.{uniq}U", {**other, "subject_delete_marker_ttl": 30 * SECOND})
    assert "error" not in r, r
    assert (r["config"]["allow_msg_ttl"], r["config"]["allow_rollup_hdrs"]) == (True, True)
    r = await _api(js_nc, f"$JS.API.STREAM.UPDATE.{uniq}U",
                   {**other, "allow_msg_ttl": True, "subject_delete_marker_ttl": 0})
    assert "error" not in r and "subject_delete_marker_ttl" not in r["config"], r


async def test_maxAge_leavesOneMarkerPerEmptiedSubject(js, uniq):
    await js.add_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.>"], max_age=2.0, subject_delete_marker_ttl=60.0))
    sub = await js.subscribe(f"{uniq}.>", ordered_consumer=True)
    for subject, data in [("a", b"1"), ("a", b"2"), ("b", b"3")]:
        await js.publish(f"{uniq}.{subject}", data)
    got = await _collect(sub, 5)
    assert [(m.subject, m.metadata.sequence.stream, m.data) for m in got[:3]] == \
        [(f"{uniq}.a", 1, b"1"), (f"{uniq}.a", 2, b"2"), (f"{uniq}.b", 3, b"3")]
    markers = got[3:]
    assert sorted((m.subject, m.metadata.sequence.stream) for m in markers) == [(f"{uniq}.a", 4), (f"{uniq}.b", 5)]
    for m in markers:
        assert dict(m.headers) == MARKER_60S and m.data == b""
    # The markers age out too (max_age applies to them), and leave no markers behind.
    await wait_state(js, uniq, lambda st: st.messages == 0)
    await asyncio.sleep(1.5)
    st = (await js.stream_info(uniq)).state
    assert (st.messages, st.last_seq) == (0, 5)
    await sub.unsubscribe()


async def test_messageTTL_raisedToTheMarkerTTL_markerOnlyWhenTheSubjectEmpties(js, uniq):
    await js.add_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.>"], allow_msg_ttl=True,
                                     subject_delete_marker_ttl=4.0))
    # TTLs of seconds, not one: the reads below must come before anything expires on a busy CI.
    await js.publish(f"{uniq}.a", b"1", headers={"Nats-TTL": "1"})
    await js.publish(f"{uniq}.b", b"2", headers={"Nats-TTL": "1s"})
    await js.publish(f"{uniq}.b", b"3")
    await js.publish(f"{uniq}.c", b"4", headers={"Nats-TTL": "6s"})
    # Shorter than the marker TTL: raised to it, in whole seconds; longer ones are kept as sent.
    stored = [(await js.get_msg(uniq, seq)).headers for seq in (1, 2, 3, 4)]
    assert stored == [{"Nats-TTL": "4"}, {"Nats-TTL": "4"}, None, {"Nats-TTL": "6s"}]
    sub = await js.subscribe(f"{uniq}.>", ordered_consumer=True)
    got = await _collect(sub, 6)
    markers = [(m.subject, m.metadata.sequence.stream, dict(m.headers or {})) for m in got[4:]]
    # `a` and `c` lost their only message; `b` keeps seq 3, so it gets no marker.
    marker_4s = {"Nats-Marker-Reason": "MaxAge", "Nats-TTL": "4s", "Nats-Rollup": "sub"}
    assert markers == [(f"{uniq}.a", 5, marker_4s), (f"{uniq}.c", 6, marker_4s)]
    # Both markers expire by their own TTL and leave nothing behind.
    st = await wait_state(js, uniq, lambda st: st.messages == 1)
    await asyncio.sleep(1.5)
    st = (await js.stream_info(uniq)).state
    assert (st.messages, st.first_seq, st.last_seq) == (1, 3, 6)
    await sub.unsubscribe()


async def test_messageTTL_notRaisedWithOneMessagePerSubject(js, uniq):
    await js.add_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.>"], subject_delete_marker_ttl=5.0,
                                     max_msgs_per_subject=1))
    await js.add_stream(StreamConfig(name=f"{uniq}H", subjects=[f"{uniq}h.>"], subject_delete_marker_ttl=5.0,
                                     max_msgs_per_subject=2))
    await js.publish(f"{uniq}.a", b"1", headers={"Nats-TTL": "4"})
    await js.publish(f"{uniq}h.a", b"1", headers={"Nats-TTL": "4"})
    assert (await js.get_msg(uniq, 1)).headers == {"Nats-TTL": "4"}
    assert (await js.get_msg(f"{uniq}H", 1)).headers == {"Nats-TTL": "5"}


async def test_purgeAndDelete_leaveNoMarker(js, uniq):
    await js.add_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.>"], subject_delete_marker_ttl=60.0))
    for s in ("a", "b", "c"):
        await js.publish(f"{uniq}.{s}", s.encode())
    await js.purge_stream(uniq, subject=f"{uniq}.a")
    await js.delete_msg(uniq, 2)
    await asyncio.sleep(1.5)
    st = (await js.stream_info(uniq)).state
    assert (st.messages, st.first_seq, st.last_seq) == (1, 3, 3)


async def test_kvLimitMarkerTTL_watcherSeesAnExpiredKeyAsPurged(js, uniq, js_replicas):
    kv = await js.create_key_value(KeyValueConfig(bucket=uniq, ttl=1.0, limit_marker_ttl=5.0, replicas=js_replicas))
    assert (await kv.status()).marker_ttl == 5.0
    watcher = await kv.watchall()
    first = await asyncio.wait_for(watcher.updates(timeout=3), 5)
    assert first is None  # nothing stored yet: the initial "done" signal
    await kv.put("session", b"token")
    put = await asyncio.wait_for(watcher.updates(timeout=3), 5)
    assert (put.key, put.value, put.operation) == ("session", b"token", None)
    end = time.monotonic() + 15
    entry = None
    while entry is None:
        assert time.monotonic() < end, "no marker for the expired key"
        try:
            entry = await watcher.updates(timeout=1)
        except nats.errors.TimeoutError:
            pass
    assert (entry.key, entry.operation, entry.revision) == ("session", "PURGE", 2)
    await watcher.stop()


async def test_kvPerKeyTTL_andPurgeMarkerTTL(js, uniq, js_replicas):
    # A bucket without history keeps one message per key: `create`'s TTL is not raised to the
    # marker TTL. The key's expiry leaves a marker; the purge's own marker (KV-Operation: PURGE)
    # expires and leaves none.
    kv = await js.create_key_value(KeyValueConfig(bucket=uniq, limit_marker_ttl=2.0, replicas=js_replicas))
    stream = f"KV_{uniq}"
    await kv.create("k1", b"v1", msg_ttl=3.0)
    await kv.put("k2", b"v2")
    await kv.purge("k2", msg_ttl=5.0)
    assert (await js.get_msg(stream, 1)).headers == {"Nats-Expected-Last-Subject-Sequence": "0", "Nats-TTL": "3"}
    purge = await js.get_msg(stream, 3)
    assert purge.headers == {"KV-Operation": "PURGE", "Nats-Rollup": "sub", "Nats-TTL": "5"}
    sub = await js.subscribe(f"$KV.{uniq}.>", ordered_consumer=True)
    got = await _collect(sub, 3)
    assert [(m.subject, m.metadata.sequence.stream) for m in got] == \
        [(f"$KV.{uniq}.k1", 1), (f"$KV.{uniq}.k2", 3), (f"$KV.{uniq}.k1", 4)]
    assert dict(got[2].headers) == {"Nats-Marker-Reason": "MaxAge", "Nats-TTL": "2s", "Nats-Rollup": "sub"}
    # k1's marker (2 s) and k2's purge (5 s) expire; neither leaves a marker.
    await wait_state(js, stream, lambda st: st.messages == 0)
    await asyncio.sleep(1.5)
    st = (await js.stream_info(stream)).state
    assert (st.messages, st.last_seq) == (0, 4)
    await sub.unsubscribe()
