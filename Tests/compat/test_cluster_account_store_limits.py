"""The servers' JetStream storage limits over every account in a three-node cluster, proven
against nats-server 2.15.1 and clusterd (every node `max_file_store: 1MB`, two accounts): a
stream is placed only where its `max_bytes` fits beside what every account's streams reserve
on the servers, so account B cannot take the room account A's stream reserved (400/10005),
and gets it once A's stream is deleted.

Both servers learn another account's reservations on a server from that server's reports, so
the refusal (and the room after the delete) come within a report interval: the test retries,
boundedly. Every node is a child process on free loopback ports, reaped by the fixture even on
failure.
"""
from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.errors import APIError

from clusterproc import cluster_fixture

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster, pytest.mark.security]

CONF = """
jetstream { max_file_store: 1MB, max_memory_store: 1MB }
accounts {
  A: { users: [ {user: a, password: a} ], jetstream: enabled }
  B: { users: [ {user: b, password: b} ], jetstream: enabled }
}
"""

REFUSED = (400, 10005, "no suitable peers for placement, insufficient storage")


def _conf(tmp_path):
    conf = tmp_path / "accounts-limits.conf"
    conf.write_text(CONF)
    return ["-c", str(conf)]


cluster = cluster_fixture("acctlimits", extra_args=_conf)


async def _create(js, name: str, max_bytes: int, replicas: int = 3):
    """None when created, else the refusal's (code, err_code, description)."""
    try:
        await js.add_stream(name=name, subjects=[name.lower()], num_replicas=replicas, max_bytes=max_bytes)
        return None
    except APIError as err:
        return (err.code, err.err_code, err.description)


async def _until(js, name: str, max_bytes: int, want, replicas: int = 3, attempts: int = 60):
    """Creates `name` until the answer is `want` (None: created; or a refusal), boundedly: a
    stream created meanwhile is deleted again, and a request that times out or meets an
    account's meta group still electing its leader is tried again. Returns the last answer."""
    answer = "no answer"
    for _ in range(attempts):
        try:
            answer = await _create(js, name, max_bytes, replicas)
        except Exception as err:  # noqa: BLE001 - a timeout while a meta leader is elected
            answer = repr(err)
        if answer == want:
            return answer
        if answer is None:
            await js.delete_stream(name)
        await asyncio.sleep(0.25)
    return answer


async def test_placement_countsTheOtherAccountsReservations(cluster):
    port_a, port_b = cluster.nodes[0].port, cluster.nodes[1].port
    nca = await nats.connect(f"nats://a:a@127.0.0.1:{port_a}", allow_reconnect=False, connect_timeout=3)
    ncb = await nats.connect(f"nats://b:b@127.0.0.1:{port_b}", allow_reconnect=False, connect_timeout=3)
    try:
        ja, jb = nca.jetstream(timeout=5), ncb.jetstream(timeout=5)
        assert await _until(ja, "FIRST", 700_000, None) is None
        # 700,000 of each server's 1,048,576 bytes are A's: B's 500,000 fits on none of them,
        # not even as one copy (so two of the servers must have reported A's reservation).
        assert await _until(jb, "SECOND", 500_000, REFUSED, replicas=1) == REFUSED
        assert await _until(jb, "SMALL", 300_000, None) is None
        await ja.delete_stream("FIRST")
        assert await _until(jb, "THIRD", 700_000, None) is None
        assert (await jb.stream_info("THIRD")).config.max_bytes == 700_000
    finally:
        await nca.close()
        await ncb.close()
