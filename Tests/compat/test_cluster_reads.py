"""Reads on a three-node cluster: direct gets (and nats-py KV gets, which use them when the
bucket allows direct access) are answered by every caught-up replica, the one on the client's
node first; clusterd's opt-in linearizable reads (docs/jetstream-cluster.md, "Reads") never
return a value older than an acknowledged write, and a deposed leader never answers one.

Every node is a child process on free loopback ports, reaped by the fixture (a paused node is
resumed first) even when a test fails.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal

import nats
import pytest

from clusterproc import Cluster, retry
from serverproc import ServerProcess, freeze
from test_cluster_jetstream import connect

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]

LINEARIZABLE = {"clusterd.read": "linearizable"}


@pytest.fixture
def cluster(server_binary: str):
    c = Cluster(server_binary)
    paused: list[ServerProcess] = []
    c.paused = paused
    try:
        c.start()
        yield c
    finally:
        for n in paused:
            resume(n)
        c.close()


def pause(cluster: Cluster, node: ServerProcess) -> None:
    freeze(node.proc.pid)
    cluster.paused.append(node)


def resume(node: ServerProcess) -> None:
    if node.proc is not None and node.proc.poll() is None:
        os.kill(node.proc.pid, signal.SIGCONT)


def clusterd_only(server_kind: str) -> None:
    if server_kind != "clusterd":
        pytest.skip("clusterd's linearizable read mode (nats-server has no such switch)")


async def stream_leader(js, stream: str) -> str:
    async def leader():
        si = await js.stream_info(stream)
        assert si.cluster and si.cluster.leader, "no leader yet"
        return si.cluster.leader
    return await retry(leader)


async def test_kv_get_answered_by_followers_while_leader_is_paused(cluster: Cluster, server_kind: str):
    """A KV bucket with direct access: with its stream leader frozen (SIGSTOP), KV gets on a
    follower's node are answered by that follower. Were direct gets served by the leader only,
    they would go to the frozen leader and time out. nats-server lets a follower join the queue
    group only after a while and picks members at random, so there some answered gets are
    required; clusterd requires every get on both followers' nodes to be answered."""
    conns = [await connect(n) for n in cluster.nodes]
    try:
        js = conns[0].jetstream(timeout=5)
        kv = await retry(lambda: js.create_key_value(bucket="DIR", direct=True, replicas=3))
        assert kv._direct, "nats-py reads this bucket with DIRECT.GET"
        for i in range(10):
            await retry(lambda i=i: kv.put(f"k{i}", f"v{i}".encode()))
        leader = await stream_leader(js, "KV_DIR")
        followers = [i for i, n in enumerate(cluster.nodes) if f"n{i + 1}" != leader]
        # Every node answers (through whichever replica), and followers had time to catch up.
        buckets = [await c.jetstream(timeout=2).key_value("DIR") for c in conns]
        for bucket in buckets:
            assert (await retry(lambda b=bucket: b.get("k9"))).value == b"v9"
        await asyncio.sleep(2.0)  # followers prove they are current before joining the queue group
        pause(cluster, cluster.node(leader))
        answered = {}
        for i in followers:
            answered[i] = 0
            for k in range(10):
                try:
                    entry = await buckets[i].get(f"k{k}")
                except nats.errors.TimeoutError:
                    continue
                assert entry.value == f"v{k}".encode()
                answered[i] += 1
        if server_kind == "clusterd":
            assert all(n == 10 for n in answered.values()), answered
        else:
            assert sum(answered.values()) > 0, answered
    finally:
        for c in conns:
            await c.close()


async def test_direct_get_by_subject_and_sequence_from_every_node(cluster: Cluster):
    conns = [await connect(n) for n in cluster.nodes]
    try:
        js = conns[1].jetstream(timeout=5)
        await retry(lambda: js.add_stream(name="DG", subjects=["dg.>"], num_replicas=3, allow_direct=True))
        for i in range(5):
            await retry(lambda i=i: js.publish(f"dg.{i % 2}", f"p{i}".encode()))
        for c in conns:
            m = await retry(lambda c=c: c.request("$JS.API.DIRECT.GET.DG", json.dumps({"seq": 3}).encode(), timeout=5))
            assert m.headers["Nats-Sequence"] == "3" and m.data == b"p2"
            m = await retry(lambda c=c: c.request("$JS.API.DIRECT.GET.DG.dg.1", b"", timeout=5))
            assert m.headers["Nats-Sequence"] == "4" and m.data == b"p3"
        # Without allow_direct (or without the stream) nobody answers: core no responders.
        await retry(lambda: js.add_stream(name="NODG", subjects=["nodg"], num_replicas=3))
        for c in conns:
            for stream in ("NODG", "MISSING"):
                with pytest.raises(nats.errors.NoRespondersError):
                    await c.request(f"$JS.API.DIRECT.GET.{stream}", json.dumps({"seq": 1}).encode(), timeout=5)
    finally:
        for c in conns:
            await c.close()


