"""JetStream consumers: pull (fetch, batch, expires, no_wait), push with queue groups,
ack / nak / term / in-progress, redelivery after ack_wait, max_deliver, ordered consumers."""
from __future__ import annotations

import asyncio
import json
import time

import nats.errors
import nats.js.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from natsutil import pull_raw, settle, status_of

pytestmark = pytest.mark.jetstream

NS = 1_000_000_000


async def stream_with(js, name: str, n: int, subject: str | None = None) -> None:
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    for i in range(1, n + 1):
        await js.publish(subject or f"{name}.m", str(i).encode())


async def test_consumerInfo_unknown_10014_andUnknownStream_10059(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    with pytest.raises(nats.js.errors.NotFoundError) as ei:
        await js.consumer_info(uniq, "nope")
    assert ei.value.err_code == 10014
    with pytest.raises(nats.js.errors.NotFoundError) as ei:
        await js.add_consumer(uniq + "missing", ConsumerConfig(durable_name="d"))
    assert ei.value.err_code == 10059


async def test_durableConsumer_createInfoDelete(js, uniq):
    await stream_with(js, uniq, 3)
    ci = await js.add_consumer(uniq, ConsumerConfig(durable_name="dur", ack_policy=AckPolicy.EXPLICIT))
    assert ci.name == "dur" and ci.stream_name == uniq
    assert ci.num_pending == 3 and ci.num_ack_pending == 0
    assert ci.config.ack_wait == 30  # seconds in nats-py; 30 s default on the wire
    assert ci.config.max_deliver == -1
    again = await js.consumer_info(uniq, "dur")
    assert again.delivered.stream_seq == 0
    assert await js.delete_consumer(uniq, "dur") is True
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.consumer_info(uniq, "dur")


async def test_pull_fetchBatches_inOrder_ackAdvancesFloor(js, uniq):
    await stream_with(js, uniq, 10)
    psub = await js.pull_subscribe(f"{uniq}.>", durable="p", stream=uniq)
    first = await psub.fetch(4, timeout=3)
    assert [m.data for m in first] == [b"1", b"2", b"3", b"4"]
    md = first[0].metadata
    assert (md.stream, md.consumer, md.sequence.stream, md.sequence.consumer, md.num_delivered) == (uniq, "p", 1, 1, 1)
    assert md.num_pending == 9
    assert first[0].reply.startswith(f"$JS.ACK.{uniq}.p.1.1.1.")
    for m in first:
        await m.ack()
    rest = await psub.fetch(10, timeout=1)
    assert [m.data for m in rest] == [str(i).encode() for i in range(5, 11)]
    for m in rest:
        await m.ack_sync()
    ci = await js.consumer_info(uniq, "p")
    assert (ci.ack_floor.stream_seq, ci.num_ack_pending, ci.num_pending) == (10, 0, 0)


async def test_pull_fetchEmpty_timesOut(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    psub = await js.pull_subscribe(f"{uniq}.>", durable="p", stream=uniq)
    t0 = time.monotonic()
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=0.5)
    assert time.monotonic() - t0 < 2.0


async def test_pull_noWait_emptyStream_404NoMessages(js, js_nc, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.add_consumer(uniq, ConsumerConfig(durable_name="nw", ack_policy=AckPolicy.EXPLICIT))
    msgs = await pull_raw(js_nc, uniq, "nw", {"batch": 1, "no_wait": True}, until_status=True)
    assert len(msgs) == 1
    assert status_of(msgs[0]) == "404"
    assert msgs[0].data == b""


async def test_pull_noWait_partial_returnsAvailableThenStatus(js, js_nc, uniq, cluster_mode):
    await stream_with(js, uniq, 2)
    await js.add_consumer(uniq, ConsumerConfig(durable_name="nw", ack_policy=AckPolicy.EXPLICIT))
    msgs = await pull_raw(js_nc, uniq, "nw", {"batch": 5, "no_wait": True}, until_status=True)
    assert [m.data for m in msgs[:2]] == [b"1", b"2"]
    # A replicated (R3) consumer ends a partly served no_wait pull with 408, one node with 404.
    assert len(msgs) == 3 and status_of(msgs[2]) == ("408" if cluster_mode else "404"), [m.headers for m in msgs]


async def test_pull_expires_partialBatch_then408RequestTimeout(js, js_nc, uniq):
    await stream_with(js, uniq, 2)
    await js.add_consumer(uniq, ConsumerConfig(durable_name="ex", ack_policy=AckPolicy.EXPLICIT))
    t0 = time.monotonic()
    msgs = await pull_raw(js_nc, uniq, "ex", {"batch": 5, "expires": int(0.5 * NS)}, until_status=True)
    elapsed = time.monotonic() - t0
    assert [m.data for m in msgs[:2]] == [b"1", b"2"]
    assert len(msgs) == 3, [m.headers for m in msgs]
    assert status_of(msgs[2]) == "408"
    assert msgs[2].headers.get("Nats-Pending-Messages") == "3"
    assert 0.3 <= elapsed <= 2.5, elapsed


async def test_pull_waitingRequest_servedWhenMessageArrives(js, js_nc, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    await js.add_consumer(uniq, ConsumerConfig(durable_name="w", ack_policy=AckPolicy.EXPLICIT))
    task = asyncio.create_task(pull_raw(js_nc, uniq, "w", {"batch": 1, "expires": 3 * NS}, until_status=False,
                                        max_msgs=1))
    await asyncio.sleep(0.3)
    await js.publish(f"{uniq}.late", b"late")
    msgs = await asyncio.wait_for(task, 5)
    assert [m.data for m in msgs] == [b"late"]


async def test_ack_nak_redeliversImmediately(js, uniq):
    await stream_with(js, uniq, 1)
    psub = await js.pull_subscribe(f"{uniq}.>", durable="n", stream=uniq)
    m = (await psub.fetch(1, timeout=3))[0]
    await m.nak()
    t0 = time.monotonic()
    again = (await psub.fetch(1, timeout=3))[0]
    assert time.monotonic() - t0 < 1.0
    assert again.data == b"1" and again.metadata.num_delivered == 2
    await again.ack_sync()


async def test_ack_none_redeliveredAfterAckWait(js, uniq):
    await stream_with(js, uniq, 1)
    psub = await js.pull_subscribe(f"{uniq}.>", durable="aw", stream=uniq,
                                   config=ConsumerConfig(ack_wait=0.5))
    m = (await psub.fetch(1, timeout=3))[0]
    assert m.metadata.num_delivered == 1
    t0 = time.monotonic()
    again = (await psub.fetch(1, timeout=4))[0]
    assert time.monotonic() - t0 >= 0.2
    assert (again.data, again.metadata.num_delivered) == (b"1", 2)
    await again.ack_sync()
    ci = await js.consumer_info(uniq, "aw")
    assert ci.num_redelivered == 0 and ci.num_ack_pending == 0


async def test_ack_term_neverRedelivered(js, uniq):
    await stream_with(js, uniq, 1)
    psub = await js.pull_subscribe(f"{uniq}.>", durable="t", stream=uniq,
                                   config=ConsumerConfig(ack_wait=0.5))
    m = (await psub.fetch(1, timeout=3))[0]
    await m.term()
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=1.2)
    assert (await js.consumer_info(uniq, "t")).num_ack_pending == 0


async def test_ack_inProgress_extendsAckWait(js, uniq):
    await stream_with(js, uniq, 1)
    psub = await js.pull_subscribe(f"{uniq}.>", durable="ip", stream=uniq,
                                   config=ConsumerConfig(ack_wait=1.0))
    m = (await psub.fetch(1, timeout=3))[0]
    for _ in range(4):           # 1.6 s of work, ack_wait 1 s
        await asyncio.sleep(0.4)
        await m.in_progress()
    await m.ack_sync()
    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=1.2)
    ci = await js.consumer_info(uniq, "ip")
    assert (ci.num_redelivered, ci.ack_floor.stream_seq) == (0, 1)


async def test_maxDeliver_stopsRedelivering(js, uniq):
    await stream_with(js, uniq, 1)
    psub = await js.pull_subscribe(f"{uniq}.>", durable="md", stream=uniq,
                                   config=ConsumerConfig(ack_wait=0.4, max_deliver=2))
    deliveries = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        try:
            deliveries += [m.metadata.num_delivered for m in await psub.fetch(1, timeout=0.6)]
        except nats.errors.TimeoutError:
            pass
    assert deliveries == [1, 2]


async def test_push_queueGroup_splitsMessagesOnceEach(js, connect, js_server, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    conns = [await connect(js_server.url) for _ in range(2)]
    subs = [await c.jetstream().subscribe(f"{uniq}.>", queue="workers", durable="workers", stream=uniq,
                                          manual_ack=True) for c in conns]
    await settle(*conns)
    for i in range(40):
        await js.publish(f"{uniq}.w", str(i).encode())
    got = {0: [], 1: []}
    deadline = time.monotonic() + 5
    while sum(len(v) for v in got.values()) < 40 and time.monotonic() < deadline:
        for k, s in enumerate(subs):
            try:
                m = await s.next_msg(timeout=0.05)
            except nats.errors.TimeoutError:
                continue
            got[k].append(m.data)
            await m.ack()
    everything = got[0] + got[1]
    assert sorted(everything, key=int) == [str(i).encode() for i in range(40)]
    assert got[0] and got[1], {k: len(v) for k, v in got.items()}
    ci = await js.consumer_info(uniq, "workers")
    assert ci.config.deliver_group == "workers"


async def test_push_durable_deliverPolicies(js, uniq, cluster_mode, server_kind):
    await stream_with(js, uniq, 5)
    last = await js.subscribe(f"{uniq}.>", stream=uniq, deliver_policy=DeliverPolicy.LAST, manual_ack=True)
    if cluster_mode and server_kind == "nats-server":
        # "Last" is the last message on the consumer leader's replica, which may not have
        # applied every acked publish yet (a nats-server 2.15 cluster started at 1 of 5 once in
        # CI): an older message may come first, then the rest in order, up to the true last.
        # clusterd runs consumers on the stream leader, which applied every acked publish, so
        # it is held to the exact answer.
        got = [int((await last.next_msg(timeout=3)).data)]
        while got[-1] != 5:
            got.append(int((await last.next_msg(timeout=3)).data))
        assert got == list(range(got[0], 6)), got
    else:
        assert (await last.next_msg(timeout=3)).data == b"5"
    new = await js.subscribe(f"{uniq}.>", stream=uniq, deliver_policy=DeliverPolicy.NEW, manual_ack=True)
    if cluster_mode:
        # "New" is counted from the consumer leader's replica, which may not have applied the
        # last acked publish yet (nats-server too): at most already-stored messages come first.
        await js.publish(f"{uniq}.m", b"6")
        early = []
        while (m := await new.next_msg(timeout=3)).data != b"6":
            early.append(int(m.data))
            assert len(early) <= 5 and early[-1] <= 5, early
    else:
        with pytest.raises(nats.errors.TimeoutError):
            await new.next_msg(timeout=0.3)
        await js.publish(f"{uniq}.m", b"6")
        assert (await new.next_msg(timeout=3)).data == b"6"
    by_seq = await js.subscribe(f"{uniq}.>", stream=uniq, config=ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=4), manual_ack=True)
    assert [(await by_seq.next_msg(timeout=3)).data for _ in range(3)] == [b"4", b"5", b"6"]


async def test_filteredConsumer_onlyMatchingSubjects(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    for s in ("a", "b", "a", "c", "a"):
        await js.publish(f"{uniq}.{s}", s.encode())
    psub = await js.pull_subscribe(f"{uniq}.a", durable="fa", stream=uniq)
    msgs = []
    # A cluster's consumer leader may read a replica a moment behind the publish acks.
    for _ in range(5):
        if len(msgs) >= 3:
            break
        try:
            msgs += await psub.fetch(5 - len(msgs), timeout=1)
        except nats.errors.TimeoutError:
            pass
    assert [m.metadata.sequence.stream for m in msgs] == [1, 3, 5]
    assert [m.metadata.sequence.consumer for m in msgs] == [1, 2, 3]


async def test_orderedConsumer_deliversAllInOrder(js, uniq):
    await stream_with(js, uniq, 30)
    sub = await js.subscribe(f"{uniq}.>", stream=uniq, ordered_consumer=True)
    got = [(await sub.next_msg(timeout=3)).data for _ in range(30)]
    assert got == [str(i).encode() for i in range(1, 31)]
    await js.publish(f"{uniq}.m", b"31")
    assert (await sub.next_msg(timeout=3)).data == b"31"
    await sub.unsubscribe()


@pytest.mark.parametrize("size", [500, 1000])
async def test_push_rateLimited_deliversEverything(js, js_nc, connect, js_server, uniq, js_replicas, server_kind, size):
    """`rate_limit_bps` paces a push consumer (the pacing itself: ByteRateLimiterTests); here,
    with a burst of one 1 KiB message (the stream's max_msg_size) and 80 KiB/s, 24 messages
    all arrive, in order, and the config is echoed. A 1000-byte message with its subjects is
    counted past the burst: clusterd sends it when the bucket is full."""
    if size == 1000 and server_kind == "nats-server":
        pytest.skip("nats-server 2.15.1 never delivers a message counted larger than its burst (probed: 0 of 24 in 15 s)")
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], max_msg_size=1024, num_replicas=js_replicas)
    for i in range(24):
        await js.publish(f"{uniq}.r", str(i).encode().ljust(size, b"."))
    inbox = f"_INBOX.{uniq}.rl"
    r = json.loads((await js_nc.request(f"$JS.API.CONSUMER.CREATE.{uniq}.rl", json.dumps(
        {"stream_name": uniq, "config": {"durable_name": "rl", "deliver_subject": inbox, "ack_policy": "none",
                                         "rate_limit_bps": 8 * 80 * 1024}}).encode(), timeout=5)).data)
    assert r["config"]["rate_limit_bps"] == 8 * 80 * 1024, r
    listener = await connect(js_server.url)
    sub = await listener.subscribe(inbox)
    got = []
    deadline = time.monotonic() + 15
    while len(got) < 24:
        assert time.monotonic() < deadline, len(got)
        try:
            got.append(int((await sub.next_msg(timeout=0.5)).data.rstrip(b".")))
        except nats.errors.TimeoutError:
            continue
    assert got == list(range(24))
