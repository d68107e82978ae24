"""Subject mappings (`mappings` at the top level and in accounts), proven against nats-server
2.15.1 and clusterd with nats-py: a client's publish goes to the mapped subject (literal,
reordered wildcards, partition, weighted; the leftover weight keeps the subject), only in the
account that maps it, with the publish permission checked on the mapped subject (as
nats-server 2.15.1 does), and a JetStream stream stores what was mapped onto its subjects."""
from __future__ import annotations

import asyncio
import time

import nats
import pytest

from serverproc import ServerProcess

pytestmark = [pytest.mark.security, pytest.mark.jetstream,
              pytest.mark.single_node(reason="starts its own server")]

CONF = """
jetstream { store_dir: "%(store)s" }
mappings {
  "lit.a": "lit.b"
  "swap.*.*": "swapped.$2.$1"
  "part.*": "part.{{partition(3,1)}}.{{wildcard(1)}}"
  "all.*": [ {destination: "all.x.$1", weight: 100%%} ]
  "half.*": [ {destination: "half.a.$1", weight: 50%%}, {destination: "half.b.$1", weight: "50%%"} ]
  "some.*": [ {destination: "some.x.$1", weight: 30} ]
}
accounts {
  A: {
    users: [ {user: a, password: a}, {user: p, password: p, permissions: {publish: {allow: ["out.*", "$JS.API.>"]}}},
             {user: r, password: r, permissions: {publish: {allow: ["in.*"]}}} ]
    jetstream: enabled
    mappings: { "in.*": "out.$1" }
  }
  B: { users: [ {user: b, password: b} ] }
}
authorization { users: [ {user: g, password: g} ] }
"""


def _fnv1a(s: str) -> int:
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


@pytest.fixture(scope="module")
def map_server(server_binary, tmp_path_factory):
    d = tmp_path_factory.mktemp("mappings")
    conf = d / "mappings.conf"
    conf.write_text(CONF % {"store": str(d / "store")})
    with ServerProcess(server_binary, ["-c", str(conf)]) as srv:
        yield srv


@pytest.fixture
async def as_user(map_server):
    conns = []

    async def _connect(user: str, **kw):
        nc = await nats.connect(f"nats://{user}:{user}@127.0.0.1:{map_server.port}", allow_reconnect=False, connect_timeout=2, **kw)
        conns.append(nc)
        return nc

    try:
        yield _connect
    finally:
        for nc in conns:
            await nc.close()


async def _collect(nc, pattern: str) -> list:
    got = []

    async def seen(m):
        got.append(m.subject)

    await nc.subscribe(pattern, cb=seen)
    await nc.flush()
    return got


async def _wait_for(items: list, n: int) -> None:
    end = time.monotonic() + 10
    while len(items) < n:
        assert time.monotonic() < end, f"{len(items)} of {n}: {items}"
        await asyncio.sleep(0.02)


async def test_publishesGoToTheMappedSubject(as_user):
    g = await as_user("g")
    lit, swapped, part, alls = (await _collect(g, "lit.>"), await _collect(g, "swapped.>"),
                                await _collect(g, "part.>"), await _collect(g, "all.>"))
    await g.publish("lit.a", b"x")
    await g.publish("swap.one.two", b"x")
    for key in ("foo", "bar", "q1"):
        await g.publish(f"part.{key}", b"x")
    await g.publish("all.k", b"x")
    await _wait_for(lit, 1)
    await _wait_for(swapped, 1)
    await _wait_for(part, 3)
    await _wait_for(alls, 1)
    # A request round trip: anything still in flight to these subscribers has arrived.
    await g.flush()
    assert lit == ["lit.b"]
    assert swapped == ["swapped.two.one"]
    assert part == [f"part.{_fnv1a(k) % 3}.{k}" for k in ("foo", "bar", "q1")]
    assert alls == ["all.x.k"]


async def test_weightedMappings_eachPublishGoesToOneDestination(as_user):
    g = await as_user("g")
    half, some = await _collect(g, "half.>"), await _collect(g, "some.>")
    for i in range(40):
        await g.publish(f"half.k{i}", b"x")
        await g.publish(f"some.k{i}", b"x")
    await _wait_for(half, 40)
    await _wait_for(some, 40)
    for i in range(40):
        assert sum(s in (f"half.a.k{i}", f"half.b.k{i}") for s in half) == 1, half
        # 30% mapped, the other 70% keep the published subject.
        assert sum(s in (f"some.x.k{i}", f"some.k{i}") for s in some) == 1, some
    assert not any(s.startswith("half.k") for s in half)


async def test_mappingsBelongToTheirAccount(as_user):
    a, b, g = await as_user("a"), await as_user("b"), await as_user("g")
    in_a, in_b, lit_a = await _collect(a, "out.>"), await _collect(b, "in.>"), await _collect(a, "lit.>")
    await a.publish("in.z", b"x")
    await b.publish("in.z", b"x")
    await a.publish("lit.a", b"x")  # the global account's mapping: not A's
    await _wait_for(in_a, 1)
    await _wait_for(in_b, 1)
    await _wait_for(lit_a, 1)
    assert (in_a, in_b, lit_a) == (["out.z"], ["in.z"], ["lit.a"])
    await g.flush()


async def test_permissionIsCheckedOnTheMappedSubject_andAStreamStoresIt(as_user):
    p = await as_user("p")  # may publish on out.* (and the API) only; in.* maps to out.*
    js = p.jetstream(timeout=3)
    await js.add_stream(name="MAPPED", subjects=["out.>"])
    try:
        ack = await js.publish("in.q", b"stored")
        assert (ack.stream, ack.seq) == ("MAPPED", 1)
        assert (await js.get_msg("MAPPED", 1)).subject == "out.q"
    finally:
        await js.delete_stream("MAPPED")
    errors = []

    async def on_error(e):
        errors.append(str(e))

    a = await as_user("a")
    outs = await _collect(a, "out.>")
    r = await as_user("r", error_cb=on_error)  # may publish on in.* only: refused for out.z
    await r.publish("in.z", b"x")
    await r.flush()
    end = time.monotonic() + 10
    while not errors:
        assert time.monotonic() < end, "no permissions violation"
        await asyncio.sleep(0.02)
    assert 'permissions violation for publish to "out.z"' in errors[0].lower()
    await a.flush()
    assert outs == []
