"""The system account on a three-node cluster, proven against nats-server 2.15.1 and clusterd.

Server requests (what the `nats` CLI's `server list`, `server report` and `server check`
send): `$SYS.REQ.SERVER.PING` and `$SYS.REQ.SERVER.PING.<KIND>` are answered by every server
once, `$SYS.REQ.SERVER.<id>.<KIND>` by that server, each answer `{"server": {...}, "data":
{...}}` (`statsz` for a plain PING; IDZ the bare `{name, host, id}`); the filters in the body
leave servers silent; a bad body gets a 400 error from each; other accounts and unknown kinds
find no responders.

Events: `$SYS.ACCOUNT.<account>.CONNECT` and `.DISCONNECT` for every client, seen from another
node, with the client's details, its message counts and why it closed.
"""
from __future__ import annotations

import asyncio
import json
import socket
import time

import nats
import pytest

from clusterproc import Cluster, cluster_fixture, node_name

pytestmark = [pytest.mark.security, pytest.mark.cluster]

CONF = """
accounts {
  SYS: { users: [ {user: sys, password: sys} ] }
  APP: { users: [ {user: app, password: app} ], jetstream: enabled }
}
system_account: SYS
"""


def _conf(tmp_path):
    path = tmp_path / "system.conf"
    path.write_text(CONF)
    return ["-c", str(path)]


cluster = cluster_fixture("compat", extra_args=_conf)

# Every answer arrives well within this on loopback; the count is what is checked.
GATHER_S = 1.0


async def gather(nc, subject: str, body: bytes = b"") -> list[dict]:
    """Every answer to one request (a ping is answered by several servers)."""
    inbox = nc.new_inbox()
    answers: list = []

    async def note(m):
        answers.append(m)

    sub = await nc.subscribe(inbox, cb=note)
    try:
        await nc.publish(subject, body, reply=inbox)
        await asyncio.sleep(GATHER_S)
    finally:
        await sub.unsubscribe()
    return [json.loads(m.data) for m in answers]


async def connect(cluster: Cluster, user: str, node: int = 0):
    return await nats.connect(f"nats://{user}:{user}@127.0.0.1:{cluster.nodes[node].port}",
                              allow_reconnect=False, connect_timeout=3)


async def test_ping_kinds_are_answered_by_every_server(cluster: Cluster):
    names = {node_name(cluster, n) for n in cluster.nodes}
    nc = await connect(cluster, "sys", node=1)
    try:
        stats = await gather(nc, "$SYS.REQ.SERVER.PING")
        assert {a["server"]["name"] for a in stats} == names and len(stats) == 3
        for a in stats:
            assert a["server"]["cluster"] == "compat" and a["server"]["jetstream"] is True
            assert a["server"]["id"] and a["server"]["ver"]
            # Routes to the two others (nats-server pools several connections per pair).
            assert a["statsz"]["connections"] >= 0
            assert {r["name"] for r in a["statsz"]["routes"]} == names - {a["server"]["name"]}

        for kind, key in [("VARZ", "server_name"), ("CONNZ", "num_connections"), ("ROUTEZ", "num_routes"),
                          ("SUBSZ", "num_subscriptions"), ("JSZ", "meta_cluster"), ("HEALTHZ", "status"),
                          ("STATSZ", None)]:
            answers = await gather(nc, f"$SYS.REQ.SERVER.PING.{kind}")
            assert {a["server"]["name"] for a in answers} == names and len(answers) == 3, kind
            for a in answers:
                if key is not None:
                    assert key in a["data"], (kind, a["data"].keys())
        varz = await gather(nc, "$SYS.REQ.SERVER.PING.VARZ")
        assert all(a["data"]["server_name"] == a["server"]["name"] for a in varz)
        routez = await gather(nc, "$SYS.REQ.SERVER.PING.ROUTEZ")
        assert all({r["remote_name"] for r in a["data"]["routes"]} == names - {a["server"]["name"]} for a in routez)
        healthz = await gather(nc, "$SYS.REQ.SERVER.PING.HEALTHZ")
        assert all(a["data"] == {"status": "ok", "status_code": 200} for a in healthz)
        # This client is connected to node 2 and shows up there (and only there).
        connz = await gather(nc, "$SYS.REQ.SERVER.PING.CONNZ")
        mine = [a["server"]["name"] for a in connz if a["data"]["num_connections"] >= 1]
        assert node_name(cluster, cluster.nodes[1]) in mine
    finally:
        await nc.close()


async def test_idz_then_one_server_by_its_id(cluster: Cluster):
    nc = await connect(cluster, "sys")
    try:
        ids = await gather(nc, "$SYS.REQ.SERVER.PING.IDZ")
        assert len(ids) == 3
        assert all(set(a) >= {"name", "host", "id"} and "server" not in a for a in ids)
        target = ids[2]
        answers = await gather(nc, f"$SYS.REQ.SERVER.{target['id']}.VARZ")
        assert [a["server"]["name"] for a in answers] == [target["name"]]
        assert answers[0]["data"]["server_id"] == target["id"]
    finally:
        await nc.close()


