"""Snapshot install: a replica whose data directory was wiped (a replaced volume) while the
others compacted their Raft logs past everything it had is rebuilt from the stream leader, ends
with the identical stream (same sequences, deletions, consumer, dedup window), and can lead.
A replica killed in the middle of that copy recovers on restart.

clusterd runs with tiny compaction settings so the leader's log no longer holds what the wiped
replica needs; nats-server (which ignores the variables) rebuilds such a replica with its own
stream catch-up, so the same behaviour is expected of both.
"""
from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import time

import nats
import pytest

from clusterproc import READY_TIMEOUT_S, Cluster, first_fetch, retry
from serverproc import ServerProcess
from test_cluster_jetstream import connect

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]


@pytest.fixture(autouse=True)
def _longer_timeout(_hard_timeout):
    """These scenarios wait for compactions (every 10 s) and whole-stream copies: re-arm the
    suite's hard timeout (conftest's `_hard_timeout` still disarms it afterwards) at 150 s."""
    import signal
    signal.alarm(150)
    yield


@pytest.fixture
def cluster(server_binary: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLUSTERD_RAFT_COMPACT_ENTRIES", "20")
    # A member down for more than 40 entries no longer holds compaction back.
    monkeypatch.setenv("CLUSTERD_RAFT_COMPACT_MAX_LAG", "40")
    # Small copy chunks: a copy of the stream below takes many round trips, so a kill lands
    # in the middle of it.
    monkeypatch.setenv("CLUSTERD_CATCHUP_CHUNK_BYTES", "2048")
    c = Cluster(server_binary)
    try:
        c.start()
        yield c
    finally:
        c.close()


def wipe(node: ServerProcess) -> None:
    """A replaced volume: the node's whole store directory is gone."""
    shutil.rmtree(os.path.join(node.tmpdir, "store"), ignore_errors=True)


async def publish_all(js, stream: str, start: int, count: int, acked: dict[int, bytes]) -> None:
    for i in range(start, start + count):
        body = f"m{i}-".encode() + b"x" * 200
        ack = await retry(lambda i=i, body=body: js.publish(f"{stream.lower()}.{i % 5}", body,
                                                            headers={"Nats-Msg-Id": f"id-{i}"}))
        assert not ack.duplicate
        acked[ack.seq] = body


async def change_while_down(js, stream: str, acked: dict[int, bytes]) -> None:
    """While a replica is down: 150 more messages (30...179), message 100 deleted, and a purge
    of everything below sequence 5."""
    await publish_all(js, stream, 30, 150, acked)
    await js.delete_msg(stream, 100)
    del acked[100]
    await js.purge_stream(stream, seq=5)  # removes sequences below 5
    for s in [s for s in acked if s < 5]:
        del acked[s]


async def wait_current(js, stream: str, node: str) -> None:
    deadline = time.monotonic() + 2 * READY_TIMEOUT_S
    while True:
        si = await retry(lambda: js.stream_info(stream))
        reps = {r.name: r for r in (si.cluster.replicas or [])}
        if si.cluster.leader != node and node in reps and reps[node].current:
            return
        assert time.monotonic() < deadline, f"replica {node} did not catch up: {si.cluster}"
        await asyncio.sleep(0.3)


async def wait_old_identity_removed(cluster: Cluster, nc, stream: str, victim: str) -> None:
    """clusterd: a wiped store comes back as a new Raft member (storage identity); the stream's
    leader adds it as a learner (which copies the stream), promotes it, then removes the old
    identity. Until that removal, the group has four voters and stopping one more node would
    lose its quorum."""
    info = json.loads((await retry(lambda: nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5))).data)
    group = "g" + info["cluster"]["raft_group"].split("-")[1]
    needle = f"group {group}: remove {victim}/"
    deadline = time.monotonic() + 2 * READY_TIMEOUT_S
    while not any(needle in n.stderr_text() for n in cluster.nodes):
        assert time.monotonic() < deadline, f"the old identity of {victim} never left {stream}'s group"
        await asyncio.sleep(0.2)


