"""A stream update that lowers max_msgs (discard new) while publishes keep arriving, with the
stream's leader killed right after the update commits.

Before, every replica applied an update when its meta entry applied, at its own point of the
stream's log: publishes applied in between were stored by one replica and refused by another,
and the copies' sequences diverged. Now the stream's leader proposes the committed config
into the stream's log and every replica applies it there. Killing the leader at once checks
the hand-over: the op it proposed may be lost, and the next leader proposes it again.

Checked on each node's own copy (its /jsz), once every node is back and has caught up.
"""
from __future__ import annotations

import asyncio

import nats
from nats.js.api import DiscardPolicy, StreamConfig

from cluster import ChaosCluster, run_scenario
from test_chaos_short import clusterd_bin
from test_failover_consumer import _leader

STREAM = "CFGKILL"
LIMIT = 40


async def _publish_until(js, stop: asyncio.Event, acked: list[int]) -> None:
    """Publishes one at a time until `stop`; records the sequence of every acknowledged one."""
    i = 0
    while not stop.is_set() and i < 5000:  # bounded
        i += 1
        try:
            ack = await js.publish(f"cfgkill.{i % 7}", b"x" * 32, timeout=2)
            acked.append(ack.seq)
        except Exception:  # noqa: BLE001 - refused over the limit, or no leader for a moment
            await asyncio.sleep(0.01)


def _copy(cluster: ChaosCluster, n) -> tuple | None:
    """(messages, last_seq) of the node's own copy; None while it does not answer."""
    try:
        s = cluster.local_stream_state(n, STREAM)
    except OSError:  # still starting
        return None
    return s and (s.get("messages"), s.get("last_seq"))


async def _scenario(cluster: ChaosCluster) -> None:
    conns = [await nats.connect(n.url, allow_reconnect=True, max_reconnect_attempts=-1, connect_timeout=3)
             for n in cluster.nodes]
    try:
        admin = conns[0].jetstream(timeout=5)
        await admin.add_stream(StreamConfig(name=STREAM, subjects=["cfgkill.>"], num_replicas=3,
                                            discard=DiscardPolicy.NEW, max_msgs=100_000))
        leader = await _leader(admin, 120, STREAM)
        assert leader, "no stream leader"
        for i in range(LIMIT - 5):
            await admin.publish(f"cfgkill.{i % 7}", b"x" * 32)
        others = [c for c, n in zip(conns, cluster.nodes) if n.name != leader]
        stop, acked = asyncio.Event(), []
        publishers = [asyncio.create_task(_publish_until(c.jetstream(timeout=3), stop, acked)) for c in others]
        await asyncio.sleep(0.3)
        updater = others[0].jetstream(timeout=5)
        await updater.update_stream(StreamConfig(name=STREAM, subjects=["cfgkill.>"], num_replicas=3,
                                                 discard=DiscardPolicy.NEW, max_msgs=LIMIT))
        cluster.kill(leader)
        await asyncio.sleep(2)
        stop.set()
        await asyncio.gather(*publishers)
        cluster.restart(leader)
        states: dict[str, object] = {}
        for _ in range(160):  # bounded: the restarted node catches up
            states = {n.name: _copy(cluster, n) for n in cluster.nodes}
            if len(set(states.values())) == 1 and None not in states.values():
                break
            await asyncio.sleep(0.25)
        assert len(set(states.values())) == 1, f"replicas' (messages, last_seq) after the update (leader {leader} killed): {states}"
        messages, last_seq = next(iter(states.values()))
        assert messages <= LIMIT, f"{messages} messages stored over max_msgs {LIMIT}"
        assert not acked or max(acked) <= last_seq, f"acknowledged seq {max(acked)} beyond the copies' last {last_seq}"
    finally:
        for c in conns:
            await c.close()


def test_lowered_limit_applies_at_one_point_of_the_log_across_a_leader_kill():
    run_scenario(clusterd_bin(), "cfgkill", _scenario, timeout=150)
