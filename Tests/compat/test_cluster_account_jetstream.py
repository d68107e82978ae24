"""Per-account JetStream on a three-node cluster, proven against nats-server 2.15.1 and
clusterd: two accounts each create an R3 stream of the same name and subjects and get two
different streams; a publish on one node gets its PubAck and is consumed on another node (the
deliveries cross routes in the consumer's account); the account's limits hold cluster-wide.

Every node is a child process on free loopback ports, reaped by the fixture even on failure.
"""
from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.errors import APIError

from clusterproc import Cluster
from serverproc import ServerProcess

pytestmark = [pytest.mark.security, pytest.mark.jetstream, pytest.mark.cluster]

CONF = """
accounts {
  A: { users: [ {user: a, password: a} ], jetstream: enabled }
  B: { users: [ {user: b, password: b} ], jetstream: { max_mem: 1MB, max_store: 8MB, max_streams: 2, max_consumers: 2 } }
  N: { users: [ {user: n, password: n} ] }
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


async def retry(fn, attempts: int = 60, delay: float = 0.5):
    """Calls `fn` until it succeeds: requests may time out while a meta or stream leader is
    being elected (bounded)."""
    last = None
    for _ in range(attempts):
        try:
            return await fn()
        except APIError as e:
            if e.err_code not in (10008,):  # only "temporarily unavailable" is retried
                raise
            last = e
        except Exception as e:  # noqa: BLE001 - a timeout means "not yet"
            last = e
        await asyncio.sleep(delay)
    raise AssertionError(f"still failing after {attempts} attempts: {last!r}")


async def connect(node: ServerProcess, user: str):
    return await nats.connect(f"nats://{user}:{user}@127.0.0.1:{node.port}", allow_reconnect=False, connect_timeout=3)


async def test_same_named_r3_streams_in_two_accounts_are_isolated_across_nodes(cluster: Cluster):
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
        assert got == [f"a{i}" for i in range(5)]

        # B's stream is untouched by A's consumer, and A's subjects published in B stay in B.
        bsub = await b[reader].pull_subscribe("orders.>", durable="READER", stream="ORDERS")
        msgs = await bsub.fetch(1, timeout=5)
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
