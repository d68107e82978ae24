"""A rolling restart under load (issue 7): the three nodes of a cluster are restarted one by
one with SIGTERM (graceful: clusterd enters lame duck and hands its leaderships over first)
while two publishers publish synchronously to an R3 stream: one with a Nats-Msg-Id on each
message, retried with the same id until acknowledged; one without, never retried (a retry of a
publish without an id may store it twice), so each of its publishes gets one attempt.

Asserted: every acknowledged message is in the stream exactly once, with its payload; no
message is stored twice; on clusterd no publish without an id is refused (a 503 or no
responders: a handover forwards publishes instead of refusing them) — a timed-out attempt is
counted, not asserted, since whether an answer comes within the timeout depends on the machine.
Measured, not asserted (timing depends on the machine): the worst stall, the longest time
between two consecutive acks, and the longest wait of one write (first attempt to ack, retries
included), printed at the end together with the failed attempts.
The same test runs against nats-server for comparison. Every node is a child process on free
loopback ports, reaped by the fixture even when the test fails.
"""
from __future__ import annotations

import asyncio
import collections
import time

import nats
import pytest

from clusterproc import READY_TIMEOUT_S, Cluster, retry
from test_cluster_jetstream import cluster  # noqa: F401 - the three-node fixture

pytestmark = [pytest.mark.jetstream, pytest.mark.cluster]

# Per-attempt publish timeout: an attempt lost during a handover is retried after this.
PUBLISH_TIMEOUT_S = 1.0


class Publisher:
    """Publishes m0, m1, ... one at a time. With ids (`retry`): each is retried with its id
    until acknowledged. Without: one attempt each, failures counted."""

    def __init__(self, js, subject: str, retry: bool = True):
        self.js = js
        self.subject = subject
        self.retry = retry
        self.acked: dict[int, int] = {}  # message number -> stream sequence
        self.ack_times: list[float] = []
        self.worst_wait = 0.0  # longest time from a write's first attempt to its ack
        # Per ack: whether an attempt of that message timed out (was lost, e.g. on a connection
        # the stopping node closed) rather than being refused at once.
        self.lost_attempt: list[bool] = []
        self.failures: collections.Counter[str] = collections.Counter()  # failed attempts by error
        self.stopping = False

    def payload(self, i: int) -> bytes:
        return f"{self.subject}:m{i}".encode()

    async def run(self) -> None:
        i = 0
        while not self.stopping:
            lost = False
            began = time.monotonic()
            while True:
                try:
                    ack = await self.js.publish(self.subject, self.payload(i), timeout=PUBLISH_TIMEOUT_S,
                                                headers={"Nats-Msg-Id": f"id-{i}"} if self.retry else None)
                    break
                except Exception as e:  # noqa: BLE001 - timeout, no responders, reconnecting: retry
                    self.failures[type(e).__name__] += 1
                    lost = lost or isinstance(e, nats.errors.TimeoutError)
                    if not self.retry:
                        ack = None
                        break
                    await asyncio.sleep(0.05)
            if ack is None:
                i += 1
                continue
            self.worst_wait = max(self.worst_wait, time.monotonic() - began)
            self.acked[i] = ack.seq
            self.ack_times.append(time.monotonic())
            self.lost_attempt.append(lost)
            i += 1

    def worst_stall(self, without_lost_attempts: bool = False) -> tuple[float, float]:
        """The longest time between two consecutive acks, and when it began; optionally only
        over acks none of whose attempts timed out (what the servers' handovers cost)."""
        gaps = [(b - a, a) for a, b, lost in zip(self.ack_times, self.ack_times[1:], self.lost_attempt[1:])
                if not (without_lost_attempts and lost)]
        return max(gaps, default=(0.0, 0.0))


