"""Clock jumps (issue 8): ack_wait and redelivery must not follow a jump of the stream
leader's wall clock. Before ack deadlines moved to the monotonic clock (Consumer.ackClockNanos)
a forward jump expired every outstanding delivery at once (chaos seed 41: confirmed acks
redelivered) and a backward jump held redeliveries back by the size of the jump.

Uses clusterd's test-only clock offset (CLUSTERD_TEST_CLOCK, read again on SIGURG). The
assertions bound no server speed: a redelivery within 3 s of a 60 s ack_wait can only come
from the jump, and the expected redelivery after 2 s is waited for up to 30 s.
"""
from __future__ import annotations

import asyncio

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from cluster import ChaosCluster, run_scenario
from test_chaos_short import clusterd_bin
from test_failover_consumer import _leader

STREAM = "CLOCK"
TEN_MINUTES_MS = 600_000


async def _pull(js, durable: str, ack_wait: float):
    await js.add_consumer(STREAM, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                                 ack_wait=ack_wait, filter_subject=f"clock.{durable}"))
    return await js.pull_subscribe(f"clock.{durable}", durable=durable, stream=STREAM)


async def _jumped(cluster: ChaosCluster, name: str, ms: int) -> None:
    """Waits (bounded) until the node logged that its clock took the offset."""
    for _ in range(40):
        if f"-> {ms} ms" in cluster.node(name).log_tail(20000):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{name} did not take the clock offset {ms} ms (CLUSTERD_TEST_CLOCK, SIGURG)")


async def _scenario(cluster: ChaosCluster) -> None:
    nc = await nats.connect(cluster.nodes[0].url, allow_reconnect=False, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name=STREAM, subjects=["clock.>"], num_replicas=3))
        leader = await _leader(js, 120, STREAM)
        assert leader, "no stream leader"
        for durable in ("FWD", "BACK"):
            await js.publish(f"clock.{durable}", durable.encode())

        # Forward: an unacked delivery with 60 s to go is not redelivered by a 10 min jump.
        fwd = await _pull(js, "FWD", 60)
        first = await fwd.fetch(1, timeout=5)
        assert first[0].metadata.num_delivered == 1
        cluster.set_clock(leader, TEN_MINUTES_MS)
        await _jumped(cluster, leader, TEN_MINUTES_MS)
        try:
            again = await fwd.fetch(1, timeout=3)
        except nats.errors.TimeoutError:
            again = []
        assert not again, f"redelivered after a forward clock jump: {[(m.data, m.metadata.num_delivered) for m in again]}"
        await first[0].ack_sync()

        # Backward: an unacked delivery with a 2 s ack_wait is redelivered although the clock
        # now reads 10 min earlier than when it was delivered.
        cluster.set_clock(leader, 0)
        back = await _pull(js, "BACK", 2)
        first = await back.fetch(1, timeout=5)
        assert first[0].metadata.num_delivered == 1
        cluster.set_clock(leader, -TEN_MINUTES_MS)
        await _jumped(cluster, leader, -TEN_MINUTES_MS)
        redelivered = []
        for _ in range(10):
            try:
                redelivered = await back.fetch(1, timeout=3)
                break
            except nats.errors.TimeoutError:
                continue
        assert redelivered and redelivered[0].metadata.num_delivered == 2, \
            "not redelivered within 30 s of a 2 s ack_wait after a backward clock jump"
        await redelivered[0].ack_sync()
    finally:
        await nc.close()


def test_ack_wait_ignores_wall_clock_jumps_of_the_leader():
    run_scenario(clusterd_bin(), "clock", _scenario, timeout=150, test_clock=True)
