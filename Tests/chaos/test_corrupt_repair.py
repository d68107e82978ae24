"""Disk corruption in a sealed segment (issue 8): bytes flipped in a sealed segment of one
stopped replica are found after it restarts and repaired by copying the stream from the
leader; nothing is lost and nothing corrupt is served.

Opening a store CRC-checks only the tail segment and trusts the sealed segments' index files,
so without the scrub (StreamReplica+Scrub.swift) the damage stays unseen and the replica
serves a stream with holes once it leads. The stream segments are 4 KiB here
(CLUSTERD_STREAM_SEGMENT_BYTES) so that 300 small messages fill dozens of sealed ones.

Deterministic: seeded byte offsets, a stopped node's files, and waits bounded by deadlines
on observable state (node logs, /jsz), never on how fast a node runs.
"""
from __future__ import annotations

import asyncio
import random
import time

import nats
from nats.js.api import StreamConfig

from cluster import ChaosCluster, run_scenario
from test_chaos_short import clusterd_bin
from test_failover_consumer import _leader

STREAM = "SEALED"
COUNT = 300


async def _until(what: str, cond, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {timeout}s: {what}")


def _state(cluster: ChaosCluster, name: str) -> dict:
    try:
        return cluster.local_stream_state(cluster.node(name), STREAM) or {}
    except OSError:
        return {}


async def _filled_follower(cluster: ChaosCluster) -> str:
    """Creates the R3 stream, publishes COUNT messages, returns a follower holding them all."""
    nc = await nats.connect(cluster.nodes[0].url, allow_reconnect=False, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name=STREAM, subjects=["sealed.>"], num_replicas=3, allow_direct=True))
        for i in range(COUNT):
            ack = await js.publish(f"sealed.{i % 7}", f"m{i:04d}".encode() * 8)
            assert ack.seq == i + 1
        leader = await _leader(js, 120, STREAM)
        assert leader, "no stream leader"
    finally:
        await nc.close()
    victim = next(n.name for n in cluster.nodes if n.name != leader)
    await _until(f"{victim} holds all {COUNT}", lambda: _state(cluster, victim).get("last_seq") == COUNT)
    return victim


async def _repaired(cluster: ChaosCluster, victim: str, found: str, what: str) -> None:
    """Waits until `victim` logged `found`, installed a copy and holds every message again."""
    node = cluster.node(victim)
    await _until(f"{victim} finds the damage ('{found}') and installs a copy from the leader ({what})",
                 lambda: found in node.log_tail(20000) and "installed a copy" in node.log_tail(20000))
    await _until(f"{victim} holds all {COUNT} after the repair",
                 lambda: (_state(cluster, victim).get("messages"), _state(cluster, victim).get("last_seq")) == (COUNT, COUNT))


async def _scenario(cluster: ChaosCluster) -> None:
    victim = await _filled_follower(cluster)
    cluster.kill(victim)
    what = cluster.corrupt_segment(victim, STREAM, random.Random(8))
    assert what and " sealed " in what, f"no sealed segment to corrupt: {what}"
    cluster.restart(victim)
    await _repaired(cluster, victim, "corrupt bytes", what)
    node = cluster.node(victim)

    # Every message read on the repaired node (direct gets prefer the local replica) is the
    # one published at that sequence.
    nc = await nats.connect(node.url, allow_reconnect=False, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        for seq in range(1, COUNT + 1):
            for attempt in range(40):
                try:
                    m = await js.get_msg(STREAM, seq, direct=True)
                    break
                except Exception:  # noqa: BLE001 - the replica rejoins the direct-get group
                    if attempt == 39:
                        raise
                    await asyncio.sleep(0.25)
            i = seq - 1
            assert (m.subject, m.data) == (f"sealed.{i % 7}", f"m{i:04d}".encode() * 8), f"seq {seq}: {m.subject} {m.data[:16]!r}"
    finally:
        await nc.close()


async def _while_running(cluster: ChaosCluster) -> None:
    """Bit rot under a live replica: nothing reads the damaged block, the periodic scrub
    (CLUSTERD_SCRUB_SECONDS=2 here) finds it and the replica repairs itself."""
    victim = await _filled_follower(cluster)
    what = cluster.corrupt_segment(victim, STREAM, random.Random(9), running=True)
    assert what and " sealed " in what, f"no sealed segment to corrupt: {what}"
    await _repaired(cluster, victim, "the scrub of its sealed segments found corrupt bytes", what)


def test_corrupt_sealed_segment_of_a_running_replica_is_found_by_the_periodic_scrub():
    run_scenario(clusterd_bin(), "rot", _while_running, timeout=180, segment_bytes=4096,
                 env={"CLUSTERD_SCRUB_SECONDS": "2"})


def test_corrupt_sealed_segment_is_repaired_from_the_leader():
    run_scenario(clusterd_bin(), "sealed", _scenario, timeout=180, segment_bytes=4096)
