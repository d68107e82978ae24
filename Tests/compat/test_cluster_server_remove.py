"""SERVER.REMOVE as a cluster-wide operator action across accounts, and a removed server that
keeps running (clusterd only).

Four nodes with two JetStream accounts (A, B) and a system account (SYS). Each account runs its
own meta group in clusterd; `$JS.API.SERVER.REMOVE` asked once in the system account removes the
server from both accounts' meta groups and moves both accounts' stream replicas; asked in A it
finds no responder (as in nats-server, where only the system account answers it). The removed
server keeps running: it notices, stops taking part, archives its meta log and replicas, says so
in its log, /healthz and /jsz, and after a restart joins again as a new member.

Every node is a child process on free loopback ports, reaped by the fixture even on failure;
every wait is bounded.
"""
from __future__ import annotations

import json
import os
import signal

import nats
import pytest
from nats.errors import NoRespondersError

from clusterproc import Cluster, cluster_fixture, node_name, retry, started_cluster
from serverproc import ServerProcess
from test_cluster_membership import _true_or_raise, healthz, replicas_current, wait_for

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster, pytest.mark.security]

CONF = """
accounts {
  A: { users: [ {user: a, password: a} ], jetstream: enabled }
  B: { users: [ {user: b, password: b} ], jetstream: enabled }
  SYS: { users: [ {user: sys, password: sys} ] }
}
system_account: SYS
"""
ALL = {"n1", "n2", "n3", "n4"}


def accounts_conf(tmp_path) -> list[str]:
    conf = tmp_path / "accounts.conf"
    conf.write_text(CONF)
    return ["-c", str(conf)]


cluster = cluster_fixture("sysremove", size=4, extra_args=accounts_conf, alarm_s=240,
                          clusterd_only="reads clusterd's per-account meta groups in /jsz meta_clusters")


def meta_clusters(node: ServerProcess) -> dict:
    import urllib.request
    with urllib.request.urlopen(node.monitor_url + "/jsz", timeout=2) as r:
        return json.loads(r.read()).get("meta_clusters", {})


def account_members(c: Cluster, account: str) -> list[dict]:
    """The account's meta members as its meta leader sees them."""
    for n in c.nodes:
        if n.proc is None:
            continue
        try:
            mc = meta_clusters(n).get(account, {})
        except OSError:
            continue
        if mc.get("leader") == node_name(c, n):
            return mc.get("members", [])
    return []


def voters_online(c: Cluster, account: str, names: set[str]) -> bool:
    ms = account_members(c, account)
    got = {m["name"] for m in ms if m["voter"] and m["online"] and m.get("lag", 0) == 0}
    return got == names and len(ms) == len(names)


def peer_ids(c: Cluster, account: str, name: str) -> set[str]:
    return {m["peer"] for m in account_members(c, account) if m["name"] == name}


async def connect(node: ServerProcess, user: str):
    return await nats.connect(f"nats://{user}:{user}@127.0.0.1:{node.port}", allow_reconnect=False, connect_timeout=3)


