"""Stream `sources`, proven against nats-server 2.15.1 and clusterd (also on a three-node
cluster, where the aggregate's leader runs the sources): messages of the source streams are
copied in with a `Nats-Stream-Source` header naming the stream and its sequence, a source's
filter and subject transforms apply, messages published later follow, the stream's own
subjects still take publishes, stream info lists each source (its last sequence, or the error
of a missing stream until it appears), a restarted server resumes without copying anything
twice, and bad sources are refused with nats-server's codes and texts. A leader change, and
sources of a work-queue stream, are tested with mirrors (`test_jetstream_mirrors.py`)."""
from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest
from nats.js.api import StreamConfig, StreamSource, SubjectTransform

from natsutil import js_api

pytestmark = pytest.mark.jetstream


async def _until(js, stream: str, n: int) -> None:
    """Waits (bounded) until `stream` holds `n` messages."""
    end = time.monotonic() + 15
    while (await js.stream_info(stream)).state.messages < n:
        assert time.monotonic() < end, f"{stream}: {(await js.stream_info(stream)).state}"
        await asyncio.sleep(0.1)


def _source(msg) -> list[str]:
    """`Nats-Stream-Source`: stream, sequence, filter, destination, original subject (nats-server
    adds a hash after them)."""
    return msg.headers["Nats-Stream-Source"].split()[:5]


async def test_sources_copyInWithTheirHeader_andFollowNewMessages(js, uniq, js_replicas):
    o1, o2, agg = f"{uniq}O1", f"{uniq}O2", f"{uniq}AGG"
    await js.add_stream(name=o1, subjects=[f"{uniq}.o1.>"], num_replicas=js_replicas)
    await js.add_stream(name=o2, subjects=[f"{uniq}.o2.>"], num_replicas=js_replicas)
    for i in range(3):
        await js.publish(f"{uniq}.o1.a", b"one%d" % i, headers={"X-H": "v"})
    await js.publish(f"{uniq}.o2.b", b"two")
    await js.publish(f"{uniq}.o2.c", b"not taken")
    await js.add_stream(StreamConfig(name=agg, subjects=[f"{uniq}.agg.>"], num_replicas=js_replicas,
                                     sources=[StreamSource(name=o1), StreamSource(name=o2, filter_subject=f"{uniq}.o2.b")]))
    await _until(js, agg, 4)
    await js.publish(f"{uniq}.o1.z", b"later")
    await _until(js, agg, 5)
    own = await js.publish(f"{uniq}.agg.own", b"own")
    assert (own.stream, own.seq) == (agg, 6)

    msgs = [await js.get_msg(agg, seq) for seq in range(1, 7)]
    from_o1 = [m for m in msgs if m.subject.startswith(f"{uniq}.o1.")]
    from_o2 = [m for m in msgs if m.subject.startswith(f"{uniq}.o2.")]
    assert [(m.subject, m.data, m.headers["X-H"]) for m in from_o1[:3]] == [(f"{uniq}.o1.a", b"one%d" % i, "v") for i in range(3)]
    assert [_source(m) for m in from_o1] == [[o1, str(s), ">", ">", m.subject] for s, m in enumerate(from_o1, 1)]
    assert [(m.data, _source(m)) for m in from_o2] == [(b"two", [o2, "1", f"{uniq}.o2.b", ">", f"{uniq}.o2.b"])]
    assert msgs[-1].subject == f"{uniq}.agg.own" and msgs[-1].data == b"own"

    info = await js.stream_info(agg)
    got = {s.name: s for s in info.sources}
    assert got[o1].lag == 0 and got[o2].lag == 0


async def test_sources_transformsMapTheSubjects(js, uniq, js_replicas):
    o, agg = f"{uniq}O", f"{uniq}AGG"
    await js.add_stream(name=o, subjects=[f"{uniq}.o.*"], num_replicas=js_replicas)
    await js.publish(f"{uniq}.o.a", b"x")
    await js.publish(f"{uniq}.o.b", b"y")
    await js.add_stream(StreamConfig(name=agg, num_replicas=js_replicas, sources=[StreamSource(
        name=o, subject_transforms=[SubjectTransform(src=f"{uniq}.o.*", dest=f"{uniq}.mapped.$1")])]))
    await _until(js, agg, 2)
    msgs = [await js.get_msg(agg, seq) for seq in (1, 2)]
    assert [(m.subject, m.data) for m in msgs] == [(f"{uniq}.mapped.a", b"x"), (f"{uniq}.mapped.b", b"y")]
    assert [_source(m)[:2] for m in msgs] == [[o, "1"], [o, "2"]]
    assert (await js.stream_info(agg)).config.subjects in (None, [])


