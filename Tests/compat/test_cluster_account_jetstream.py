"""Per-account JetStream on a three-node cluster, proven against nats-server 2.15.1 and
clusterd: two accounts each create an R3 stream of the same name and subjects and get two
different streams; a publish on one node gets its PubAck and is consumed on another node (the
deliveries cross routes in the consumer's account); the account's limits hold cluster-wide,
storage limits counting every replica as nats-server does:

* a stream create or update reserves `max_bytes` once per replica against the account's
  `max_file` / `max_mem` (10047 / 10028); account info's `reserved_storage` stays the plain
  sum of `max_bytes`;
* a publish is checked against the account's bytes on every node (each node reports its own
  to the others), plus the message once per replica (10002); account info and each node's
  `/jsz?accounts=true` show that cluster-wide usage.

Every node is a child process on free loopback ports, reaped by the fixture even on failure.
"""
from __future__ import annotations

import asyncio
import json
import urllib.request

import nats
import pytest
from nats.js.errors import APIError

import clusterproc
from clusterproc import Cluster
from serverproc import ServerProcess

pytestmark = [pytest.mark.security, pytest.mark.jetstream, pytest.mark.cluster]

CONF = """
accounts {
  A: { users: [ {user: a, password: a} ], jetstream: enabled }
  B: { users: [ {user: b, password: b} ], jetstream: { max_mem: 1MB, max_store: 8MB, max_streams: 2, max_consumers: 2 } }
  N: { users: [ {user: n, password: n} ] }
  R: { users: [ {user: r, password: r} ], jetstream: { max_mem: 1MB, max_file: 1MB } }
}
"""


@pytest.fixture
def cluster(server_binary: str, tmp_path):
    conf = tmp_path / "accounts.conf"
    conf.write_text(CONF)
    c = Cluster(server_binary, extra_args=["-c", str(conf)])
    try:
        c.start()
        yield c
    finally:
        c.close()


async def retry(fn):
    """`clusterproc.retry` for requests that may time out or answer 10008 while a meta or stream
    leader is being elected; any other API error is raised at once."""
    return await clusterproc.retry(fn, retryable=lambda e: not isinstance(e, APIError) or e.err_code == 10008)


async def connect(node: ServerProcess, user: str):
    return await nats.connect(f"nats://{user}:{user}@127.0.0.1:{node.port}", allow_reconnect=False, connect_timeout=3)


async def test_same_named_r3_streams_in_two_accounts_are_isolated_across_nodes(cluster: Cluster, server_kind):
    conns = []
    try:
        for user in ("a", "b"):
            for node in cluster.nodes:
                conns.append(await connect(node, user))
        a = [nc.jetstream(timeout=5) for nc in conns[:3]]
        b = [nc.jetstream(timeout=5) for nc in conns[3:]]
        await retry(lambda: a[0].add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3))
        await retry(lambda: b[1].add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3))

        # Published on one node, acknowledged by the stream's leader wherever it is.
        for i in range(5):
            ack = await retry(lambda i=i: a[1].publish(f"orders.{i}", f"a{i}".encode()))
            assert ack.stream == "ORDERS" and ack.seq == i + 1
        ack = await retry(lambda: b[2].publish("orders.1", b"b0"))
        assert ack.seq == 1

        info_a = await a[2].stream_info("ORDERS")
        info_b = await b[0].stream_info("ORDERS")
        assert info_a.state.messages == 5
        assert info_b.state.messages == 1
        assert info_a.cluster.leader and info_b.cluster.leader

        # Consumed on a node that does not lead A's stream: the deliveries cross a route.
        names = [f"n{i + 1}" for i in range(len(cluster.nodes))]  # the -n names clusterproc gives
        reader = next(i for i, n in enumerate(names) if n != info_a.cluster.leader)
        sub = await a[reader].pull_subscribe("orders.>", durable="READER", stream="ORDERS")
        got = []
        for _ in range(20):
            if len(got) == 5:
                break
            try:
                for m in await sub.fetch(5 - len(got), timeout=2):
                    got.append(m.data.decode())
                    await m.ack()
            except nats.errors.TimeoutError:
                pass
            except nats.js.errors.ServiceUnavailableError:
                # nats-server 2.15 answered this just-created consumer's fetch with 503 once in CI
                # (no consumer leader yet), as for B's below; clusterd must not.
                if server_kind != "nats-server":
                    raise
        assert got == [f"a{i}" for i in range(5)]

        # B's stream is untouched by A's consumer, and A's subjects published in B stay in B.
        bsub = await b[reader].pull_subscribe("orders.>", durable="READER", stream="ORDERS")
        # A nats-server 2.15 cluster answered this just-created consumer's first fetch with 503 /
        # nothing once in CI (no consumer leader yet): asked up to ten times there. clusterd
        # must answer the first fetch.
        attempts = 10 if server_kind == "nats-server" else 1
        for attempt in range(attempts):
            try:
                msgs = await bsub.fetch(1, timeout=2 if attempts > 1 else 5)
                break
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as e:
                if attempt == attempts - 1:
                    raise AssertionError(
                        f"first fetch of B's just-created consumer READER via {names[reader]} "
                        f"(B's stream leader {info_b.cluster.leader}): {e!r}") from e
                await asyncio.sleep(0.3)
        assert [m.data for m in msgs] == [b"b0"]
        assert (await b[0].stream_info("ORDERS")).state.messages == 1

        # Deleting A's stream leaves B's.
        await a[0].delete_stream("ORDERS")
        assert (await b[2].stream_info("ORDERS")).state.messages == 1
    finally:
        for nc in conns:
            await nc.close()