async def test_server_remove_is_cluster_wide_and_the_running_removed_server_retires(cluster: Cluster):
    for acc in ("A", "B"):
        wait_for(f"four voters in {acc}'s meta group", lambda acc=acc: voters_online(cluster, acc, ALL))
    conns = [await connect(cluster.nodes[0], u) for u in ("a", "b", "sys")]
    a, b, sys_nc = conns
    try:
        jsa, jsb = a.jetstream(timeout=5), b.jetstream(timeout=5)
        holders = {}
        for acc, js in (("A", jsa), ("B", jsb)):
            await retry(lambda js=js: js.add_stream(name="ORD", subjects=["ord.>"], num_replicas=3))
            for i in range(10):
                await retry(lambda js=js, i=i: js.publish(f"ord.{i}", f"{acc}{i}".encode()))
            si = await retry(lambda js=js: js.stream_info("ORD"))
            holders[acc] = {si.cluster.leader} | {r.name for r in si.cluster.replicas}
        # A server holding a replica of both streams (not n1, where the clients are), preferably
        # leading no meta group. Two R3 sets of four servers share at least two.
        leaders = {m["name"] for acc in ("A", "B") for m in account_members(cluster, acc) if m["leader"]}
        both = sorted((holders["A"] & holders["B"]) - {"n1"})
        victim = next((n for n in both if n not in leaders), both[0])
        old_ids = {acc: peer_ids(cluster, acc, victim) for acc in ("A", "B")}
        assert all(len(v) == 1 for v in old_ids.values()), old_ids

        # Not an operator: nobody answers SERVER.REMOVE in account A.
        with pytest.raises(NoRespondersError):
            await a.request("$JS.API.SERVER.REMOVE", json.dumps({"peer": victim}).encode(), timeout=3)
        # The operator, in the system account: one request, every account.
        bad = json.loads((await retry(lambda: sys_nc.request("$JS.API.SERVER.REMOVE", b'{"peer":"nosuch"}', timeout=5))).data)
        assert bad["error"]["err_code"] == 10044 and bad["type"] == "io.nats.jetstream.api.v1.meta_server_remove_response"
        ok = json.loads((await retry(lambda: sys_nc.request("$JS.API.SERVER.REMOVE", json.dumps({"peer": victim}).encode(), timeout=5))).data)
        assert ok.get("success") is True, ok

        rest = ALL - {victim}
        for acc, js in (("A", jsa), ("B", jsb)):
            wait_for(f"{victim} out of {acc}'s meta group", lambda acc=acc: voters_online(cluster, acc, rest))
            await retry(lambda js=js: _true_or_raise(replicas_current(js, "ORD", rest)), attempts=240)
            assert (await js.stream_info("ORD")).state.messages == 10

        # The removed server is still running: it noticed, stopped and archived its store.
        v = cluster.node(victim)
        assert v.proc is not None and v.proc.poll() is None
        wait_for("the removed server told so", lambda: v.stderr_text().count("removed from the JetStream meta group of account") >= 2)
        wait_for("the removed server not ready",
                 lambda: healthz(v) == (503, {"status": "unavailable", "error": "JetStream server was removed from the meta group"}))
        assert healthz(v, "?js-server-only=true")[0] == 200
        mcs = wait_for("archives in /jsz", lambda: (lambda m: m if all("archive" in m.get(x, {}) for x in ("A", "B")) else None)(meta_clusters(v)))
        # Its replicas were moved off by the streams' leaders before it archived them.
        text = v.stderr_text()
        assert text.count("replica of stream 'ORD' moved off this server") == 2, text[-3000:]
        assert text.rindex("moved off this server") < text.rindex("archived in")
        store = os.path.join(v.tmpdir, "store", "jetstream", ".accounts")
        for acc in ("A", "B"):
            assert mcs[acc]["removed"] is True and mcs[acc]["peer"] in old_ids[acc]
            archive = mcs[acc]["archive"]
            assert archive.startswith(os.path.join(store, acc) + "/.removed-")
            assert {"identity.json", "_meta", "ORD"} <= set(os.listdir(archive)), os.listdir(archive)
            assert not {"identity.json", "_meta", "ORD"} & set(os.listdir(os.path.join(store, acc)))
        # It serves no JetStream as a member any more.
        va = await connect(v, "a")
        try:
            r = json.loads((await va.request("$JS.API.STREAM.INFO.ORD", b"", timeout=5)).data)
            assert r["error"]["err_code"] == 10008, r
        finally:
            await va.close()
        # It is never added back while that store runs.
        assert voters_online(cluster, "A", rest) and voters_online(cluster, "B", rest)

        # Restarted, it has no identity: it joins both accounts as a new member.
        v.stop()
        v.start()
        for acc in ("A", "B"):
            wait_for(f"{victim} back in {acc}'s meta group", lambda acc=acc: voters_online(cluster, acc, ALL))
            new = peer_ids(cluster, acc, victim)
            assert len(new) == 1 and not new & old_ids[acc], (new, old_ids[acc])
        wait_for(f"{victim} ready again", lambda: healthz(v)[0] == 200)

        # `peer_id` names one store of one account exactly: only that account removes it.
        new_a = peer_ids(cluster, "A", victim).pop()
        v.stop()
        api = lambda body: sys_nc.request("$JS.API.SERVER.REMOVE", json.dumps(body).encode(), timeout=5)
        unknown = json.loads((await retry(lambda: api({"peer_id": "00000000000000aa"}))).data)
        assert unknown["error"]["err_code"] == 10044, unknown
        ok = json.loads((await retry(lambda: api({"peer_id": new_a}))).data)
        assert ok.get("success") is True, ok
        wait_for(f"{victim} out of A's meta group", lambda: voters_online(cluster, "A", rest))
        assert {m["name"] for m in account_members(cluster, "B")} == ALL, "B keeps its member"
        # Removed while down: back on that store, it is told and retires in A only.
        told = v.stderr_text().count('removed from the JetStream meta group of account "A"')
        v.start()
        wait_for("the returning store retired in A",
                 lambda: v.stderr_text().count('removed from the JetStream meta group of account "A"') > told
                 and "archive" in meta_clusters(v).get("A", {}))
        assert healthz(v)[0] == 503
        assert voters_online(cluster, "A", rest)
        wait_for(f"{victim} still a voter in B", lambda: voters_online(cluster, "B", ALL))
    finally:
        for nc in conns:
            await nc.close()


