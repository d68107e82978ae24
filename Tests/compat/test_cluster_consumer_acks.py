"""A durable's acks sent together on a three-node cluster: every double ack is confirmed, and
the consumer state a new stream leader loads after the old one crashed holds all of them.

clusterd writes the consumer records of one Raft round once, the last of each consumer (the
`StreamReplica` record batch); a write of an earlier record of the round would make the new
leader hand the acked messages out again. Runs against nats-server too (same behaviour).
"""
from __future__ import annotations

import asyncio
import time

import nats
import pytest

from clusterproc import Cluster, cluster_fixture, first_fetch, retry

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]

COUNT = 40


cluster = cluster_fixture("compat")


async def test_acks_sent_together_survive_a_leader_crash(cluster: Cluster):
    nc = await nats.connect(cluster.nodes[1].url, allow_reconnect=False, connect_timeout=3)
    js = nc.jetstream(timeout=5)
    try:
        await retry(lambda: js.add_stream(name="BURST", subjects=["burst.>"], num_replicas=3))
        for i in range(COUNT + 1):
            await retry(lambda i=i: js.publish("burst.a", f"b{i}".encode()))
        sub = await js.pull_subscribe("burst.>", "workers", stream="BURST")
        got = []
        while len(got) < COUNT:
            got += await first_fetch(cluster, sub, COUNT - len(got))
        # Every ack on the wire before the first reply is awaited: one Raft round holds many.
        replies = await asyncio.gather(*(m.ack_sync(timeout=5) for m in got), return_exceptions=True)
        assert not [r for r in replies if isinstance(r, BaseException)], replies
        await asyncio.sleep(0.5)  # nats-server replicates its consumer state in the background
        leader = (await js.stream_info("BURST")).cluster.leader
    finally:
        await nc.close()
    print(f"killing stream leader {leader} at {time.strftime('%H:%M:%S', time.gmtime())}")  # shown if it fails
    cluster.node(leader).kill()
    print(f"killed at {time.strftime('%H:%M:%S', time.gmtime())}")
    survivor = next(n for n in cluster.nodes if n.proc is not None)
    nc = await nats.connect(survivor.url, allow_reconnect=False, connect_timeout=3)
    js = nc.jetstream(timeout=3)
    try:
        sub = await retry(lambda: js.pull_subscribe("burst.>", "workers", stream="BURST"), seconds=15, what="the durable on the new leader")
        msgs = await retry(lambda: sub.fetch(1, timeout=2), seconds=15, what="a message from the new leader")
        # The first message not acked, delivered for the first time: no acked one comes back.
        assert msgs[0].data.decode() == f"b{COUNT}"
        assert msgs[0].metadata.num_delivered == 1
        ci = await retry(lambda: js.consumer_info("BURST", "workers"), seconds=15, what="consumer info")
        assert ci.ack_floor.stream_seq == COUNT
    finally:
        await nc.close()