async def test_account_limits_hold_across_the_cluster(cluster: Cluster):
    conns = [await connect(node, "b") for node in cluster.nodes]
    n = await connect(cluster.nodes[0], "n")
    try:
        js = [nc.jetstream(timeout=5) for nc in conns]
        await retry(lambda: js[0].add_stream(name="ONE", subjects=["one"], num_replicas=3))
        await retry(lambda: js[1].add_stream(name="TWO", subjects=["two"], num_replicas=3))
        with pytest.raises(APIError) as e:
            await retry(lambda: js[2].add_stream(name="THREE", subjects=["three"], num_replicas=3))
        assert e.value.err_code == 10027  # maximum number of streams reached
        info = await js[2].account_info()
        assert info.streams == 2
        # An account without a jetstream block is still refused on every node.
        with pytest.raises(APIError) as e:
            await n.jetstream(timeout=5).account_info()
        assert e.value.err_code == 10039
    finally:
        for nc in conns + [n]:
            await nc.close()


async def test_account_stream_survives_its_leader_crash_and_pushes_across_routes(cluster: Cluster):
    """B's R3 stream: a push consumer on a node that does not lead the stream gets B's messages
    (deliveries cross a route in B); after the leader is killed the account's own Raft group
    elects another leader and keeps every acknowledged message."""
    conns = [await connect(node, "b") for node in cluster.nodes]
    try:
        js = [nc.jetstream(timeout=5) for nc in conns]
        await retry(lambda: js[0].add_stream(name="ORDERS", subjects=["orders.>"], num_replicas=3))
        for i in range(3):
            await retry(lambda i=i: js[1].publish("orders.x", f"b{i}".encode(), headers={"Nats-Msg-Id": f"b{i}"}))
        leader = (await js[2].stream_info("ORDERS")).cluster.leader
        names = [f"n{i + 1}" for i in range(len(cluster.nodes))]  # the -n names clusterproc gives
        others = [i for i, n in enumerate(names) if n != leader]

        got: list[bytes] = []
        sub = await js[others[0]].subscribe("orders.>", durable="PUSH", stream="ORDERS")
        for _ in range(3):
            m = await sub.next_msg(timeout=5)
            got.append(m.data)
            await m.ack()
        assert got == [b"b0", b"b1", b"b2"]

        await conns[names.index(leader)].close()
        cluster.node(leader).kill()
        survivor = others[1]
        ack = await retry(lambda: js[survivor].publish("orders.x", b"b3", headers={"Nats-Msg-Id": "b3"}))
        assert ack.seq == 4
        info = await retry(lambda: js[survivor].stream_info("ORDERS"))
        assert info.state.messages == 4
        assert info.cluster.leader != leader
    finally:
        for nc in conns:
            if not nc.is_closed:
                await nc.close()


KIB = 1024


async def api(nc, subject: str, body: dict) -> dict:
    """One JetStream API request, retried (bounded) while a meta leader is being elected."""
    for _ in range(60):
        try:
            msg = await nc.request(subject, json.dumps(body).encode(), timeout=5)
        except nats.errors.TimeoutError:
            continue
        reply = json.loads(msg.data)
        if reply.get("error", {}).get("err_code") != 10008:  # temporarily unavailable
            return reply
        await asyncio.sleep(0.5)
    raise AssertionError(f"{subject} still unavailable")


def err_code(reply: dict):
    return reply.get("error", {}).get("err_code")


