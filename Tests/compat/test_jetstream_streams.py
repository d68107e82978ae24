"""JetStream streams: CRUD and error codes, publish acks, dedup, expected-* headers."""
from __future__ import annotations

import json

import nats.js.errors
import pytest
from nats.js.api import StreamConfig

pytestmark = pytest.mark.jetstream


async def api(nc, subject: str, body: dict | None = None) -> dict:
    # 10 s: a nats-server cluster asks every stream leader for a LIST (timed out at 3 s in CI once).
    msg = await nc.request(subject, json.dumps(body).encode() if body is not None else b"", timeout=10)
    return json.loads(msg.data)


async def test_streamCreate_infoReflectsConfigAndEmptyState(js, uniq, js_replicas):
    info = await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    assert info.config.name == uniq
    assert info.config.subjects == [f"{uniq}.>"]
    assert info.state.messages == 0 and info.state.last_seq == 0
    again = await js.stream_info(uniq)
    assert again.config.subjects == [f"{uniq}.>"]
    assert getattr(again.config.storage, "value", again.config.storage) == "file"
    assert getattr(again.config.retention, "value", again.config.retention) == "limits"
    assert again.config.num_replicas == js_replicas


async def test_streamCreate_sameConfigTwice_isIdempotent(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.a"])
    info = await js.add_stream(name=uniq, subjects=[f"{uniq}.a"])
    assert info.config.name == uniq


async def test_streamCreate_nameInUseDifferentConfig_10058(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.a"])
    with pytest.raises(nats.js.errors.BadRequestError) as ei:
        await js.add_stream(name=uniq, subjects=[f"{uniq}.b"], max_msgs=5)
    assert (ei.value.code, ei.value.err_code) == (400, 10058)


async def test_streamCreate_overlappingSubjects_10065(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    with pytest.raises(nats.js.errors.BadRequestError) as ei:
        await js.add_stream(name=uniq + "x", subjects=[f"{uniq}.a"])
    assert (ei.value.code, ei.value.err_code) == (400, 10065)


async def test_streamCreate_nameMismatchInSubject_10056(js_nc, uniq):
    resp = await api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}", {"name": uniq + "other", "subjects": [f"{uniq}.x"]})
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_create_response"
    assert resp["error"]["code"] == 400 and resp["error"]["err_code"] == 10056


async def test_streamInfo_unknown_10059(js, uniq):
    with pytest.raises(nats.js.errors.NotFoundError) as ei:
        await js.stream_info(uniq + "missing")
    assert (ei.value.code, ei.value.err_code) == (404, 10059)


async def test_streamInfo_raw_responseShape(js_nc, uniq):
    await api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}", {"name": uniq, "subjects": [f"{uniq}.x"]})
    resp = await api(js_nc, f"$JS.API.STREAM.INFO.{uniq}")
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_info_response"
    for key in ("config", "created", "state", "ts"):
        assert key in resp, key
    for key in ("messages", "bytes", "first_seq", "first_ts", "last_seq", "last_ts", "consumer_count"):
        assert key in resp["state"], key


async def test_streamUpdate_changesLimits_immutableStorageRejected(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.x"])
    info = await js.update_stream(name=uniq, subjects=[f"{uniq}.x", f"{uniq}.y"], max_msgs=10)
    assert info.config.max_msgs == 10 and sorted(info.config.subjects) == [f"{uniq}.x", f"{uniq}.y"]
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.update_stream(StreamConfig(name=uniq, subjects=[f"{uniq}.x"], storage="memory"))
    assert ei.value.err_code == 10052


async def test_streamDelete_thenInfoNotFound_deleteAgainNotFound(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.x"])
    assert await js.delete_stream(uniq) is True
    with pytest.raises(nats.js.errors.NotFoundError) as ei:
        await js.delete_stream(uniq)
    assert ei.value.err_code == 10059


async def test_streamNamesAndList_includeNewStream(js_nc, uniq):
    await api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}", {"name": uniq, "subjects": [f"{uniq}.x"]})
    names = await api(js_nc, "$JS.API.STREAM.NAMES")
    assert names["type"] == "io.nats.jetstream.api.v1.stream_names_response"
    assert uniq in names["streams"]
    assert names["total"] >= 1 and "offset" in names and "limit" in names
    by_subject = await api(js_nc, "$JS.API.STREAM.NAMES", {"subject": f"{uniq}.x"})
    assert by_subject["streams"] == [uniq]
    lst = await api(js_nc, "$JS.API.STREAM.LIST")
    assert uniq in [s["config"]["name"] for s in lst["streams"]]


async def test_accountInfo_countsStreams(js_nc, uniq):
    await api(js_nc, f"$JS.API.STREAM.CREATE.{uniq}", {"name": uniq, "subjects": [f"{uniq}.x"]})
    info = await api(js_nc, "$JS.API.INFO")
    assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
    assert info["streams"] >= 1
    assert info["api"]["level"] >= 1
    for key in ("memory", "storage", "consumers", "limits"):
        assert key in info, key


async def test_publish_ackCarriesStreamAndSequence(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    acks = [await js.publish(f"{uniq}.a", str(i).encode()) for i in range(5)]
    assert [(a.stream, a.seq) for a in acks] == [(uniq, i) for i in range(1, 6)]
    assert not any(a.duplicate for a in acks)
    info = await js.stream_info(uniq)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (5, 1, 5)


async def test_publish_noStream_noResponders(js, uniq):
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await js.publish(f"{uniq}.nostream", b"x")


async def test_publish_msgIdDedup_secondIsDuplicateSameSeq(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    a1 = await js.publish(f"{uniq}.a", b"1", headers={"Nats-Msg-Id": "m1"})
    a2 = await js.publish(f"{uniq}.a", b"1", headers={"Nats-Msg-Id": "m1"})
    a3 = await js.publish(f"{uniq}.a", b"2", headers={"Nats-Msg-Id": "m2"})
    assert (a1.seq, bool(a1.duplicate)) == (1, False)
    assert (a2.seq, a2.duplicate) == (1, True)
    assert (a3.seq, bool(a3.duplicate)) == (2, False)
    assert (await js.stream_info(uniq)).state.messages == 2


async def test_expectedStream_mismatch_10060(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    assert (await js.publish(f"{uniq}.a", b"x", stream=uniq)).seq == 1
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.publish(f"{uniq}.a", b"x", stream="NOPE")
    assert (ei.value.code, ei.value.err_code) == (400, 10060)


async def test_expectedLastSequence(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.publish(f"{uniq}.a", b"1")
    ok = await js.publish(f"{uniq}.a", b"2", headers={"Nats-Expected-Last-Sequence": "1"})
    assert ok.seq == 2
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.publish(f"{uniq}.a", b"3", headers={"Nats-Expected-Last-Sequence": "1"})
    assert (ei.value.code, ei.value.err_code) == (400, 10071)
    assert "wrong last sequence: 2" in ei.value.description


async def test_expectedLastMsgId(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.publish(f"{uniq}.a", b"1", headers={"Nats-Msg-Id": "first"})
    ok = await js.publish(f"{uniq}.a", b"2", headers={"Nats-Expected-Last-Msg-Id": "first", "Nats-Msg-Id": "second"})
    assert ok.seq == 2
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.publish(f"{uniq}.a", b"3", headers={"Nats-Expected-Last-Msg-Id": "first"})
    assert (ei.value.code, ei.value.err_code) == (400, 10070)


async def test_expectedLastSubjectSequence(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.publish(f"{uniq}.a", b"a1")            # seq 1
    await js.publish(f"{uniq}.b", b"b1")            # seq 2
    ok = await js.publish(f"{uniq}.a", b"a2", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
    assert ok.seq == 3
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.publish(f"{uniq}.b", b"b2", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
    assert (ei.value.code, ei.value.err_code) == (400, 10071)
    # 0 means "no message on this subject yet"
    assert (await js.publish(f"{uniq}.c", b"c1", headers={"Nats-Expected-Last-Subject-Sequence": "0"})).seq == 4
    with pytest.raises(nats.js.errors.APIError):
        await js.publish(f"{uniq}.c", b"c2", headers={"Nats-Expected-Last-Subject-Sequence": "0"})


async def test_getMsg_bySeqAndLastBySubject_notFound10037(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.publish(f"{uniq}.a", b"one", headers={"H1": "v1"})
    await js.publish(f"{uniq}.b", b"two")
    await js.publish(f"{uniq}.a", b"three")
    m = await js.get_msg(uniq, 1)
    assert (m.subject, m.seq, m.data) == (f"{uniq}.a", 1, b"one")
    assert m.headers["H1"] == "v1"
    last = await js.get_msg(uniq, subject=f"{uniq}.a")
    assert (last.seq, last.data) == (3, b"three")
    with pytest.raises(nats.js.errors.NotFoundError) as ei:
        await js.get_msg(uniq, 99)
    assert ei.value.err_code == 10037


async def test_deleteMsg_andPurge(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    for i in range(6):
        await js.publish(f"{uniq}.{'a' if i % 2 else 'b'}", b"x")
    assert await js.delete_msg(uniq, 2) is True
    info = await js.stream_info(uniq)
    assert (info.state.messages, info.state.num_deleted) == (5, 1)
    await js.purge_stream(uniq, subject=f"{uniq}.a")
    assert (await js.stream_info(uniq)).state.messages == 3  # the b's: seqs 1, 3, 5
    await js.purge_stream(uniq)
    info = await js.stream_info(uniq)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (0, 7, 6)


async def test_purgeUpToASequencePastTheEnd_movesTheNextOneThere(js, uniq, js_replicas):
    """nats-server's compact: `purge {seq: 100}` of a stream ending at 3 leaves it empty, and
    the next message is stored at 100 (a file stream of clusterd stored it at 4 before)."""
    await js.add_stream(name=uniq, subjects=[uniq], num_replicas=js_replicas)
    for _ in range(3):
        await js.publish(uniq, b"x")
    await js.purge_stream(uniq, seq=100)
    info = await js.stream_info(uniq)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (0, 100, 99), info.state
    assert (await js.publish(uniq, b"y")).seq == 100


async def test_limits_maxMsgsDiscardOld_andDiscardNewError(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.old"], max_msgs=3)
    for i in range(5):
        await js.publish(f"{uniq}.old", str(i).encode())
    info = await js.stream_info(uniq)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (3, 3, 5)
    await js.add_stream(name=uniq + "n", subjects=[f"{uniq}.new"], max_msgs=2, discard="new")
    await js.publish(f"{uniq}.new", b"1")
    await js.publish(f"{uniq}.new", b"2")
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.publish(f"{uniq}.new", b"3")
    assert (ei.value.code, ei.value.err_code) == (503, 10077)
    assert "maximum messages exceeded" in ei.value.description


async def test_maxMsgsPerSubject_keepsLastN(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], max_msgs_per_subject=2)
    for i in range(4):
        await js.publish(f"{uniq}.k", str(i).encode())
    await js.publish(f"{uniq}.j", b"j")
    info = await js.stream_info(uniq)
    assert info.state.messages == 3
    assert (await js.get_msg(uniq, subject=f"{uniq}.k")).data == b"3"
