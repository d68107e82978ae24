"""Clock jumps (issue 8): ack_wait and redelivery must not follow a jump of the stream
leader's wall clock. Before ack deadlines moved to the monotonic clock (Consumer.ackClockNanos)
a forward jump expired every outstanding delivery at once (chaos seed 41: confirmed acks
redelivered) and a backward jump held redeliveries back by the size of the jump.

Nor may duplicate windows: before the leader stamped entries with a dedup time
(DedupClock), a forward jump larger than duplicate_window expired every Nats-Msg-Id at once, so
a retried publish was stored twice (chaos finding 12).

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


DEDUP = "DEDUP"


def _msg_id(i: str) -> dict[str, str]:
    return {"Nats-Msg-Id": i}


async def _new_leader(js, old: str, attempts: int = 120) -> str:
    for _ in range(attempts):
        leader = await _leader(js, 4, DEDUP)
        if leader and leader != old:
            return leader
        await asyncio.sleep(0.25)
    raise AssertionError(f"no new leader of {DEDUP} after {old} stepped down")


def _local_count(cluster: ChaosCluster, n) -> int:
    try:
        return (cluster.local_stream_state(n, DEDUP) or {}).get("messages", -1)
    except Exception:  # noqa: BLE001 - a node still starting
        return -1


async def _local_counts(cluster: ChaosCluster, want: int) -> dict[str, int]:
    """Each node's own message count of DEDUP, waiting (bounded) until all are `want`."""
    counts: dict[str, int] = {}
    for _ in range(240):
        counts = {n.name: _local_count(cluster, n) for n in cluster.nodes}
        if set(counts.values()) == {want}:
            break
        await asyncio.sleep(0.25)
    return counts


async def _publish(js, data: bytes, msg_id: str):
    """Publishes, retrying (same id) through elections: what a client does after an error."""
    last: Exception | None = None
    for _ in range(40):
        try:
            return await js.publish("dedup.a", data, headers=_msg_id(msg_id))
        except Exception as e:  # noqa: BLE001 - 503 / timeout while a leader is elected
            last = e
            await asyncio.sleep(0.5)
    raise AssertionError(f"publish {msg_id} failed 40 times: {last}")


async def _dedup_scenario(cluster: ChaosCluster) -> None:
    nc = await nats.connect(cluster.nodes[0].url, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name=DEDUP, subjects=["dedup.>"], num_replicas=3, duplicate_window=30))
        leader = await _leader(js, 120, DEDUP)
        assert leader, "no stream leader"
        first = await _publish(js, b"once", "once")
        assert (first.seq, bool(first.duplicate)) == (1, False)

        # The leader's clock leaps 10 min, far past the 30 s window; the client then retries
        # the publish it already has an ack for (as after a lost PubAck).
        cluster.set_clock(leader, TEN_MINUTES_MS)
        await _jumped(cluster, leader, TEN_MINUTES_MS)
        other = await _publish(js, b"other", "other")
        assert other.seq == 2
        retry = await _publish(js, b"once", "once")
        assert (retry.seq, bool(retry.duplicate)) == (1, True), \
            f"a retried publish was stored again after a forward clock jump: {retry}"

        # Another leader (a clock 10 min behind the stamps) still knows the id.
        await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{DEDUP}", b"", timeout=5)
        leader = await _new_leader(js, leader)
        retry = await _publish(js, b"once", "once")
        assert (retry.seq, bool(retry.duplicate)) == (1, True), f"stored again after a leader change: {retry}"

        # A restarted follower rebuilds the same window from its files.
        follower = next(n.name for n in cluster.nodes[1:] if n.name != leader)
        cluster.restart(follower)
        counts = await _local_counts(cluster, 2)
        assert set(counts.values()) == {2}, f"replicas disagree or hold a duplicate: {counts}"
        await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{DEDUP}", b"", timeout=5)
        leader = await _new_leader(js, leader)
        retry = await _publish(js, b"once", "once")
        assert (retry.seq, bool(retry.duplicate)) == (1, True), f"stored again after a restart: {retry}"
        await asyncio.sleep(1)  # the retry's entry applies on every replica
        counts = await _local_counts(cluster, 2)
        assert set(counts.values()) == {2}, f"replicas disagree or hold a duplicate: {counts}"
    finally:
        await nc.close()


EXPIRY = "EXPIRY"


async def _expiry_scenario(cluster: ChaosCluster) -> None:
    """A follower's clock runs 3 s ahead. Before the leader decided max_age expiry (an `expire`
    op applied in log order), that follower expired a message by its own clock while the
    leader still held it, refused the next publish's `Nats-Expected-Last-Subject-Sequence` at
    apply, and its copy stopped one sequence short of its peers'."""
    nc = await nats.connect(cluster.nodes[0].url, allow_reconnect=False, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name=EXPIRY, subjects=["expiry.>"], num_replicas=3, max_age=4))
        leader = await _leader(js, 120, EXPIRY)
        assert leader, "no stream leader"
        first = await js.publish("expiry.k", b"1")
        follower = next(n.name for n in cluster.nodes if n.name != leader)
        cluster.set_clock(follower, 3000)
        await _jumped(cluster, follower, 3000)
        await asyncio.sleep(1.5)  # the follower's clock now reads past the message's max_age
        second = await js.publish("expiry.k", b"2", headers={"Nats-Expected-Last-Subject-Sequence": str(first.seq)})
        assert second.seq == first.seq + 1
        states: dict[str, object] = {}
        for _ in range(80):  # bounded: every replica applies the second publish
            states = {n.name: (cluster.local_stream_state(n, EXPIRY) or {}).get("last_seq") for n in cluster.nodes}
            if set(states.values()) == {second.seq}:
                break
            await asyncio.sleep(0.25)
        assert set(states.values()) == {second.seq}, \
            f"replicas' last sequences after a checked publish (leader {leader}, {follower} 3 s ahead): {states}"
    finally:
        await nc.close()


def test_max_age_is_expired_by_the_leaders_clock_on_every_replica():
    run_scenario(clusterd_bin(), "expiryclock", _expiry_scenario, timeout=120, test_clock=True)


def test_retried_publish_after_a_forward_clock_jump_is_not_stored_twice():
    run_scenario(clusterd_bin(), "dedupclock", _dedup_scenario, timeout=200, test_clock=True)


def test_ack_wait_ignores_wall_clock_jumps_of_the_leader():
    run_scenario(clusterd_bin(), "clock", _scenario, timeout=150, test_clock=True)
