"""A stream leader that lost its quorum says so, as nats-server 2.15.1 does (checked side by
side): it logs `JetStream cluster stream '<account> > <stream>' has NO quorum, stalled` and
publishes `$JS.EVENT.ADVISORY.STREAM.QUORUM_LOST.<stream>` (type
`io.nats.jetstream.advisory.v1.stream_quorum_lost`, with the stream, its replicas, a unique
`id` and a `timestamp`) in the stream's account, once per loss (nats-server repeats it at most
every 10 s), for a group that ran 5 s or more (nats-server's rule: none at start-up).
"""
from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest

from clusterproc import Cluster, cluster_fixture, retry

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]

cluster = cluster_fixture("compat")

ADVISORY = "$JS.EVENT.ADVISORY.STREAM.QUORUM_LOST."


async def test_leader_that_lost_its_quorum_warns_and_advises_once(cluster: Cluster):
    nc = await nats.connect(cluster.nodes[0].url, allow_reconnect=False, connect_timeout=3)
    js = nc.jetstream(timeout=5)
    try:
        await retry(lambda: js.add_stream(name="QL", subjects=["ql.>"], num_replicas=3))
        created = time.monotonic()
        await retry(lambda: js.publish("ql.a", b"x"))
        leader_name = (await retry(lambda: js.stream_info("QL"))).cluster.leader
    finally:
        await nc.close()
    leader = cluster.node(leader_name)
    nc = await nats.connect(leader.url, allow_reconnect=False, connect_timeout=3)
    seen: list[tuple[str, dict]] = []
    try:
        async def note(m):
            seen.append((m.subject, json.loads(m.data)))

        await nc.subscribe(ADVISORY + ">", cb=note)
        await nc.flush()
        # nats-server advises only for a group that ran 5 s.
        await asyncio.sleep(max(0.0, 5.5 - (time.monotonic() - created)))
        followers = [n for n in cluster.nodes if n is not leader]
        for n in followers:
            n.kill()
        killed = time.monotonic()
        deadline = killed + 40
        while not seen and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert seen, "no quorum-lost advisory within 40 s of losing both followers"
        print(f"quorum-lost advisory {time.monotonic() - killed:.1f} s after the kill")
        await asyncio.sleep(1)  # a second one would come now (both servers repeat it 10 s apart at most)
        assert len(seen) == 1, seen
        subject, adv = seen[0]
        assert subject == ADVISORY + "QL"
        assert adv["type"] == "io.nats.jetstream.advisory.v1.stream_quorum_lost"
        assert adv["stream"] == "QL"
        assert adv["id"] and adv["timestamp"]
        names = sorted(r["name"] for r in adv["replicas"])
        assert set(names) <= {"n1", "n2", "n3"} and {f.extra_args[f.extra_args.index("-n") + 1] for f in followers} <= set(names), adv
    finally:
        await nc.close()
    assert "JetStream cluster stream '$G > QL' has NO quorum, stalled" in leader.stderr_text()