async def test_filters_leave_servers_silent(cluster: Cluster):
    nc = await connect(cluster, "sys")
    try:
        name = node_name(cluster, cluster.nodes[2])
        one = await gather(nc, "$SYS.REQ.SERVER.PING.VARZ", json.dumps({"server_name": name}).encode())
        assert [a["server"]["name"] for a in one] == [name]
        # A filter need only be part of the server's value: "n" is in n1, n2 and n3.
        assert len(await gather(nc, "$SYS.REQ.SERVER.PING.VARZ", b'{"server_name": "n"}')) == 3
        assert await gather(nc, "$SYS.REQ.SERVER.PING", b'{"cluster": "no-such-cluster"}') == []
        assert len(await gather(nc, "$SYS.REQ.SERVER.PING.STATSZ", b'{"cluster": "compat"}')) == 3
    finally:
        await nc.close()


async def test_bad_body_gets_an_error_from_every_server(cluster: Cluster):
    nc = await connect(cluster, "sys")
    try:
        answers = await gather(nc, "$SYS.REQ.SERVER.PING.CONNZ", b"{bad")
        assert len(answers) == 3
        for a in answers:
            assert a["error"]["code"] == 400 and a["error"]["description"]
            assert "data" not in a and a["server"]["name"]
    finally:
        await nc.close()


async def test_other_accounts_and_unknown_kinds_find_no_responders(cluster: Cluster):
    app = await connect(cluster, "app")
    sys = await connect(cluster, "sys")
    try:
        with pytest.raises(nats.errors.NoRespondersError):
            await app.request("$SYS.REQ.SERVER.PING.VARZ", b"", timeout=2)
        with pytest.raises(nats.errors.NoRespondersError):
            await sys.request("$SYS.REQ.SERVER.PING.NO_SUCH_KIND", b"", timeout=2)
    finally:
        await app.close()
        await sys.close()


async def events_of(nc, account: str) -> list[tuple[str, dict]]:
    """Collects the connect and disconnect events of `account` from now on (into the list)."""
    seen: list[tuple[str, dict]] = []

    async def note(m):
        seen.append((m.subject.rsplit(".", 1)[1], json.loads(m.data)))

    for kind in ("CONNECT", "DISCONNECT"):
        await nc.subscribe(f"$SYS.ACCOUNT.{account}.{kind}", cb=note)
    await nc.flush()
    return seen


async def test_connect_and_disconnect_events_reach_the_system_account_on_another_node(cluster: Cluster):
    sysc = await connect(cluster, "sys", node=0)
    try:
        seen = await events_of(sysc, "APP")
        # The subscription's interest reaches node 3 over a route: clients connect there until
        # one's events arrive (bounded), and that one's are checked.
        for attempt in range(20):
            name = f"evprobe{attempt}"
            app = await nats.connect(f"nats://app:app@127.0.0.1:{cluster.nodes[2].port}", name=name,
                                     allow_reconnect=False, connect_timeout=3)
            await app.publish("x.y", b"hello")
            await app.flush()
            await app.close()
            for _ in range(10):
                if any(k == "DISCONNECT" and e["client"].get("name") == name for k, e in seen):
                    break
                await asyncio.sleep(0.1)
            else:
                continue
            break
        mine = {k: e for k, e in seen if e["client"].get("name") == name}
        assert set(mine) == {"CONNECT", "DISCONNECT"}, seen
        node3 = node_name(cluster, cluster.nodes[2])
        connected, gone = mine["CONNECT"], mine["DISCONNECT"]
        assert connected["type"] == "io.nats.server.advisory.v1.client_connect"
        assert gone["type"] == "io.nats.server.advisory.v1.client_disconnect"
        for e in (connected, gone):
            assert e["server"]["name"] == node3 and e["id"] and e["timestamp"]
            c = e["client"]
            assert (c["acc"], c["user"], c["lang"], c["host"]) == ("APP", "app", "python3", "127.0.0.1")
            assert isinstance(c["id"], int) and c["start"] and c["ver"]
        assert connected["client"]["id"] == gone["client"]["id"]
        assert gone["reason"] == "Client Closed" and gone["client"]["stop"]
        assert gone["sent"] == {"msgs": 1, "bytes": 5}
        assert "stop" not in connected["client"] and "reason" not in connected
    finally:
        await sysc.close()


def _raw_client(port: int, after_connect: bytes) -> None:
    """A client that logs in, then sends `after_connect` (which the server closes it for)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.recv(4096)
        s.sendall(b'CONNECT {"user":"app","pass":"app","verbose":false}\r\nPING\r\n')
        s.recv(4096)
        s.sendall(after_connect)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and s.recv(4096):
            pass  # until the server closes it


async def test_disconnect_reasons_say_why_the_server_closed_a_client(cluster: Cluster):
    sysc = await connect(cluster, "sys", node=0)
    try:
        seen = await events_of(sysc, "APP")
        port = cluster.nodes[0].port
        for payload, reason in [(b"PUB x 2000000\r\n", "Maximum Message Payload Exceeded"),
                                (b"FOO BAR\r\n", "Protocol Violation")]:
            before = len(seen)
            await asyncio.get_running_loop().run_in_executor(None, _raw_client, port, payload)
            for _ in range(30):
                gone = [e for k, e in seen[before:] if k == "DISCONNECT"]
                if gone:
                    break
                await asyncio.sleep(0.1)
            assert [e["reason"] for e in gone] == [reason], seen[before:]
    finally:
        await sysc.close()
