"""First boot of a cluster (clusterd): a majority of the configured seeds forms the JetStream
meta group without the seed that is down (after the grace period, docs/jetstream-cluster.md
"First start of a store"), takes replicated writes, and the missing seed joins as a new member
once it starts.

clusterd only: the checks read clusterd's `/jsz` `meta_cluster.members` and its log lines.
Every node is a child process on free loopback ports, reaped even when the test fails; every
wait is bounded.
"""
from __future__ import annotations

import pytest

from clusterproc import Cluster, retry
from test_cluster_membership import connect, print_decisions, voters_online, wait_for

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]


async def test_first_boot_with_one_seed_down(server_binary: str, server_kind: str):
    if server_kind != "clusterd":
        pytest.skip("reads clusterd's /jsz meta_cluster.members and bootstrap log lines")
    import signal
    signal.alarm(180)
    c = Cluster(server_binary, name="boot")
    n1, n2, n3 = c.nodes
    try:
        n1.start()
        n2.start()
        # Two of the three seeds: they wait out the grace period, then bootstrap together.
        c.wait_meta_leader([n1, n2])
        wait_for("n1 and n2 meta voters", lambda: voters_online(c, {"n1", "n2"}))
        assert any("promised to bootstrap the meta group with 2 voter(s) (2 of 3" in n.stderr_text() for n in (n1, n2))
        nc = await connect(n1)
        try:
            js = nc.jetstream(timeout=5)
            await retry(lambda: js.add_stream(name="BOOT", subjects=["boot.>"], num_replicas=2))
            for i in range(5):
                await retry(lambda: js.publish("boot.x", str(i).encode(), headers={"Nats-Msg-Id": f"m{i}"}))
        finally:
            await nc.close()

        # The missing seed comes up: a group runs without it, so it joins as a new member.
        n3.start()
        wait_for("three meta voters", lambda: voters_online(c, {"n1", "n2", "n3"}))
        c.wait_meta_leader()
        assert "waiting to be added to it as a new member" in n3.stderr_text()
        nc = await connect(n3)
        try:
            si = await nc.jetstream(timeout=5).stream_info("BOOT")
            assert si.state.messages == 5
        finally:
            await nc.close()
    finally:
        print_decisions(c)
        c.close()