async def test_sources_theStreamsOwnTransformAppliesToo(js, uniq, js_replicas):
    o, agg = f"{uniq}O", f"{uniq}AGG"
    await js.add_stream(name=o, subjects=[f"{uniq}.o.*"], num_replicas=js_replicas)
    await js.publish(f"{uniq}.o.a", b"x")
    await js.add_stream(StreamConfig(name=agg, subjects=[f"{uniq}.agg.*"], num_replicas=js_replicas, sources=[StreamSource(name=o)],
                                     subject_transform=SubjectTransform(src=f"{uniq}.o.*", dest=f"{uniq}.t.$1")))
    await _until(js, agg, 1)
    m = await js.get_msg(agg, 1)
    assert m.subject == f"{uniq}.t.a" and _source(m)[4] == f"{uniq}.o.a"


async def test_sources_aMissingStreamIsReported_thenSourcedOnceItExists(js, js_nc, uniq, js_replicas, cluster_mode, server_kind):
    o, agg = f"{uniq}LATE", f"{uniq}AGG"
    await js.add_stream(StreamConfig(name=agg, num_replicas=js_replicas, sources=[StreamSource(name=o)]))
    end = time.monotonic() + 15
    # A nats-server 2.15.1 cluster shows such a source only as inactive (`active: -1`, no error).
    while not (cluster_mode and server_kind == "nats-server"):
        info = await js_api(js_nc, f"STREAM.INFO.{agg}", {})
        err = (info.get("sources") or [{}])[0].get("error")
        if err:
            break
        assert time.monotonic() < end, json.dumps(info)
        await asyncio.sleep(0.1)
    else:
        err = {"code": 404, "err_code": 10059}
    assert (err["code"], err["err_code"]) == (404, 10059), err
    await js.add_stream(name=o, subjects=[f"{uniq}.late"], num_replicas=js_replicas)
    await js.publish(f"{uniq}.late", b"here")
    await _until(js, agg, 1)
    assert (await js.get_msg(agg, 1)).data == b"here"


@pytest.mark.parametrize("sources, code, err_code, text", [
    ([{"name": ""}], 400, 10141, "sourced stream name is invalid"),
    ([{"name": "A"}, {"name": "A"}], 400, 10140, "duplicate source configuration detected"),
    ([{"name": "A", "filter_subject": "a.x", "subject_transforms": [{"src": "a.*", "dest": "x.$1"}]}], 400, 10144,
     "source with multiple subject transforms cannot also have a single subject filter"),
    ([{"name": "{self}"}], 500, 10052, "detected cycle"),
])
async def test_sources_refusals(js_nc, uniq, sources, code, err_code, text):
    body = {"name": uniq, "sources": [{k: (v.replace("{self}", uniq) if isinstance(v, str) else v) for k, v in s.items()} for s in sources]}
    r = await js_api(js_nc, f"STREAM.CREATE.{uniq}", body)
    assert r.get("error") == {"code": code, "err_code": err_code, "description": text}, r


async def _connect(srv):
    nc = await nats.connect(srv.url, allow_reconnect=False, connect_timeout=2)
    return nc, nc.jetstream(timeout=3)


async def _origin_and_aggregate(js) -> None:
    """ORIGIN with five messages, AGG sourcing it, once AGG holds the five."""
    await js.add_stream(name="ORIGIN", subjects=["orig.>"])
    for i in range(5):
        await js.publish("orig.x", b"%d" % i)
    await js.add_stream(StreamConfig(name="AGG", sources=[StreamSource(name="ORIGIN")]))
    await _until(js, "AGG", 5)


@pytest.mark.single_node(reason="restarts its own server")
async def test_sources_resumeAfterARestart_withoutCopyingTwice(make_server):
    srv = make_server(["-js", "-sd", "@TMP@"])
    nc, js = await _connect(srv)
    try:
        await _origin_and_aggregate(js)
    finally:
        await nc.close()
    srv.restart()
    nc, js = await _connect(srv)
    try:
        for i in range(5, 8):
            await js.publish("orig.x", b"%d" % i)
        await _until(js, "AGG", 8)
        await asyncio.sleep(1.5)  # a second copy of anything would show by now (heartbeats every 1 s)
        info = await js.stream_info("AGG")
        assert info.state.messages == 8, info.state
        assert [int((await js.get_msg("AGG", s)).data) for s in range(1, 9)] == list(range(8))
    finally:
        await nc.close()


