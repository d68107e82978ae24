"""Disk corruption in a sealed segment (issue 8): bytes flipped in a sealed segment of one
stopped replica are found after it restarts and repaired by re-fetching only the messages the
damaged blocks held from the other replicas (not the whole stream); nothing is lost, deleted
messages stay deleted, nothing corrupt is served, and every replica reads back the same.

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
import re
import time

import nats
from nats.js.api import StreamConfig

from cluster import ChaosCluster, run_scenario
from test_chaos_short import clusterd_bin
from test_failover_consumer import _leader

STREAM = "SEALED"
COUNT = 300
# Deleted before the damage: they must stay deleted on every replica after the repair.
DELETED = set(range(5, COUNT + 1, 10))
LIVE = COUNT - len(DELETED)


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
        for seq in sorted(DELETED):
            assert await js.delete_msg(STREAM, seq)
        leader = await _leader(js, 120, STREAM)
        assert leader, "no stream leader"
    finally:
        await nc.close()
    victim = next(n.name for n in cluster.nodes if n.name != leader)
    await _until(f"{victim} holds all {LIVE}", lambda: _state(cluster, victim).get("messages") == LIVE)
    return victim


async def _repaired(cluster: ChaosCluster, victim: str, found: str, what: str) -> int:
    """Waits until `victim` logged `found` and re-fetched the damaged range; returns how many
    messages it fetched. It must not have copied the whole stream."""
    node = cluster.node(victim)
    refetched = re.compile(r"re-fetched (\d+) messages \(sequences ([^)]*)\) of damaged segment")
    try:
        await _until(f"{victim} finds the damage ('{found}') and re-fetches the range ({what})",
                     lambda: found in node.log_tail(200000) and refetched.search(node.log_tail(200000)))
    except AssertionError:
        print("\n".join(ln for ln in node.log_tail(200000).splitlines() if STREAM in ln)[-6000:])
        raise
    log = node.log_tail(200000)
    assert "installed a copy" not in log and "copying the stream" not in log, "fell back to a whole copy"
    fetched = [int(m.group(1)) for m in refetched.finditer(log)]
    ranges = [m.group(2) for m in refetched.finditer(log)]
    print(f"{victim}: re-fetched {fetched} messages, sequences {ranges} ({what})")
    assert 0 < sum(fetched) < LIVE, f"fetched {fetched} of {LIVE}: not just the damaged range"
    await _until(f"{victim} holds all {LIVE} after the repair",
                 lambda: (_state(cluster, victim).get("messages"), _state(cluster, victim).get("last_seq")) == (LIVE, COUNT))
    return sum(fetched)


async def _read_back_everywhere(cluster: ChaosCluster) -> None:
    """Every node's own replica (direct gets prefer the local one) serves exactly the published
    message at every live sequence and nothing at a deleted one."""
    for n in cluster.nodes:
        st = _state(cluster, n.name)
        assert (st.get("messages"), st.get("first_seq"), st.get("last_seq")) == (LIVE, 1, COUNT), f"{n.name}: {st}"
        nc = await nats.connect(n.url, allow_reconnect=False, connect_timeout=3)
        try:
            js = nc.jetstream(timeout=5)
            for seq in range(1, COUNT + 1):
                if seq in DELETED:
                    continue
                for attempt in range(40):
                    try:
                        m = await js.get_msg(STREAM, seq, direct=True)
                        break
                    except Exception:  # noqa: BLE001 - the replica rejoins the direct-get group
                        if attempt == 39:
                            raise
                        await asyncio.sleep(0.25)
                i = seq - 1
                assert (m.subject, m.data) == (f"sealed.{i % 7}", f"m{i:04d}".encode() * 8), \
                    f"{n.name} seq {seq}: {m.subject} {m.data[:16]!r}"
        finally:
            await nc.close()


async def _scenario(cluster: ChaosCluster) -> None:
    victim = await _filled_follower(cluster)
    cluster.kill(victim)
    what = cluster.corrupt_segment(victim, STREAM, random.Random(8))
    assert what and " sealed " in what, f"no sealed segment to corrupt: {what}"
    cluster.restart(victim)
    await _repaired(cluster, victim, "corrupt bytes", what)
    await _read_back_everywhere(cluster)


async def _while_running(cluster: ChaosCluster) -> None:
    """Bit rot under a live replica: nothing reads the damaged block, the periodic scrub
    (CLUSTERD_SCRUB_SECONDS=2 here) finds it and the replica repairs itself."""
    victim = await _filled_follower(cluster)
    what = cluster.corrupt_segment(victim, STREAM, random.Random(9), running=True)
    assert what and " sealed " in what, f"no sealed segment to corrupt: {what}"
    await _repaired(cluster, victim, "the scrub of its sealed segments found corrupt bytes", what)
    await _read_back_everywhere(cluster)


async def _active_while_running(cluster: ChaosCluster) -> None:
    """Bit rot in the segment a live replica appends to: a read meets it (direct gets on the
    victim's node, answered by its own replica first, read every block after the cache turned
    over), the replica seals that segment and re-fetches only the damaged blocks' messages."""
    victim = await _filled_follower(cluster)
    what = cluster.corrupt_segment(victim, STREAM, random.Random(10), running=True, active=True)
    assert what and " active," in what, f"no active segment to corrupt: {what}"
    nc = await nats.connect(cluster.node(victim).url, allow_reconnect=False, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        for seq in range(1, COUNT + 1):
            if seq in DELETED:
                continue
            try:
                await js.get_msg(STREAM, seq, direct=True)
            except Exception:  # noqa: BLE001 - the damaged block reads as absent
                pass
    finally:
        await nc.close()
    await _repaired(cluster, victim, "a read found corrupt bytes", what)
    await _read_back_everywhere(cluster)


def test_corrupt_active_segment_of_a_running_replica_is_sealed_and_repaired_by_range():
    run_scenario(clusterd_bin(), "active", _active_while_running, timeout=180, segment_bytes=4096)


def test_corrupt_sealed_segment_of_a_running_replica_is_found_by_the_periodic_scrub():
    run_scenario(clusterd_bin(), "rot", _while_running, timeout=180, segment_bytes=4096,
                 env={"CLUSTERD_SCRUB_SECONDS": "2"})


def test_corrupt_sealed_segment_is_repaired_from_the_leader():
    run_scenario(clusterd_bin(), "sealed", _scenario, timeout=180, segment_bytes=4096)