async def wait_current(js, stream: str, node: str) -> None:
    """Waits until `stream` has a leader and `node` is its leader or a current replica."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            si = await js.stream_info(stream)
            c = si.cluster
            if c and c.leader and (c.leader == node or any(r.name == node and r.current for r in c.replicas)):
                return
        except Exception:  # noqa: BLE001 - no leader yet
            pass
        assert time.monotonic() < deadline, f"{node} did not catch up on {stream}"
        await asyncio.sleep(0.2)


async def test_rolling_restart_under_load_loses_no_acked_message(cluster: Cluster, server_kind: str, capsys):
    urls = [n.url for n in cluster.nodes]
    pub_nc = await nats.connect(servers=urls, reconnect_time_wait=0.1, max_reconnect_attempts=-1,
                                connect_timeout=2)
    admin = await nats.connect(servers=urls, reconnect_time_wait=0.1, max_reconnect_attempts=-1,
                               connect_timeout=2)
    plain_nc = await nats.connect(servers=urls, reconnect_time_wait=0.1, max_reconnect_attempts=-1,
                                  connect_timeout=2)
    task = None
    try:
        ajs = admin.jetstream(timeout=3)
        await retry(lambda: ajs.add_stream(name="ROLL", subjects=["roll", "roll.plain"], num_replicas=3))
        pub = Publisher(pub_nc.jetstream(), "roll")
        plain = Publisher(plain_nc.jetstream(), "roll.plain", retry=False)
        task = asyncio.gather(pub.run(), plain.run())
        await asyncio.sleep(1.0)  # load before the first restart
        restarts = []
        for i, node in enumerate(cluster.nodes):
            name = f"n{i + 1}"
            restarts.append((time.monotonic(), name))
            await asyncio.to_thread(node.stop)  # SIGTERM, waits for the exit
            await asyncio.to_thread(node.start)
            await wait_current(ajs, "ROLL", name)
            await asyncio.sleep(1.0)  # load between restarts
        pub.stopping = plain.stopping = True
        await asyncio.wait_for(task, READY_TIMEOUT_S)
        task = None

        assert len(pub.acked) > 0 and len(plain.acked) > 0
        si = await retry(lambda: ajs.stream_info("ROLL"))
        stored = {}
        for seq in range(1, si.state.last_seq + 1):
            m = await retry(lambda seq=seq: ajs.get_msg("ROLL", seq))
            assert m.data not in stored, f"stored twice: {m.data!r} at {stored.get(m.data)} and {seq}"
            stored[m.data] = seq
        # Exactly once: retries of an id were deduplicated, nothing acknowledged is missing.
        for p in (pub, plain):
            for n, seq in p.acked.items():
                assert stored.get(p.payload(n)) == seq, (p.subject, n, seq, stored.get(p.payload(n)))
        # Every id-publish was acknowledged; a plain one that timed out may be stored unacked.
        id_stored = [d for d in stored if d.startswith(b"roll:")]
        assert len(id_stored) == len(pub.acked), (len(id_stored), len(pub.acked))
        refused = {k: v for k, v in plain.failures.items() if k != "TimeoutError"}
        if server_kind == "clusterd":
            assert not refused, f"publishes without an id refused during the handovers: {refused}"
        with capsys.disabled():
            for p in (pub, plain):
                stall, at = p.worst_stall()
                during = next((n for t, n in reversed(restarts) if t <= at), "before the first restart")
                handover, _ = p.worst_stall(without_lost_attempts=True)
                print(f"\n[rolling restart, {server_kind}, {'with ids, retried' if p.retry else 'no ids, one attempt'}] "
                      f"{len(p.acked)} acked messages, worst stall between acks {stall:.2f} s (after SIGTERM of "
                      f"{during}); without a timed-out attempt {handover:.2f} s; longest write {p.worst_wait:.2f} s; "
                      f"failed attempts {dict(p.failures)}")
    finally:
        if task is not None:
            task.cancel()
        await pub_nc.close()
        await plain_nc.close()
        await admin.close()


def test_sigterm_tells_clients_to_leave_for_the_other_nodes(server_binary: str, server_kind: str):
    """clusterd's SIGTERM starts with lame duck: its clients get `INFO` with `ldm: true` and
    `connect_urls` without it, then `-ERR 'Stale Connection'` (which clients answer by
    reconnecting elsewhere at once); clients of the other nodes get `connect_urls` without
    it; the process exits 0. nats-server enters lame duck on SIGUSR2 only (its SIGTERM just
    closes), so this runs against clusterd."""
    if server_kind != "clusterd":
        pytest.skip("nats-server's SIGTERM is not lame duck")
    from rawconn import RawConn
    import json
    import signal

    def infos(conn, want, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = conn.read_until(b"\r\n", timeout=max(0.1, deadline - time.monotonic()))
            if line.startswith(b"INFO "):
                info = json.loads(line[5:])
                if want(info):
                    return info
        raise AssertionError("no such INFO")

    c = Cluster(server_binary)
    conns = []
    try:
        c.start()
        n1, n3 = c.nodes[0], c.nodes[2]
        url3 = f"127.0.0.1:{n3.port}"
        stay = RawConn(n1.port).connect(b'CONNECT {"verbose":false,"protocol":1}\r\n')
        leave = RawConn(n3.port).connect(b'CONNECT {"verbose":false,"protocol":1}\r\n')
        conns += [stay, leave]
        # Both know every node first (connect_urls arrive with and after the first PONG).
        for conn in conns:
            infos(conn, lambda i: len(i.get("connect_urls", [])) == 3, READY_TIMEOUT_S)
        n3.proc.send_signal(signal.SIGTERM)
        ldm = infos(leave, lambda i: i.get("ldm") is True, 5)
        assert url3 not in ldm.get("connect_urls", []) and f"127.0.0.1:{n1.port}" in ldm["connect_urls"], ldm
        rest = leave.until_closed(timeout=10)  # the server closes it if the client stays
        assert b"-ERR 'Stale Connection'" in rest, rest
        infos(stay, lambda i: "connect_urls" in i and url3 not in i["connect_urls"], 10)
        assert n3.proc.wait(15) == 0
    finally:
        for conn in conns:
            conn.close()
        c.close()