async def test_linearizable_kv_read_on_other_node_sees_every_acked_write(cluster: Cluster, server_kind: str):
    clusterd_only(server_kind)
    a, b = await connect(cluster.nodes[0]), await connect(cluster.nodes[1])
    try:
        ja, jb = a.jetstream(timeout=5), b.jetstream(timeout=5)
        # A KV bucket's stream (as nats-py creates it), linearizable from its creation on: a
        # later stream update would reach each replica only when it applies the meta entry.
        await retry(lambda: ja.add_stream(name="KV_LIN", subjects=["$KV.LIN.>"], num_replicas=3, allow_direct=True,
                                          allow_rollup_hdrs=True, deny_delete=True, max_msgs_per_subject=1,
                                          discard="new", metadata=LINEARIZABLE))
        kva, kvb = await ja.key_value("LIN"), await jb.key_value("LIN")
        assert kvb._direct
        for i in range(100):
            await retry(lambda i=i: kva.put("counter", str(i).encode()))
            # Acked on node 1, read at once on node 2: never the previous value.
            assert (await kvb.get("counter")).value == str(i).encode()
    finally:
        await a.close()
        await b.close()


async def test_linearizable_header_on_direct_and_msg_get(cluster: Cluster, server_kind: str):
    clusterd_only(server_kind)
    a, b = await connect(cluster.nodes[2]), await connect(cluster.nodes[0])
    try:
        ja = a.jetstream(timeout=5)
        await retry(lambda: ja.add_stream(name="LH", subjects=["lh"], num_replicas=3, allow_direct=True))
        hdr = {"Clusterd-Read": "linearizable"}
        for i in range(30):
            ack = await retry(lambda i=i: ja.publish("lh", f"x{i}".encode()))
            m = await b.request("$JS.API.DIRECT.GET.LH.lh", b"", timeout=5, headers=hdr)
            assert m.headers.get("Nats-Sequence") == str(ack.seq) and m.data == f"x{i}".encode()
            r = json.loads((await b.request("$JS.API.STREAM.MSG.GET.LH", json.dumps({"last_by_subj": "lh"}).encode(),
                                            timeout=5, headers=hdr)).data)
            assert r["message"]["seq"] == ack.seq, r
    finally:
        await a.close()
        await b.close()


async def test_deposed_leader_never_answers_a_linearizable_read_with_old_data(cluster: Cluster, server_kind: str):
    """Freeze the stream leader, let the others elect a new one and acknowledge a new value,
    then thaw the old leader and read through it at once: it still believes it leads (its clock
    stood still), but a linearizable read needs a quorum to confirm it, so the answer is the
    new value (after it learned the new term) or an error, never the old value."""
    clusterd_only(server_kind)
    conns = {f"n{i + 1}": await connect(n) for i, n in enumerate(cluster.nodes)}
    try:
        js = conns["n1"].jetstream(timeout=5)
        await retry(lambda: js.add_stream(name="DEP", subjects=["dep"], num_replicas=3, allow_direct=True,
                                          metadata=LINEARIZABLE))
        await retry(lambda: js.publish("dep", b"old"))
        old = await stream_leader(js, "DEP")
        other = next(n for n in conns if n != old)
        pause(cluster, cluster.node(old))
        js_other = conns[other].jetstream(timeout=2)
        ack = await retry(lambda: js_other.publish("dep", b"new"))
        assert ack.seq == 2
        resume(cluster.node(old))
        answers = []
        for _ in range(5):
            try:
                m = await conns[old].request("$JS.API.DIRECT.GET.DEP.dep", b"", timeout=3)
                answers.append(m.data if not m.headers or "Status" not in m.headers else m.headers["Status"])
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                answers.append("timeout")
        assert b"old" not in answers, answers
        assert b"new" in answers, answers  # and the old leader's node serves again once it caught up
    finally:
        for c in conns.values():
            await c.close()
