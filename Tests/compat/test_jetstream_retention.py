"""JetStream retention policies, rollups, direct get and consumer listing."""
from __future__ import annotations

import asyncio
import json

import nats.errors
import nats.js.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy

from natsutil import settle, stream_state

pytestmark = pytest.mark.jetstream


async def api(nc, subject: str, body: dict | None = None) -> dict:
    msg = await nc.request(subject, json.dumps(body).encode() if body is not None else b"", timeout=3)
    return json.loads(msg.data)


async def test_workQueue_ackRemovesMessage(js, uniq, cluster_mode):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], retention=RetentionPolicy.WORK_QUEUE)
    for i in range(3):
        await js.publish(f"{uniq}.job", str(i).encode())
    psub = await js.pull_subscribe(f"{uniq}.job", durable="w", stream=uniq)
    msgs = await psub.fetch(2, timeout=3)
    for m in msgs:
        await m.ack_sync()
    assert await stream_state(js, uniq, (1, 3), cluster_mode) == (1, 3)


async def test_workQueue_secondOverlappingConsumer_rejected(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], retention=RetentionPolicy.WORK_QUEUE)
    await js.add_consumer(uniq, ConsumerConfig(durable_name="a", ack_policy=AckPolicy.EXPLICIT))
    with pytest.raises(nats.js.errors.BadRequestError) as ei:
        await js.add_consumer(uniq, ConsumerConfig(durable_name="b", ack_policy=AckPolicy.EXPLICIT))
    assert ei.value.err_code == 10099


async def test_interest_noConsumers_messagesNotKept_ackedByAllRemoved(js, uniq, cluster_mode):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], retention=RetentionPolicy.INTEREST)
    await js.publish(f"{uniq}.x", b"nobody")
    assert (await js.stream_info(uniq)).state.messages == 0
    await js.add_consumer(uniq, ConsumerConfig(durable_name="c1", ack_policy=AckPolicy.EXPLICIT))
    await js.add_consumer(uniq, ConsumerConfig(durable_name="c2", ack_policy=AckPolicy.EXPLICIT))
    await js.publish(f"{uniq}.x", b"both")
    assert (await js.stream_info(uniq)).state.messages == 1
    p1 = await js.pull_subscribe_bind("c1", stream=uniq)
    await (await p1.fetch(1, timeout=3))[0].ack_sync()
    assert (await js.stream_info(uniq)).state.messages == 1
    p2 = await js.pull_subscribe_bind("c2", stream=uniq)
    await (await p2.fetch(1, timeout=3))[0].ack_sync()
    assert await stream_state(js, uniq, (0,), cluster_mode) == (0,)


async def test_rollupSubject_keepsOnlyRollupMessage(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], allow_rollup_hdrs=True)
    for i in range(3):
        await js.publish(f"{uniq}.a", str(i).encode())
    await js.publish(f"{uniq}.b", b"keep")
    await js.publish(f"{uniq}.a", b"snapshot", headers={"Nats-Rollup": "sub"})
    info = await js.stream_info(uniq)
    assert info.state.messages == 2
    assert (await js.get_msg(uniq, subject=f"{uniq}.a")).data == b"snapshot"


async def test_rollup_notAllowed_rejected(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    with pytest.raises(nats.js.errors.APIError) as ei:
        await js.publish(f"{uniq}.a", b"x", headers={"Nats-Rollup": "sub"})
    assert (ei.value.code, ei.value.err_code) == (500, 10111)


async def test_directGet_lastBySubject_rawHeaders(js, js_nc, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], allow_direct=True)
    await js.publish(f"{uniq}.k", b"v1")
    await js.publish(f"{uniq}.k", b"v2", headers={"X-A": "1"})
    msg = await js_nc.request(f"$JS.API.DIRECT.GET.{uniq}.{uniq}.k", b"", timeout=3)
    assert msg.data == b"v2"
    assert msg.headers["Nats-Stream"] == uniq
    assert msg.headers["Nats-Subject"] == f"{uniq}.k"
    assert msg.headers["Nats-Sequence"] == "2"
    assert msg.headers["X-A"] == "1"
    assert "Nats-Time-Stamp" in msg.headers
    by_seq = await js_nc.request(f"$JS.API.DIRECT.GET.{uniq}", json.dumps({"seq": 1}).encode(), timeout=3)
    assert by_seq.data == b"v1"
    missing = await js_nc.request(f"$JS.API.DIRECT.GET.{uniq}", json.dumps({"seq": 99}).encode(), timeout=3)
    assert missing.headers.get("Status") == "404"


async def test_consumerNamesAndList(js, js_nc, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    for d in ("b", "a"):
        await js.add_consumer(uniq, ConsumerConfig(durable_name=d, ack_policy=AckPolicy.EXPLICIT))
    names = await api(js_nc, f"$JS.API.CONSUMER.NAMES.{uniq}")
    assert names["type"] == "io.nats.jetstream.api.v1.consumer_names_response"
    assert sorted(names["consumers"]) == ["a", "b"] and names["total"] == 2
    lst = await api(js_nc, f"$JS.API.CONSUMER.LIST.{uniq}")
    assert sorted(c["name"] for c in lst["consumers"]) == ["a", "b"]
    assert (await js.stream_info(uniq)).state.consumer_count == 2


async def test_headersOnlyConsumer_sizeHeaderNoBody(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.publish(f"{uniq}.x", b"0123456789")
    await js.add_consumer(uniq, ConsumerConfig(durable_name="h", ack_policy=AckPolicy.EXPLICIT, headers_only=True))
    psub = await js.pull_subscribe_bind("h", stream=uniq)
    m = (await psub.fetch(1, timeout=3))[0]
    assert m.data == b""
    assert m.headers["Nats-Msg-Size"] == "10"


async def test_maxAckPending_limitsOutstanding(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    for i in range(5):
        await js.publish(f"{uniq}.x", str(i).encode())
    await js.add_consumer(uniq, ConsumerConfig(durable_name="m", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=2))
    psub = await js.pull_subscribe_bind("m", stream=uniq)
    first = await psub.fetch(5, timeout=1)
    assert len(first) == 2
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=0.5)
    await first[0].ack_sync()
    nxt = await psub.fetch(5, timeout=1)
    assert [m.metadata.sequence.stream for m in nxt] == [3]


async def test_pushConsumer_ephemeralGoneAfterUnsubscribe(js, js_nc, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.publish(f"{uniq}.x", b"1")
    sub = await js.subscribe(f"{uniq}.x", stream=uniq, inactive_threshold=0.5)
    assert (await sub.next_msg(timeout=3)).data == b"1"
    await sub.unsubscribe()
    await settle(js_nc)
    names = []
    for _ in range(40):
        names = (await api(js_nc, f"$JS.API.CONSUMER.NAMES.{uniq}"))["consumers"]
        if not names:
            break
        await asyncio.sleep(0.1)
    assert names == []