async def test_sources_manyMessages_passFlowControl(js, uniq, js_replicas):
    """3 MiB in 3,000 messages: the source's consumer asks for flow control (every 1 MiB or so)
    and goes on only when answered; every message arrives once, in order."""
    o, agg = f"{uniq}O", f"{uniq}AGG"
    await js.add_stream(name=o, subjects=[f"{uniq}.o"], num_replicas=js_replicas)
    body = b"x" * 1024
    acks = [js.publish(f"{uniq}.o", body + b"%d" % i) for i in range(3000)]
    for i in range(0, 3000, 100):
        await asyncio.gather(*acks[i:i + 100])
    await js.add_stream(StreamConfig(name=agg, num_replicas=js_replicas, sources=[StreamSource(name=o)]))
    await _until(js, agg, 3000)
    info = await js.stream_info(agg)
    assert (info.state.messages, info.state.last_seq) == (3000, 3000)
    for seq in (1, 1500, 3000):
        m = await js.get_msg(agg, seq)
        assert m.data == body + b"%d" % (seq - 1) and _source(m)[1] == str(seq)


async def test_sources_aCycleThroughOtherStreamsIsRefused(js_nc, uniq, js_replicas):
    """A sources C, C sources B: B may not source A (each message would go round forever)."""
    a, b, c = f"{uniq}A", f"{uniq}B", f"{uniq}C"
    for name, body in ((a, {"subjects": [f"{uniq}.a"]}), (c, {"sources": [{"name": b}]}), (a, {"subjects": [f"{uniq}.a"], "sources": [{"name": c}]})):
        verb = "UPDATE" if name == a and "sources" in body else "CREATE"
        r = await js_api(js_nc, f"STREAM.{verb}.{name}", {"name": name, "num_replicas": js_replicas, **body})
        assert "error" not in r, r
    r = await js_api(js_nc, f"STREAM.CREATE.{b}", {"name": b, "num_replicas": js_replicas, "sources": [{"name": a}]})
    assert r.get("error") == {"code": 500, "err_code": 10052, "description": "detected cycle"}, r


@pytest.mark.single_node(reason="restarts its own server")
async def test_sources_positionSurvivesAPurgeAndARestart(make_server):
    """After the aggregate's copies were purged, a restarted server does not copy them again:
    the position is kept beside the store (nats-server 2.15.1 too)."""
    srv = make_server(["-js", "-sd", "@TMP@"])
    nc, js = await _connect(srv)
    try:
        await _origin_and_aggregate(js)
        await js.purge_stream("AGG")
        await asyncio.sleep(1.5)  # the position is written within a second
    finally:
        await nc.close()
    srv.restart()
    nc, js = await _connect(srv)
    try:
        await js.publish("orig.x", b"new")
        await _until(js, "AGG", 1)
        await asyncio.sleep(1.5)  # the purged five would be back by now
        info = await js.stream_info("AGG")
        assert (info.state.messages, info.state.last_seq) == (1, 6), info.state
        assert (await js.get_msg("AGG", 6)).data == b"new"
    finally:
        await nc.close()


async def test_sources_deletingTheAggregate_removesItsConsumerAtOnce(js, uniq, js_replicas):
    """nats-server's source consumers are not listed at all; clusterd's are ephemeral push
    consumers, deleted when their stream goes (not left for their 10 s inactivity limit)."""
    o, agg = f"{uniq}O", f"{uniq}AGG"
    await js.add_stream(name=o, subjects=[f"{uniq}.o"], num_replicas=js_replicas)
    await js.publish(f"{uniq}.o", b"x")
    await js.add_stream(StreamConfig(name=agg, num_replicas=js_replicas, sources=[StreamSource(name=o)]))
    await _until(js, agg, 1)
    await js.delete_stream(agg)
    end = time.monotonic() + 5
    while (await js.stream_info(o)).state.consumer_count != 0:
        assert time.monotonic() < end, await js.stream_info(o)
        await asyncio.sleep(0.1)
