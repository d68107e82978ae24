"""Regression test for finding 2 of docs/chaos.md: acknowledged messages delivered again after
the stream leader moved.

A stream leader that is frozen (SIGSTOP) and cut off from its peers is replaced; the new
leader delivers messages and confirms their acks. When the old leader resumes, it still
believes it leads (its Raft tick clock stood still while it was stopped, and it has not heard
of the newer term), and a pull request that a client sent it while it was stopped is waiting
in its socket. Before the fix it served that request from its stale consumer state: the very
messages the new leader had delivered and had acked, with delivery count 1. The leader's
wall-clock lease (RaftHost.holdsLease) now keeps it from delivering at all.

Deterministic: the stale pull request is sent only once every thread of the old leader has
stopped (a bare SIGSTOP leaves the others running for a moment, and the request was once
served in that moment and its reply sent after SIGCONT), the old leader stays cut off until
the client's fetch has ended, and nothing depends on how fast a node runs.
"""
from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from cluster import ChaosCluster
from test_chaos_short import clusterd_bin
from workload import RawPull, ack_seqs

STREAM, DURABLE = "FAILOVER", "CFAILOVER"
STALE_FETCH_S = 6


async def _connect(url: str):
    return await nats.connect(url, allow_reconnect=False, connect_timeout=3)


async def _leader(js, attempts: int = 60, stream: str = STREAM) -> str | None:
    """The stream's leader once one answers (None after `attempts` quarter seconds)."""
    for _ in range(attempts):
        try:
            si = await js.stream_info(stream)
            if si.cluster and si.cluster.leader:
                return si.cluster.leader
        except Exception:  # noqa: BLE001 - elections in progress
            pass
        await asyncio.sleep(0.25)
    return None


async def _new_leader(js, old: str, stream: str = STREAM) -> str | None:
    """The stream's leader once it is another node than `old` (bounded; the last seen if not)."""
    new = None
    for _ in range(60):
        new = await _leader(js, stream=stream)
        if new and new != old:
            break
        await asyncio.sleep(0.25)
    return new


async def add_stream_and_durable(js, stream: str, prefix: str, durable: str, **consumer) -> None:
    """An R3 stream on `<prefix>.>` with an explicit-ack durable, and 30 messages in it."""
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"], num_replicas=3))
    # ack_wait far beyond the test: any second delivery can only come from another state.
    await js.add_consumer(stream, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                                 ack_wait=120, **consumer))
    for i in range(30):
        await js.publish(f"{prefix}.{i}", f"m{i}".encode())


def run_scenario(name: str, scenario) -> None:
    """Runs `scenario(cluster)` on a fresh three-node clusterd chaos cluster, always torn down."""
    async def main() -> None:
        async with ChaosCluster("clusterd", clusterd_bin(), 3, name=name) as cluster:
            await scenario(cluster)
    asyncio.run(main())


async def _scenario(cluster: ChaosCluster) -> None:
    names = [n.name for n in cluster.nodes]
    admin = await _connect(cluster.nodes[0].url)
    js = admin.jetstream(timeout=5)
    await add_stream_and_durable(js, STREAM, "failover", DURABLE)
    old = await _leader(js)
    assert old in names, f"no stream leader: {old}"
    survivor = next(n for n in cluster.nodes if n.name != old)
    await admin.close()

    # A raw pull on the old leader: every message sent to its inbox is recorded (a client
    # library's fetch may drop what came before a 409 status).
    stale_nc = await _connect(cluster.node(old).url)
    stale_pull = RawPull(stale_nc, STREAM, DURABLE, time.monotonic)
    await stale_pull.start()
    nc = await _connect(survivor.url)
    try:
        cluster.partition({(a, b) for a in names for b in names if a != b and old in (a, b)})
        cluster.pause(old)
        # Sent while the old leader is stopped: waits in its socket until it resumes.
        # Its expiry outlasts the election and the acks below.
        await stale_pull.request(10, STALE_FETCH_S)
        js2 = nc.jetstream(timeout=5)
        new = await _new_leader(js2, old)
        assert new and new != old, f"no new leader elected while {old} was stopped (saw {new})"
        pull = RawPull(nc, STREAM, DURABLE, time.monotonic)
        await pull.start()
        acked: set[int] = set()   # stream seqs whose ack the new leader confirmed
        for _ in range(20):
            if len(acked) >= 10:
                break
            for _, m in await pull.fetch(10 - len(acked), timeout=2):
                await m.ack_sync(timeout=5)
                acked.add(ack_seqs(m.reply)[0])
        assert len(acked) >= 10, f"the new leader {new} delivered only {sorted(acked)}"
        print(f"old leader {old} stopped and cut off; new leader {new} delivered and confirmed acks of {sorted(acked)}")

        cluster.resume(old)  # still cut off: it has not heard of the newer term
        # The old leader answers its pull within the pull's expiry (messages, or a 408/409
        # status, which `RawPull` leaves out); wait it out, then look at what it sent.
        await asyncio.sleep(STALE_FETCH_S)
        # (stream seq, delivery count) of each delivery. The pull reached the old leader only
        # after every thread of it had stopped (`freeze`), and since it resumed no quorum could
        # renew its lease: whatever it sent is a delivery without a lease.
        stale = [tuple(ack_seqs(m.reply)[:2]) for _, m in stale_pull.drain()]
        print(f"the old leader delivered (seq, count) {stale}")
        assert not stale, (f"old leader {old} delivered {stale} after resuming "
                           f"(the new leader {new} confirmed acks of {sorted(acked)})")

    finally:
        cluster.heal()
        await stale_nc.close()
        await nc.close()


@pytest.mark.chaos
def test_resumed_old_leader_does_not_redeliver_acked_messages():
    run_scenario("failover", _scenario)
