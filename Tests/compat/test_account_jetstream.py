"""Per-account JetStream with nats-py, proven against nats-server 2.15.1 and clusterd: each
account with a `jetstream` block has its own streams (same names, same subjects, isolated),
its own limits with nats-server's error codes, its own account info; accounts without one
(the global account included, once accounts are configured) get "JetStream not enabled for
account" (503/10039)."""
from __future__ import annotations

import json

import nats
import nats.errors
import pytest
from nats.js.errors import APIError

from serverproc import ServerProcess

pytestmark = [pytest.mark.security, pytest.mark.jetstream,
              pytest.mark.single_node(reason="starts its own server; the cluster version is test_cluster_account_jetstream.py")]

CONF = """
jetstream { store_dir: "%(store)s" }
accounts {
  A: { users: [ {user: a, password: a} ], jetstream: enabled }
  B: { users: [ {user: b, password: b} ], jetstream: { max_mem: 1MB, max_store: 2MB, max_streams: 2, max_consumers: 1 } }
  N: { users: [ {user: n, password: n} ] }
}
authorization { users: [ {user: g, password: g} ] }
"""


@pytest.fixture(scope="module")
def acct_server(server_binary, tmp_path_factory):
    d = tmp_path_factory.mktemp("acctjs")
    conf = d / "acctjs.conf"
    conf.write_text(CONF % {"store": str(d / "store")})
    with ServerProcess(server_binary, ["-c", str(conf)]) as srv:
        yield srv


@pytest.fixture
async def as_user(acct_server):
    conns = []

    async def _connect(user: str):
        nc = await nats.connect(f"nats://{user}:{user}@127.0.0.1:{acct_server.port}",
                                allow_reconnect=False, connect_timeout=2)
        conns.append(nc)
        return nc, nc.jetstream(timeout=3)

    try:
        yield _connect
    finally:
        for nc in conns:
            await nc.close()


async def _fresh(js, *names):
    """The module's server is shared: start each test from no streams of these names."""
    for name in names:
        try:
            await js.delete_stream(name)
        except APIError:
            pass


async def test_sameNamedStreamsInTwoAccounts_areIsolated(as_user):
    _, ja = await as_user("a")
    _, jb = await as_user("b")
    await _fresh(ja, "ORDERS")
    await _fresh(jb, "ORDERS", "S1", "S2")
    await ja.add_stream(name="ORDERS", subjects=["orders.>"])
    await jb.add_stream(name="ORDERS", subjects=["orders.>"])
    assert (await ja.publish("orders.1", b"a1")).seq == 1
    assert (await ja.publish("orders.2", b"a2")).seq == 2
    assert (await jb.publish("orders.1", b"b1")).seq == 1
    assert (await ja.stream_info("ORDERS")).state.messages == 2
    assert (await jb.stream_info("ORDERS")).state.messages == 1
    assert (await jb.get_msg("ORDERS", 1)).data == b"b1"
    await ja.delete_stream("ORDERS")
    assert (await jb.stream_info("ORDERS")).state.messages == 1
    await jb.delete_stream("ORDERS")


@pytest.mark.parametrize("user", ["n", "g"], ids=["account_without_jetstream", "global_account_with_accounts"])
async def test_accountWithoutJetStream_isRefused(as_user, user):
    nc, js = await as_user(user)
    with pytest.raises(APIError) as e:
        await js.account_info()
    assert (e.value.code, e.value.err_code) == (503, 10039)
    assert e.value.description == "JetStream not enabled for account"
    with pytest.raises(APIError) as e:
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
    assert e.value.err_code == 10039
    # Direct gets and pulls have no responder there; other subjects are not API at all.
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("$JS.API.DIRECT.GET.ORDERS", b'{"seq":1}', timeout=2)
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("$JS.API.CONSUMER.MSG.NEXT.ORDERS.C", b"", timeout=2)


async def test_limits_streamsConsumersAndStorage(as_user):
    _, jb = await as_user("b")
    await _fresh(jb, "ORDERS", "S1", "S2", "S3", "BIG", "BIGM")
    with pytest.raises(APIError) as e:
        await jb.add_stream(name="BIG", subjects=["big"], max_bytes=3 * 1024 * 1024)
    assert (e.value.code, e.value.err_code, e.value.description) == (500, 10047, "insufficient storage resources available")
    with pytest.raises(APIError) as e:
        await jb.add_stream(name="BIGM", subjects=["bigm"], storage="memory", max_bytes=2 * 1024 * 1024)
    assert (e.value.code, e.value.err_code, e.value.description) == (500, 10028, "insufficient memory resources available")
    await jb.add_stream(name="S1", subjects=["s1"])
    await jb.add_stream(name="S2", subjects=["s2"])
    with pytest.raises(APIError) as e:
        await jb.add_stream(name="S3", subjects=["s3"])
    assert (e.value.code, e.value.err_code, e.value.description) == (400, 10027, "maximum number of streams reached")
    await jb.add_consumer("S1", durable_name="c1", ack_policy="explicit")
    with pytest.raises(APIError) as e:
        await jb.add_consumer("S1", durable_name="c2", ack_policy="explicit")
    assert (e.value.code, e.value.err_code, e.value.description) == (400, 10026, "maximum consumers limit reached")
    # The account's max_consumers bounds each stream (nats-server), so S2 still takes one.
    await jb.add_consumer("S2", durable_name="c2", ack_policy="explicit")
    # 2 MiB of storage: 100 kB messages fit 20 times, the 21st is refused.
    stored = 0
    with pytest.raises(APIError) as e:
        for _ in range(30):
            await jb.publish("s1", b"x" * 100_000)
            stored += 1
    assert stored == 20
    assert (e.value.code, e.value.err_code, e.value.description) == (400, 10002, "resource limits exceeded for account")
    info = await jb.account_info()
    assert info.streams == 2 and info.consumers == 2
    assert 2_000_000 < info.storage <= 2 * 1024 * 1024
    await _fresh(jb, "S1", "S2")


async def _raw_info(nc) -> dict:
    return json.loads((await nc.request("$JS.API.INFO", b"", timeout=3)).data)


async def test_accountInfo_ownUsageAndLimits(as_user):
    nca, ja = await as_user("a")
    ncb, jb = await as_user("b")
    await _fresh(ja, "ORDERS", "R")
    await _fresh(jb, "ORDERS", "S1", "S2", "R")
    await jb.add_stream(name="R", subjects=["r"], max_bytes=500_000)
    await jb.publish("r", b"hello")
    b = await jb.account_info()
    assert (b.limits.max_memory, b.limits.max_storage) == (1024 * 1024, 2 * 1024 * 1024)
    assert (b.limits.max_streams, b.limits.max_consumers) == (2, 1)
    assert b.streams == 1 and b.storage > 0
    assert (await _raw_info(ncb))["reserved_storage"] == 500_000  # not in nats-py's AccountInfo
    a = await ja.account_info()
    assert a.streams == 0 and a.storage == 0
    assert (a.limits.max_streams, a.limits.max_consumers) == (-1, -1)
    assert (await _raw_info(nca))["reserved_storage"] == 0
    await jb.delete_stream("R")
