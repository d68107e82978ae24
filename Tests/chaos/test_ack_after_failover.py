"""Regression test for finding 15 of docs/chaos.md: an ack confirmed by a new stream leader
for a delivery the old leader made, and the message delivered again.

The stream leader is cut off from its peers and, while its lease still holds, serves a pull:
it delivers 10 messages, but the consumer record that says so can no longer commit. The old
leader is then killed; the other two replicas elect a new leader, whose consumer state is the
last committed record: nothing of the 10 delivered. The client acks the 10 (`ack_sync`) through
another node. Before the fix the new leader ignored those acks (not pending there), confirmed
them anyway once its record committed, and served the next pull the same 10 messages again as
new (delivery count 1). Now it records them as acked ahead and delivers from seq 11 on.

Deterministic except for one timing condition, which is checked: the pull must reach the old
leader within its lease (0.8 s after the last quorum acknowledgement); the setup retries a few
times when the leader refused to deliver because the lease had already run out.
"""
from __future__ import annotations

import asyncio
import time

import nats
import pytest

from cluster import ChaosCluster
from test_failover_consumer import _connect, _leader, _new_leader, add_stream_and_durable, run_scenario
from workload import RawPull, ack_seqs

STREAM, DURABLE = "ACKAHEAD", "CACKAHEAD"
BATCH = 10
ATTEMPTS = 4


async def _stale_delivery(cluster: ChaosCluster, names: list[str]) -> tuple[str, list[str]]:
    """Cuts the stream leader off and has it serve a pull within its lease. Returns the old
    leader and the ack subjects of what it delivered."""
    admin = await _connect(cluster.nodes[0].url)
    js = admin.jetstream(timeout=5)
    try:
        for attempt in range(ATTEMPTS):
            # Fresh commits right before the cut: the leader's lease starts from them.
            for i in range(5):
                await js.publish(f"ackahead.{attempt}.{i}", b"x")
            old = await _leader(js, stream=STREAM)
            assert old in names, f"no stream leader: {old}"
            nc = await _connect(cluster.node(old).url)
            puller = RawPull(nc, STREAM, DURABLE, time.monotonic)
            await puller.start()
            await js.publish(f"ackahead.{attempt}.last", b"x")
            cluster.partition({(a, b) for a in names for b in names if a != b and old in (a, b)})
            got = [m.reply for _, m in await puller.fetch(BATCH, timeout=2)]
            await nc.close()
            if got:
                return old, got
            # The lease ran out before the pull got there (a slow machine): try again.
            print(f"attempt {attempt}: cut-off leader {old} delivered nothing (lease over); healing")
            cluster.partition(set())
            await asyncio.sleep(3)
    finally:
        await admin.close()
    pytest.fail(f"the cut-off stream leader never delivered within its lease in {ATTEMPTS} attempts")


async def _scenario(cluster: ChaosCluster) -> None:
    names = [n.name for n in cluster.nodes]
    admin = await _connect(cluster.nodes[0].url)
    js = admin.jetstream(timeout=5)
    await add_stream_and_durable(js, STREAM, "ackahead", DURABLE, max_ack_pending=1000)
    await admin.close()

    old, stale = await _stale_delivery(cluster, names)
    delivered = sorted(ack_seqs(s) for s in stale)
    print(f"cut-off leader {old} delivered (seq, count, cseq) {delivered}")
    assert not any(p.unknown_dialers for p in cluster.proxies), "a route the proxies cannot attribute (cut ineffective)"
    # Its links stay cut: the proxies hold bytes it wrote before it died (the appends with the
    # record of the deliveries), which healing would hand to the others. Killed, not healed
    # (`heal()` would also restart it with that record in its log).
    cluster.kill(old)

    survivor = next(n for n in cluster.nodes if n.name != old)
    nc = await _connect(survivor.url)
    try:
        js2 = nc.jetstream(timeout=5)
        new = await _new_leader(js2, old, stream=STREAM)
        assert new and new != old, f"no new leader after {old} was killed (saw {new})"

        confirmed: set[int] = set()
        for subject in stale:
            for _ in range(5):
                try:
                    await nc.request(subject, b"+ACK", timeout=3)
                    confirmed.add(ack_seqs(subject)[0])
                    break
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    await asyncio.sleep(0.5)
        print(f"new leader {new} confirmed the acks of {sorted(confirmed)}")
        assert confirmed, "no ack of the old leader's deliveries was confirmed"

        puller = RawPull(nc, STREAM, DURABLE, time.monotonic)
        await puller.start()
        after = [ack_seqs(m.reply) for _, m in await puller.fetch(BATCH, timeout=3)]
        print(f"the new leader then delivered (seq, count, cseq) {after}")
        again = sorted(q for q, _, _ in after if q in confirmed)
        assert not again, f"confirmed acks delivered again by {new}: {again} (all: {after})"
        assert after, f"the new leader {new} delivered nothing after the acks"
        # Consumer sequences the old leader issued are not issued again.
        old_cseqs = {c for _, _, c in delivered}
        assert not old_cseqs & {c for _, _, c in after}, f"consumer sequences reused: {after}"
    finally:
        await nc.close()


@pytest.mark.chaos
def test_acks_of_a_killed_leaders_delivery_are_kept_by_the_new_leader():
    run_scenario("ackahead", _scenario)