async def make_leader(cluster: Cluster, stream: str, target: str, acked: dict[int, bytes]) -> None:
    """Stops the other follower, publishes once (so `target` is the most caught-up follower)
    and steps the leader down until `target` leads."""
    tnc = await connect(cluster.node(target))
    try:
        tjs = tnc.jetstream(timeout=5)
        si = await retry(lambda: tjs.stream_info(stream))
        if si.cluster.leader == target:
            return
        other = next(n for n in ("n1", "n2", "n3") if n not in (target, si.cluster.leader))
        cluster.node(other).kill()
        body = b"handover"
        ack = await retry(lambda: tjs.publish(f"{stream.lower()}.h", body))
        acked[ack.seq] = body
        deadline = time.monotonic() + 2 * READY_TIMEOUT_S
        while True:
            try:
                await tnc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"", timeout=3)
            except Exception:  # noqa: BLE001 - no leader right now: ask again
                pass
            await asyncio.sleep(1.0)
            si = await retry(lambda: tjs.stream_info(stream))
            if si.cluster.leader == target:
                break
            assert time.monotonic() < deadline, f"{target} never became leader: {si.cluster}"
        cluster.node(other).start()
    finally:
        await tnc.close()


def stream_dir(node: ServerProcess, stream: str) -> str:
    found = glob.glob(os.path.join(node.tmpdir, "store", "**", stream), recursive=True)
    dirs = [d for d in found if os.path.isdir(os.path.join(d, "raft"))]
    assert dirs, f"no directory of stream {stream} under {node.tmpdir}"
    return dirs[0]


