"""Subject mappings on a three-node cluster, proven against nats-server 2.15.1 and clusterd:
a publish is mapped once, on the node it was published to (routes carry the mapped subject),
so a subscriber on another node sees the mapped subject, and an R3 stream stores it under the
mapped subject whichever node the publish came through. Every node is a child process on free
loopback ports, reaped by the fixture even on failure."""
from __future__ import annotations

import asyncio
import time

import nats
import pytest

import clusterproc
from clusterproc import Cluster

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]

# `p.*` maps onto itself (`p.<partition>`): mapped a second time on another node, a subject
# would move again (`p.<partition of the partition>`).
CONF = """
mappings {
  "p.*": "p.{{partition(1000,1)}}"
  "m.*.*": "mapped.$2.$1"
}
"""


def _fnv1a(s: str) -> int:
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def _config(tmp_path) -> list[str]:
    conf = tmp_path / "mappings.conf"
    conf.write_text(CONF)
    return ["-c", str(conf)]


cluster = clusterproc.cluster_fixture("mappings", extra_args=_config)


async def test_mappedOnceWhereItWasPublished(cluster: Cluster):
    conns = [await nats.connect(n.url, allow_reconnect=False, connect_timeout=3) for n in cluster.nodes]
    try:
        got = []

        async def seen(m):
            got.append(m.subject)

        await conns[0].subscribe("p.>", cb=seen)
        await conns[0].subscribe("mapped.>", cb=seen)
        await conns[0].flush()
        keys = [f"k{i}" for i in range(10)]
        want = sorted([f"p.{_fnv1a(k) % 1000}" for k in keys] + ["mapped.y.x"])
        # The subscriptions' interest crosses the routes a moment after the subscribe: publish
        # again (fresh keys are not needed, the set of subjects is checked) until it arrives.
        end = time.monotonic() + 10
        while sorted(set(got)) != sorted(set(want)):
            assert time.monotonic() < end, got
            got.clear()
            for k in keys:
                await conns[2].publish(f"p.{k}", b"x")
            await conns[2].publish("m.x.y", b"x")
            await conns[2].flush()
            await asyncio.sleep(0.2)
        assert set(got) == set(want)

        js = conns[0].jetstream(timeout=5)
        await clusterproc.retry(lambda: js.add_stream(name="MAPPED", subjects=["mapped.>"], num_replicas=3))
        for i, nc in enumerate(conns):
            # A retried publish (after a timeout) is a duplicate by its id, not a second message.
            ack = await clusterproc.retry(lambda nc=nc, i=i: nc.jetstream(timeout=5).publish("m.a.b", b"v", headers={"Nats-Msg-Id": f"m{i}"}))
            assert ack.stream == "MAPPED"
        info = await js.stream_info("MAPPED", subjects_filter=">")
        assert info.state.subjects == {"mapped.b.a": 3}, info.state
    finally:
        for nc in conns:
            await nc.close()