async def test_auto_removal_takes_effect_in_every_account(server_binary: str, server_kind: str, tmp_path):
    """`--cluster_auto_remove_after`: every account's meta leader runs the same timer, so a
    server gone that long leaves every account's meta group and its replicas move in each;
    removed by time (not by an operator), it is added back when it returns with its store."""
    if server_kind != "clusterd":
        pytest.skip("clusterd's auto_remove_after")
    signal.alarm(240)
    extra = accounts_conf(tmp_path) + ["--cluster_auto_remove_after", "2s"]
    with started_cluster(server_binary, size=4, name="sysremove", extra_args=extra) as c:
        for acc in ("A", "B"):
            wait_for(f"four voters in {acc}'s meta group", lambda acc=acc: voters_online(c, acc, ALL))
        conns = [await connect(c.nodes[0], u) for u in ("a", "b")]
        try:
            jss = {"A": conns[0].jetstream(timeout=5), "B": conns[1].jetstream(timeout=5)}
            holders = {}
            for acc, js in jss.items():
                await retry(lambda js=js: js.add_stream(name="AUTO", subjects=["auto"], num_replicas=3))
                for i in range(10):
                    await retry(lambda js=js, i=i: js.publish("auto", str(i).encode()))
                si = await retry(lambda js=js: js.stream_info("AUTO"))
                holders[acc] = {si.cluster.leader} | {r.name for r in si.cluster.replicas}
            gone = sorted((holders["A"] & holders["B"]) - {"n1"})[0]
            c.node(gone).kill()
            rest = ALL - {gone}
            for acc, js in jss.items():
                wait_for(f"{gone} auto-removed from {acc}'s meta group", lambda acc=acc: voters_online(c, acc, rest))
                await retry(lambda js=js: _true_or_raise(replicas_current(js, "AUTO", rest)), attempts=240)
                assert (await js.stream_info("AUTO")).state.messages == 10
            c.node(gone).start()
            for acc in ("A", "B"):
                wait_for(f"{gone} back in {acc}'s meta group", lambda acc=acc: voters_online(c, acc, ALL))
        finally:
            for nc in conns:
                await nc.close()