def compacted_index(node: ServerProcess, stream: str) -> int:
    """clusterd: the index of the stream's Raft snapshot marker (`raft/raft.snap`: u32 magic,
    then the little-endian u64 index); 0 until the log was first compacted."""
    try:
        with open(os.path.join(stream_dir(node, stream), "raft", "raft.snap"), "rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return 0
    return int.from_bytes(head[4:12], "little") if len(head) == 12 else 0


async def wait_compacted(cluster: Cluster, stream: str, nodes: list[str], past: int) -> None:
    """clusterd: until the live replicas compacted their Raft logs past index `past` (the
    leader proposes compactions every 10 s), so a replica that lost its data cannot catch up
    from the log and must copy the stream."""
    deadline = time.monotonic() + 2 * READY_TIMEOUT_S
    while not all(compacted_index(cluster.node(n), stream) > past for n in nodes):
        assert time.monotonic() < deadline, "the stream's Raft log was never compacted"
        await asyncio.sleep(0.2)


async def assert_serves(js, stream: str, leader: str, acked: dict[int, bytes], first_seq: int, last_seq: int) -> None:
    """`leader` leads `stream` and serves exactly the acknowledged messages at their sequences."""
    si = await retry(lambda: js.stream_info(stream))
    assert si.cluster.leader == leader
    assert (si.state.first_seq, si.state.last_seq, si.state.messages) == (first_seq, last_seq, len(acked))
    got: dict[int, bytes] = {}
    for seq in range(1, last_seq + 1):
        try:
            got[seq] = (await js.get_msg(stream, seq)).data
        except nats.js.errors.NotFoundError:
            continue
    assert got == acked


async def test_wiped_replica_is_rebuilt_and_can_lead(cluster: Cluster, server_kind: str):
    nc = await connect(cluster.nodes[0])
    js = nc.jetstream(timeout=5)
    acked: dict[int, bytes] = {}
    try:
        await retry(lambda: js.add_stream(name="WIPE", subjects=["wipe.>"], num_replicas=3))
        await publish_all(js, "WIPE", 0, 30, acked)
        await js.delete_msg("WIPE", 7)
        del acked[7]
        sub = await js.pull_subscribe("wipe.>", "C1", stream="WIPE")
        for m in await first_fetch(cluster, sub, 10):
            await m.ack()
        si = await retry(lambda: js.stream_info("WIPE"))
        victim = next(n for n in ("n1", "n2", "n3") if n != si.cluster.leader)
        cluster.node(victim).kill()
        wipe(cluster.node(victim))
        if victim == "n1":
            await nc.close()
            nc = await connect(cluster.nodes[1])
            js = nc.jetstream(timeout=5)
        # Far past the compaction bound while the victim is gone.
        await change_while_down(js, "WIPE", acked)
        if server_kind == "clusterd":
            await wait_compacted(cluster, "WIPE", [n for n in ("n1", "n2", "n3") if n != victim], 40)
        cluster.node(victim).start()
        await wait_current(js, "WIPE", victim)
        if server_kind == "clusterd":
            logs = "\n".join(f"--- {n}\n" + cluster.node(n).stderr_text()[-2500:] for n in ("n1", "n2", "n3"))
            assert "installed a copy from the leader" in cluster.node(victim).stderr_text(), logs
            await wait_old_identity_removed(cluster, nc, "WIPE", victim)
        await nc.close()
        await make_leader(cluster, "WIPE", victim, acked)

        vnc = await connect(cluster.node(victim))
        try:
            vjs = vnc.jetstream(timeout=5)
            await assert_serves(vjs, "WIPE", victim, acked, 5, 181)
            # The dedup window came along: a retried publish is still a duplicate.
            dup = await retry(lambda: vjs.publish("wipe.0", b"again", headers={"Nats-Msg-Id": "id-150"}))
            assert dup.duplicate and dup.seq == 151
            ack = await retry(lambda: vjs.publish("wipe.1", b"after"))
            assert ack.seq == 182
            # The durable consumer exists on the rebuilt leader. clusterd copies its replicated
            # acks too (1-6 at least); nats-server (2.12) reports ack floor 0 here.
            ci = await retry(lambda: vjs.consumer_info("WIPE", "C1"))
            if server_kind == "clusterd":
                assert ci.ack_floor.stream_seq >= 6
        finally:
            await vnc.close()
    finally:
        await nc.close()


async def test_replica_killed_mid_install_recovers(cluster: Cluster, server_kind: str):
    if server_kind != "clusterd":
        pytest.skip("inspects clusterd's stream directory layout")
    nc = await connect(cluster.nodes[0])
    js = nc.jetstream(timeout=5)
    acked: dict[int, bytes] = {}
    try:
        await retry(lambda: js.add_stream(name="HALF", subjects=["half.>"], num_replicas=3))
        await publish_all(js, "HALF", 0, 10, acked)
        si = await retry(lambda: js.stream_info("HALF"))
        victim = next(n for n in ("n2", "n3") if n != si.cluster.leader)
        vnode = cluster.node(victim)
        vdir = stream_dir(vnode, "HALF")
        vnode.kill()
        wipe(vnode)
        await publish_all(js, "HALF", 10, 300, acked)
        await wait_compacted(cluster, "HALF", [n for n in ("n1", "n2", "n3") if n != victim], 40)
        vnode.start()
        # Kill it as soon as the copy starts (2 KiB chunks: the copy needs ~30 round trips).
        deadline = time.monotonic() + 2 * READY_TIMEOUT_S
        while "copying the stream from the leader" not in vnode.stderr_text():
            assert time.monotonic() < deadline, f"the wiped replica never started a copy:\n{vnode.stderr_text()[-3000:]}"
            await asyncio.sleep(0.01)
        vnode.kill()
        # Whatever the kill interrupted, leave a half-built copy behind as a crash would.
        os.makedirs(os.path.join(vdir, "install", "msgs"), exist_ok=True)
        with open(os.path.join(vdir, "install", "msgs", "junk"), "wb") as f:
            f.write(b"\x00" * 100)
        vnode.start()
        await wait_current(js, "HALF", victim)
        assert not os.path.exists(os.path.join(vdir, "install")), "the half-built copy must be gone"
        assert "installed a copy from the leader" in vnode.stderr_text()
        await wait_old_identity_removed(cluster, nc, "HALF", victim)
        await nc.close()
        await make_leader(cluster, "HALF", victim, acked)
        vnc = await connect(vnode)
        try:
            await assert_serves(vnc.jetstream(timeout=5), "HALF", victim, acked, 1, 311)
        finally:
            await vnc.close()
    finally:
        await nc.close()


async def test_replica_with_corrupt_store_recopies_it(cluster: Cluster, server_kind: str):
    if server_kind != "clusterd":
        pytest.skip("corrupts clusterd's store files")
    nc = await connect(cluster.nodes[0])
    js = nc.jetstream(timeout=5)
    acked: dict[int, bytes] = {}
    try:
        await retry(lambda: js.add_stream(name="CORR", subjects=["corr.>"], num_replicas=3))
        await publish_all(js, "CORR", 0, 200, acked)
        si = await retry(lambda: js.stream_info("CORR"))
        victim = next(n for n in ("n2", "n3") if n != si.cluster.leader)
        vnode = cluster.node(victim)
        msgs = os.path.join(stream_dir(vnode, "CORR"), "msgs")
        # Once the Raft logs dropped those entries, only a copy can bring lost messages back.
        await wait_compacted(cluster, "CORR", ["n1", "n2", "n3"], 100)
        vnode.stop()
        # Flip bytes inside the stored blocks, and drop the state snapshot and block indexes so
        # that opening the store reads every block (and finds the bad checksum).
        seg = sorted(glob.glob(os.path.join(msgs, "*.seg")))[0]
        with open(seg, "r+b") as f:
            f.seek(os.path.getsize(seg) // 3)
            chunk = f.read(64)
            f.seek(os.path.getsize(seg) // 3)
            f.write(bytes(b ^ 0xFF for b in chunk))
        for p in glob.glob(os.path.join(msgs, "*.idx")) + glob.glob(os.path.join(msgs, "state.snap")):
            os.remove(p)
        vnode.start()
        deadline = time.monotonic() + 2 * READY_TIMEOUT_S
        while "installed a copy from the leader" not in vnode.stderr_text():
            assert time.monotonic() < deadline, f"the corrupt replica was not re-copied:\n{vnode.stderr_text()[-3000:]}"
            await asyncio.sleep(0.2)
        assert "corrupt block(s) in the store" in vnode.stderr_text()
        await wait_current(js, "CORR", victim)
        await nc.close()
        await make_leader(cluster, "CORR", victim, acked)
        vnc = await connect(vnode)
        try:
            await assert_serves(vnc.jetstream(timeout=5), "CORR", victim, acked, 1, 201)
        finally:
            await vnc.close()
    finally:
        await nc.close()


def raft_first_index(node: ServerProcess, stream: str) -> int:
    """clusterd: where compaction has cut this node's Raft log of `stream` (/jsz stream detail
    `raft.first_index`; memory streams have no files to look at); 0 when not hosted here."""
    import urllib.request
    try:
        with urllib.request.urlopen(node.monitor_url + "/jsz?streams=true", timeout=2) as r:
            d = json.loads(r.read())
    except OSError:
        return 0
    for acc in d.get("account_details") or []:
        for s in acc.get("stream_detail") or []:
            if s.get("name") == stream:
                return (s.get("raft") or {}).get("first_index", 0)
    return 0


async def test_restarted_memory_replica_installs_a_copy_and_can_lead(cluster: Cluster, server_kind: str):
    """A memory stream's replica comes back empty from a restart. Once the others compacted
    their Raft logs past what it needs, it can only catch up from a copy of the leader's
    messages (its store rebuilt in memory), and then serves and leads like the others."""
    nc = await connect(cluster.nodes[0])
    js = nc.jetstream(timeout=5)
    acked: dict[int, bytes] = {}
    try:
        await retry(lambda: js.add_stream(name="MEMS", subjects=["mems.>"], num_replicas=3, storage="memory"))
        await publish_all(js, "MEMS", 0, 30, acked)
        await js.delete_msg("MEMS", 7)
        del acked[7]
        si = await retry(lambda: js.stream_info("MEMS"))
        victim = next(n for n in ("n2", "n3") if n != si.cluster.leader)
        cluster.node(victim).kill()
        await change_while_down(js, "MEMS", acked)
        if server_kind == "clusterd":
            others = [n for n in ("n1", "n2", "n3") if n != victim]
            deadline = time.monotonic() + 2 * READY_TIMEOUT_S
            while not all(raft_first_index(cluster.node(n), "MEMS") > 40 for n in others):
                assert time.monotonic() < deadline, "the memory stream's Raft log was never compacted"
                await asyncio.sleep(0.2)
        cluster.node(victim).start()
        await wait_current(js, "MEMS", victim)
        if server_kind == "clusterd":
            text = cluster.node(victim).stderr_text()
            assert "installed a copy from the leader" in text, text[-3000:]
        await nc.close()
        await make_leader(cluster, "MEMS", victim, acked)
        vnc = await connect(cluster.node(victim))
        try:
            vjs = vnc.jetstream(timeout=5)
            await assert_serves(vjs, "MEMS", victim, acked, 5, 181)
            # The dedup window came along with the copy.
            dup = await retry(lambda: vjs.publish("mems.0", b"again", headers={"Nats-Msg-Id": "id-150"}))
            assert dup.duplicate and dup.seq == 151
        finally:
            await vnc.close()
    finally:
        await nc.close()