def stream(name: str, replicas: int, max_bytes: int | None = None, storage: str = "file") -> dict:
    cfg = {"name": name, "subjects": [f"{name.lower()}.>"], "num_replicas": replicas, "storage": storage}
    if max_bytes is not None:
        cfg["max_bytes"] = max_bytes
    return cfg


async def test_stream_reservations_count_max_bytes_once_per_replica(cluster: Cluster):
    nc = await connect(cluster.nodes[0], "r")
    try:
        # 400 KiB × 3 replicas = 1200 KiB > 1 MiB; the same stream as R1 fits.
        assert err_code(await api(nc, "$JS.API.STREAM.CREATE.X", stream("X", 3, 400 * KIB))) == 10047
        assert err_code(await api(nc, "$JS.API.STREAM.CREATE.A", stream("A", 1, 400 * KIB))) is None
        # 400 + 150 × 3 = 850 KiB fits; one more R1 stream of 200 KiB would make 1050.
        assert err_code(await api(nc, "$JS.API.STREAM.CREATE.B", stream("B", 3, 150 * KIB))) is None
        assert err_code(await api(nc, "$JS.API.STREAM.CREATE.C", stream("C", 1, 200 * KIB))) == 10047
        # An update counts the same way: 400 + 250 × 3 = 1150 is refused, 400 + 200 × 3 = 1000 fits.
        assert err_code(await api(nc, "$JS.API.STREAM.UPDATE.B", stream("B", 3, 250 * KIB))) == 10047
        assert err_code(await api(nc, "$JS.API.STREAM.UPDATE.B", stream("B", 3, 200 * KIB))) is None
        # Memory streams against max_mem, with its own error.
        assert err_code(await api(nc, "$JS.API.STREAM.CREATE.M", stream("M", 3, 400 * KIB, "memory"))) == 10028
        assert err_code(await api(nc, "$JS.API.STREAM.CREATE.M", stream("M", 3, 300 * KIB, "memory"))) is None
        # Account info reports the plain sum of max_bytes, not multiplied.
        info = await api(nc, "$JS.API.INFO", {})
        assert info["reserved_storage"] == 600 * KIB
        assert info["reserved_memory"] == 300 * KIB
        assert info["streams"] == 3
    finally:
        await nc.close()


def account_storage(node: ServerProcess) -> int | None:
    """Account R's stored bytes as `node` sees them (`/jsz?accounts=true`)."""
    with urllib.request.urlopen(node.monitor_url + "/jsz?accounts=true", timeout=2) as r:
        details = json.loads(r.read()).get("account_details") or []
    return next((d.get("storage") for d in details if d.get("name") == "R"), None)


async def wait_every_node_sees(cluster: Cluster, storage: int) -> None:
    """Waits (bounded) until each node counts `storage` bytes for the account: every node's
    report reached every other node."""
    seen = None
    for _ in range(100):
        seen = [account_storage(n) for n in cluster.nodes]
        if all(s == storage for s in seen):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"nodes see {seen}, expected {storage} each")


async def test_publish_limit_counts_the_bytes_of_every_replica(cluster: Cluster):
    conns = [await connect(n, "r") for n in cluster.nodes]
    try:
        assert err_code(await api(conns[0], "$JS.API.STREAM.CREATE.P", stream("P", 3))) is None
        js = conns[1].jetstream(timeout=5)
        # The create is answered before the leader's subject interest has crossed the routes to
        # every node (nats-server too): a publish through node 2 right after it can meet "no
        # responders". Wait for a probe the stream refuses (wrong expected stream; stores nothing).
        await retry(lambda: conns[1].request("p.probe", b"", timeout=1, headers={"Nats-Expected-Stream": "probe"}))
        payload = b"x" * (100 * KIB)
        # Each message is stored three times (~300 KiB of the 1 MiB): three fit, a fourth would
        # take the account's bytes on the three nodes past the limit. Counted on the leader's
        # node alone (~400 KiB) it would still fit.
        for seq in (1, 2, 3):
            ack = await js.publish("p.x", payload)
            assert ack.seq == seq
            per_replica = (await js.stream_info("P")).state.bytes
            await wait_every_node_sees(cluster, 3 * per_replica)
        with pytest.raises(APIError) as e:
            await js.publish("p.x", payload)
        assert e.value.err_code == 10002  # resource limits exceeded for account
        info = await api(conns[2], "$JS.API.INFO", {})
        assert info["storage"] == 3 * per_replica
        assert (await js.stream_info("P")).state.messages == 3
    finally:
        for nc in conns:
            await nc.close()
