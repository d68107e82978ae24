"""Cluster membership (clusterd): servers that join later become meta voters and host replicas;
num_replicas changes under a live publisher lose nothing acknowledged; a server that comes back
with an empty store is a new member; SERVER.REMOVE and STREAM.PEER.REMOVE move replicas.

clusterd only: the checks read clusterd's `/jsz` `meta_cluster.members` (each member's Raft id,
role and reachability). Every node is a child process on free loopback ports, reaped by the
fixture even when a test fails; every wait is bounded.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request

import nats
import pytest

from clusterproc import Cluster, cluster_fixture, node_name, print_decisions, retry  # noqa: F401 (re-exported)
from serverproc import ServerProcess

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]

WAIT_S = 60.0


# Up to five servers and several replica moves, each bounded by WAIT_S: more than the suite's
# 60 s per-test alarm on a loaded machine.
cluster = cluster_fixture("members", clusterd_only="reads clusterd's /jsz meta_cluster.members", alarm_s=240)


def seed_route(c: Cluster) -> str:
    args = c.nodes[0].extra_args
    return args[args.index("--cluster") + 1]


def add_node(c: Cluster, name: str) -> ServerProcess:
    """Starts a server that knows only n1 as its seed (the rest is learned by gossip)."""
    from serverproc import free_port
    n = ServerProcess(c.nodes[0].binary, [
        "-n", name, "-js", "-sd", "@TMP@", "--cluster_name", "members",
        "--cluster", f"nats://127.0.0.1:{free_port()}", "--routes", seed_route(c)])
    c.nodes.append(n)  # reaped by the cluster's close
    n.start()
    return n


def jsz(node: ServerProcess) -> dict:
    with urllib.request.urlopen(node.monitor_url + "/jsz", timeout=2) as r:
        return json.loads(r.read())


def meta_members(c: Cluster) -> list[dict]:
    """The member list as the meta leader sees it (lags are known there only)."""
    for n in c.nodes:
        if n.proc is None:
            continue
        try:
            mc = jsz(n).get("meta_cluster", {})
        except OSError:
            continue
        if mc.get("leader") == node_name(c, n):
            return mc.get("members", [])
    return []


def wait_for(what: str, fn, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - not yet
            last = e
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def voters_online(c: Cluster, names: set[str]) -> bool:
    ms = meta_members(c)
    got = {m["name"] for m in ms if m["voter"] and m["online"] and m.get("lag", 0) == 0}
    return got == names and len(ms) == len(names)


async def connect(node: ServerProcess):
    return await nats.connect(node.url, allow_reconnect=False, connect_timeout=3)


async def replicas_current(js, stream: str, names: set[str]) -> bool:
    si = await js.stream_info(stream)
    cl = si.cluster
    if cl is None or cl.leader is None:
        return False
    have = {cl.leader} | {r.name for r in cl.replicas or []}
    return have == names and all(r.current for r in cl.replicas or [])


class Publisher:
    """Publishes numbered messages (with Nats-Msg-Id, retried until acked) until stopped."""

    def __init__(self, js, subject: str):
        self.js, self.subject = js, subject
        self.acked: set[int] = set()
        self.stop = False
        self.worst_gap = 0.0  # longest wait between two acks (reported, not asserted)

    async def run(self):
        i = 0
        last = time.monotonic()
        while not self.stop:
            i += 1
            while not self.stop:
                try:
                    await self.js.publish(self.subject, str(i).encode(), headers={"Nats-Msg-Id": str(i)}, timeout=2)
                    self.acked.add(i)
                    now = time.monotonic()
                    self.worst_gap = max(self.worst_gap, now - last)
                    last = now
                    break
                except Exception:  # noqa: BLE001 - retried with the same id: stored once
                    await asyncio.sleep(0.05)


async def all_payloads(js, stream: str, count: int) -> set[int]:
    out = set()
    for seq in range(1, count + 1):
        m = await retry(lambda seq=seq: js.get_msg(stream, seq))
        out.add(int(m.data))
    return out


async def test_late_servers_become_voters_and_replicas_follow_num_replicas(cluster: Cluster):
    add_node(cluster, "n4")
    add_node(cluster, "n5")
    wait_for("five online meta voters", lambda: voters_online(cluster, {"n1", "n2", "n3", "n4", "n5"}))
    # Ready (healthz 200) once a voter with everything applied: the late servers too.
    wait_for("every node ready", lambda: all(healthz(n)[0] == 200 for n in cluster.nodes))

    nc5 = await connect(cluster.nodes[4])
    nc1 = await connect(cluster.nodes[0])
    try:
        js5, js1 = nc5.jetstream(timeout=5), nc1.jetstream(timeout=5)
        # An R5 stream needs all five servers: the late ones host replicas.
        await retry(lambda: js5.add_stream(name="FIVE", subjects=["five.>"], num_replicas=5))
        for i in range(10):
            await retry(lambda i=i: js5.publish(f"five.{i}", b"x"))
        await retry(lambda: _true_or_raise(replicas_current(js1, "FIVE", {"n1", "n2", "n3", "n4", "n5"})))

        # 3 -> 5 -> 3 (and 1 -> 3 -> 1) with a live publisher: nothing acknowledged is lost.
        cfg = await retry(lambda: js1.add_stream(name="LIVE", subjects=["live"], num_replicas=3))
        pub = Publisher(js5, "live")
        task = asyncio.create_task(pub.run())
        try:
            for replicas, expect in ((5, 5), (3, 3)):
                cfg.config.num_replicas = replicas
                await retry(lambda: js1.update_stream(cfg.config))
                await retry(lambda expect=expect: _true_or_raise(_replica_count(js1, "LIVE", expect)), attempts=240)
                n = len(pub.acked)
                await retry(lambda n=n: _true_or_raise(_at_least(pub.acked, n + 20)))
        finally:
            pub.stop = True
            await task
        si = await retry(lambda: js1.stream_info("LIVE"))
        print(f"LIVE 3->5->3: {len(pub.acked)} acked, worst gap between acks {pub.worst_gap:.3f} s")
        assert si.state.messages == len(pub.acked) == max(pub.acked), "every acked message stored once"
        assert await all_payloads(js1, "LIVE", si.state.messages) == pub.acked

        one = await retry(lambda: js1.add_stream(name="ONE", subjects=["one"], num_replicas=1))
        for i in range(5):
            await retry(lambda i=i: js1.publish("one", str(i).encode()))
        for replicas in (3, 1):
            one.config.num_replicas = replicas
            await retry(lambda: js1.update_stream(one.config))
            await retry(lambda r=replicas: _true_or_raise(_replica_count(js1, "ONE", r)), attempts=240)
            assert (await retry(lambda: js1.stream_info("ONE"))).state.messages == 5
    finally:
        await nc5.close()
        await nc1.close()


async def _at_least(acked: set[int], n: int) -> bool:
    return len(acked) >= n


async def _true_or_raise(coro):
    if not await coro:
        raise AssertionError("not yet")
    return True


async def _replica_count(js, stream: str, n: int) -> bool:
    si = await js.stream_info(stream)
    cl = si.cluster
    if cl is None or cl.leader is None:
        return False
    reps = cl.replicas or []
    return si.config.num_replicas == n and len(reps) == n - 1 and all(r.current for r in reps)


async def test_wiped_store_rejoins_as_a_new_member(cluster: Cluster):
    n3 = cluster.nodes[2]
    old_id = jsz(n3)["meta_cluster"]["peer"]
    nc = await connect(cluster.nodes[0])
    try:
        js = nc.jetstream(timeout=5)
        await retry(lambda: js.add_stream(name="KEEP", subjects=["keep"], num_replicas=3))
        for i in range(30):
            await retry(lambda i=i: js.publish("keep", str(i).encode()))
        n3.stop()
        store = n3.extra_args[n3.extra_args.index("-sd") + 1]
        shutil.rmtree(store)
        n3.start()
        new_id = wait_for("n3's new identity", lambda: jsz(n3).get("meta_cluster", {}).get("peer"))
        assert new_id != old_id, "an empty store gets a new Raft identity"

        def replaced():
            ms = meta_members(cluster)
            ids = {(m["name"], m["peer"]) for m in ms if m["voter"] and m["online"]}
            return ("n3", new_id) in ids and all(m["peer"] != old_id for m in ms) and len(ms) == 3
        wait_for("the old identity replaced by the new one", replaced)
        # The stream's replica moved to the new store and caught up from the leader's log.
        await retry(lambda: _true_or_raise(replicas_current(js, "KEEP", {"n1", "n2", "n3"})), attempts=240)

        def n3_has_all():
            d = json.loads(urllib.request.urlopen(n3.monitor_url + "/jsz?streams=true", timeout=2).read())
            streams = d["account_details"][0]["stream_detail"]
            return any(s["name"] == "KEEP" and s["state"]["messages"] == 30 for s in streams)
        wait_for("n3's new replica holding all 30 messages", n3_has_all)
    finally:
        await nc.close()


def test_wiped_stores_rejoin_while_another_seed_stays_down(server_binary: str, server_kind: str):
    """Five seeds; n2 stays down while n1 and then n5 come back with empty stores. Each wiped
    server must join the running meta group (not wait for every seed, as a first boot once did)
    and replace its old identity, or the second wipe leaves two of five voters dead plus one
    gone for good: no meta quorum (a 5-node chaos soak ended that way)."""
    if server_kind != "clusterd":
        pytest.skip("reads clusterd's /jsz meta_cluster.members")
    import signal
    signal.alarm(240)
    c = Cluster(server_binary, size=5, name="wipe5")
    try:
        c.start()
        c.nodes[1].stop()
        for n in (c.nodes[0], c.nodes[4]):
            old_id = jsz(n)["meta_cluster"]["peer"]
            n.stop()
            shutil.rmtree(n.extra_args[n.extra_args.index("-sd") + 1])
            n.start()
            name = node_name(c, n)

            def replaced():
                ms = meta_members(c)
                return any(m["name"] == name and m["voter"] and m["online"] and m["peer"] != old_id for m in ms) \
                    and all(m["peer"] != old_id for m in ms)
            wait_for(f"{name}'s new store replacing its old identity with n2 down", replaced)
        c.wait_meta_leader([x for x in c.nodes if x is not c.nodes[1]])
    finally:
        print_decisions(c)
        c.close()


async def test_peer_remove_and_server_remove_move_replicas(cluster: Cluster):
    add_node(cluster, "n4")
    wait_for("four online meta voters", lambda: voters_online(cluster, {"n1", "n2", "n3", "n4"}))
    nc = await connect(cluster.nodes[0])
    try:
        js = nc.jetstream(timeout=5)
        si = await retry(lambda: js.add_stream(name="MOVE", subjects=["move"], num_replicas=3))
        for i in range(20):
            await retry(lambda i=i: js.publish("move", str(i).encode()))
        si = await retry(lambda: js.stream_info("MOVE"))
        before = {si.cluster.leader} | {r.name for r in si.cluster.replicas}
        spare = ({"n1", "n2", "n3", "n4"} - before).pop()
        victim = sorted(before - {si.cluster.leader})[0]

        async def api(subject: str, body: dict) -> dict:
            msg = await nc.request(subject, json.dumps(body).encode(), timeout=5)
            return json.loads(msg.data)

        bad = await api("$JS.API.STREAM.PEER.REMOVE.MOVE", {"peer": "nosuch"})
        assert bad["error"]["err_code"] == 10040 and bad["type"] == "io.nats.jetstream.api.v1.stream_remove_peer_response"
        ok = await retry(lambda: api("$JS.API.STREAM.PEER.REMOVE.MOVE", {"peer": victim}))
        assert ok.get("success") is True, ok
        after = (before - {victim}) | {spare}
        await retry(lambda: _true_or_raise(replicas_current(js, "MOVE", after)), attempts=240)

        # SERVER.REMOVE of a stopped server: it leaves the meta group; its replicas move.
        si = await retry(lambda: js.stream_info("MOVE"))
        gone = sorted(after - {si.cluster.leader})[0]
        cluster.node(gone).stop()
        missing = await api("$JS.API.SERVER.REMOVE", {"peer": "nosuch"})
        assert missing["error"]["err_code"] == 10044
        assert missing["type"] == "io.nats.jetstream.api.v1.meta_server_remove_response"
        ok = await retry(lambda: api("$JS.API.SERVER.REMOVE", {"peer": gone}))
        assert ok.get("success") is True, ok
        remaining = {"n1", "n2", "n3", "n4"} - {gone}
        wait_for("the removed server out of the meta group", lambda: voters_online(cluster, remaining))
        await retry(lambda: _true_or_raise(replicas_current(js, "MOVE", remaining)), attempts=240)
        assert (await js.stream_info("MOVE")).state.messages == 20
    finally:
        await nc.close()


def healthz(node: ServerProcess, query: str = "") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(node.monitor_url + "/healthz" + query, timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_healthz_not_ready_until_joined(server_binary: str, server_kind: str):
    if server_kind != "clusterd":
        pytest.skip("clusterd's readiness rule")
    from serverproc import free_port
    # Its only seed never answers: the meta group cannot start, so the node is not ready,
    # while the liveness-style queries still say the server itself is fine.
    n = ServerProcess(server_binary, ["-n", "lonely", "-js", "-sd", "@TMP@", "--cluster_name", "members",
                                      "--cluster", f"nats://127.0.0.1:{free_port()}",
                                      "--routes", f"nats://127.0.0.1:{free_port()}"])
    try:
        n.start()
        assert healthz(n) == (503, {"status": "unavailable", "error": "JetStream has not established contact with a meta leader"})
        assert healthz(n, "?js-meta-only=true") == healthz(n)
        assert healthz(n, "?js-server-only=true") == (200, {"status": "ok"})
        assert healthz(n, "?js-enabled-only=true") == (200, {"status": "ok"})
    finally:
        n.close()


async def test_auto_removal_moves_replicas_and_the_server_can_return(server_binary: str, server_kind: str):
    if server_kind != "clusterd":
        pytest.skip("clusterd's auto_remove_after")
    import signal
    signal.alarm(240)
    c = Cluster(server_binary, size=4, name="members")
    for n in c.nodes:
        n.extra_args += ["--cluster_auto_remove_after", "2s"]
    try:
        c.start()
        wait_for("four online meta voters", lambda: voters_online(c, {"n1", "n2", "n3", "n4"}))
        nc = await connect(c.nodes[0])
        try:
            js = nc.jetstream(timeout=5)
            await retry(lambda: js.add_stream(name="AUTO", subjects=["auto"], num_replicas=3))
            for i in range(15):
                await retry(lambda i=i: js.publish("auto", str(i).encode()))
            si = await retry(lambda: js.stream_info("AUTO"))
            holders = {si.cluster.leader} | {r.name for r in si.cluster.replicas}
            gone = sorted(holders - {si.cluster.leader, "n1"})[0]
            c.node(gone).kill()
            rest = {"n1", "n2", "n3", "n4"} - {gone}
            wait_for("the unreachable server removed", lambda: voters_online(c, rest))
            await retry(lambda: _true_or_raise(replicas_current(js, "AUTO", rest)), attempts=240)
            assert (await js.stream_info("AUTO")).state.messages == 15
            # Back with its store: it was removed by time, not by an operator, so it rejoins.
            c.node(gone).start()
            wait_for("the server back as a voter", lambda: voters_online(c, {"n1", "n2", "n3", "n4"}))
        finally:
            await nc.close()
    finally:
        print_decisions(c)
        c.close()


async def test_server_remove_of_the_running_meta_leader(cluster: Cluster):
    add_node(cluster, "n4")
    wait_for("four online meta voters", lambda: voters_online(cluster, {"n1", "n2", "n3", "n4"}))
    leader = cluster.wait_meta_leader()
    nc = await connect(cluster.nodes[3] if leader != "n4" else cluster.nodes[0])
    try:
        msg = await retry(lambda: nc.request("$JS.API.SERVER.REMOVE", json.dumps({"peer": leader}).encode(), timeout=5))
        assert json.loads(msg.data).get("success") is True, msg.data
        rest = {"n1", "n2", "n3", "n4"} - {leader}
        # The leader hands over first, then the new leader removes it; it is not added back
        # while that store runs, and it stops being ready.
        wait_for("three voters without the old leader", lambda: voters_online(cluster, rest))
        assert cluster.wait_meta_leader([cluster.node(n) for n in sorted(rest)]) in rest
        wait_for("the removed server not ready", lambda: healthz(cluster.node(leader))[0] == 503)
        wait_for("the removed server told so", lambda: "removed from the JetStream meta group" in cluster.node(leader).stderr_text())
        js = nc.jetstream(timeout=5)
        info = await retry(lambda: js.add_stream(name="AFTER", subjects=["after"], num_replicas=3))
        assert {info.cluster.leader} | {r.name for r in info.cluster.replicas} == rest
    finally:
        await nc.close()


def stream_messages(node: ServerProcess, stream: str) -> int | None:
    d = json.loads(urllib.request.urlopen(node.monitor_url + "/jsz?streams=true", timeout=2).read())
    for s in d.get("account_details", [{}])[0].get("stream_detail", []):
        if s["name"] == stream:
            return s["state"]["messages"]
    return None


async def test_new_replica_of_a_compacted_log_never_passes_for_current(server_binary: str, server_kind: str,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """R1 -> R3 after the stream's log was compacted: the new replicas cannot catch up from the
    log, so they copy the stream (snapshot install) and only then count as current; no replica
    is ever reported current without every message."""
    if server_kind != "clusterd":
        pytest.skip("clusterd's compaction knob and logs")
    import signal
    signal.alarm(240)
    monkeypatch.setenv("CLUSTERD_RAFT_COMPACT_ENTRIES", "20")
    c = Cluster(server_binary, name="members")
    try:
        c.start()
        nc = await connect(c.nodes[0])
        try:
            js = nc.jetstream(timeout=5)
            info = await retry(lambda: js.add_stream(name="COMP", subjects=["comp"], num_replicas=1))
            holder = c.node(info.cluster.leader)
            for i in range(60):
                await retry(lambda i=i: js.publish("comp", str(i).encode()))
            store = holder.extra_args[holder.extra_args.index("-sd") + 1]
            snap = os.path.join(store, "jetstream", "COMP", "raft", "raft.snap")
            first = open(snap, "rb").read()
            # The leader compacts every 10 s once the log holds more than 20 entries.
            wait_for("the stream's log compacted", lambda: open(snap, "rb").read() != first, timeout=40)
            info.config.num_replicas = 3
            await retry(lambda: js.update_stream(info.config))
            others = [n for n in c.nodes if n is not holder]

            async def check_current() -> bool:
                si = await js.stream_info("COMP")
                for r in si.cluster.replicas or []:
                    if r.current:
                        assert stream_messages(c.node(r.name), "COMP") == 60, f"{r.name} reported current without the data"
                return len(si.cluster.replicas or []) == 2 and all(r.current for r in si.cluster.replicas)
            await retry(lambda: _true_or_raise(check_current()), attempts=240)
            assert all(stream_messages(n, "COMP") == 60 for n in others), "every new replica holds every message"
            assert (await js.stream_info("COMP")).state.messages == 60
            # The stream keeps taking writes meanwhile.
            ack = await retry(lambda: js.publish("comp", b"more"))
            assert ack.seq == 61
        finally:
            await nc.close()
    finally:
        print_decisions(c)
        c.close()
