"""Regression test for the remainder of finding 15 of docs/chaos.md: the delayed copy.

The stream leader's outbound route traffic is stalled by the fault proxies (inbound flows).
A client on another node (the relay) pulls; the request reaches the cut-off leader, which
still holds its lease and delivers 10 messages: those bytes wait in the proxy. The leader's
lease runs out, the other two replicas elect a new leader, which never learned of that delivery
and delivers the same 10 messages (count 1, same consumer sequences); the client acks them and
the new leader confirms. Then the stall ends and the old leader's held copies reach the relay.
Before the fix the relay handed them to the client: 10 confirmed acks seen again. Now every
delivery crosses the route stamped with its leader's term, and the relay refuses one from an
older term than a delivery it already handed out for the stream (`DeliveryTermFence`),
counting it in /varz `stale_deliveries_dropped`.

Deterministic except for one timing condition, which is checked: the pull must reach the old
leader within its lease; its own /jsz tells whether it delivered, and the setup retries a few
times when it did not.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from cluster import ChaosCluster
from test_failover_consumer import _connect, _leader, _new_leader, add_stream_and_durable, run_scenario
from workload import RawPull, ack_seqs

STREAM, DURABLE = "HELDCOPY", "CHELDCOPY"
PUSH_SUBJECT = "heldcopy.push"
BATCH = 10
ATTEMPTS = 4


def _get(cluster: ChaosCluster, name: str, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.node(name).monitor_port}{path}", timeout=2) as r:
        return json.loads(r.read())


def _delivered_on(cluster: ChaosCluster, name: str) -> int:
    """The consumer sequence `name`'s own copy of the durable has delivered up to."""
    d = _get(cluster, name, "/jsz?consumers=true")
    for acc in d.get("account_details") or []:
        for s in acc.get("stream_detail") or []:
            for c in s.get("consumer_detail") or []:
                if c.get("name") == DURABLE:
                    return int((c.get("delivered") or {}).get("consumer_seq") or 0)
    return 0


def _dropped_on(cluster: ChaosCluster, name: str) -> int:
    return int(_get(cluster, name, "/varz").get("stale_deliveries_dropped") or 0)


class PushReceiver(RawPull):
    """What a push consumer sends to `deliver_subject`, read like a `RawPull` (its `fetch` waits
    for what arrives): the consumer sends on its own once the subscription's interest exists."""

    def __init__(self, nc, deliver_subject: str, clock):
        super().__init__(nc, STREAM, DURABLE, clock)
        self.inbox = deliver_subject

    async def request(self, batch: int, expires: float) -> None:
        pass


async def _held_delivery(cluster: ChaosCluster, names: list[str], js, push: bool):
    """Stalls the stream leader's outbound route traffic and has it deliver to a client on
    another node within its lease: a pull request, or (push) the client subscribing to the
    deliver subject. Returns (old leader, relay node, its connection, the receiver, how many
    messages the old leader delivered into the stall)."""
    for attempt in range(ATTEMPTS):
        for i in range(5):  # fresh commits right before the stall: the lease starts from them
            await js.publish(f"held.{attempt}.{i}", b"x")
        old = await _leader(js, stream=STREAM)
        assert old in names, f"no stream leader: {old}"
        relay = next(n for n in names if n != old)
        nc = await _connect(cluster.node(relay).url)
        puller = PushReceiver(nc, PUSH_SUBJECT, time.monotonic) if push else RawPull(nc, STREAM, DURABLE, time.monotonic)
        if not push:
            await puller.start()
        before = _delivered_on(cluster, old)
        await js.publish(f"held.{attempt}.last", b"x")
        cluster.partition({(old, b) for b in names if b != old})
        if push:
            await puller.start()   # the interest reaches the leader (inbound flows): it pushes
        else:
            await puller.request(BATCH, expires=2)
        # Read while it still leads: once CheckQuorum deposes it, its copy of the consumer goes
        # back to the last committed record (which does not have the held delivery).
        held = 0
        for _ in range(20):
            held = max(held, _delivered_on(cluster, old) - before)
            if held:
                break
            await asyncio.sleep(0.05)
        assert puller.arrived.empty(), "a delivery crossed the stall"
        if held > 0:
            return old, relay, nc, puller, held
        # The lease ran out before the request got there (a slow machine): try again.
        print(f"attempt {attempt}: stalled leader {old} delivered nothing (lease over); healing")
        await nc.close()
        cluster.partition(set())
        await asyncio.sleep(3)
    pytest.fail(f"the stalled stream leader never delivered within its lease in {ATTEMPTS} attempts")


async def _scenario(cluster: ChaosCluster, push: bool) -> None:
    names = [n.name for n in cluster.nodes]
    admin = await _connect(cluster.nodes[0].url)
    js = admin.jetstream(timeout=5)
    await add_stream_and_durable(js, STREAM, "held", DURABLE, max_ack_pending=1000,
                                 **({"deliver_subject": PUSH_SUBJECT} if push else {}))
    # The stall below also holds the API answers of the old leader: ask through the relay.
    old, relay, nc, puller, held = await _held_delivery(cluster, names, js, push)
    await admin.close()
    try:
        assert not any(p.unknown_dialers for p in cluster.proxies), "a route the proxies cannot attribute (cut ineffective)"
        print(f"stalled leader {old} delivered {held} messages into the stall; client on {relay}")
        new = await _new_leader(nc.jetstream(timeout=5), old, STREAM)
        assert new and new != old, f"no new leader while {old} was stalled (saw {new})"

        confirmed: dict[int, float] = {}   # stream seq -> when its ack was confirmed
        fresh: list[tuple[int, int, int]] = []
        for _ in range(10):
            if len(confirmed) >= held:
                break
            for _, m in await puller.fetch(BATCH, timeout=3):
                fresh.append(ack_seqs(m.reply))
                await nc.request(m.reply, b"+ACK", timeout=5)
                confirmed.setdefault(ack_seqs(m.reply)[0], time.monotonic())
        path = "on the relay itself" if new == relay else "over a route"
        print(f"new leader {new} delivered (seq, count, cseq) {fresh} {path}; acks confirmed")
        assert len(confirmed) >= held, f"the new leader {new} delivered only {sorted(confirmed)}"

        cluster.partition(set())   # the held bytes flow: the old leader's copies reach the relay
        arrived: list[tuple[float, tuple[int, int, int]]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            arrived += [(t, ack_seqs(m.reply)) for t, m in puller.drain() if (m.reply or "").startswith("$JS.ACK.")]
            # (A push consumer's new leader goes on sending the messages not acked yet.)
            if any(q in confirmed for _, (q, _, _) in arrived) or _dropped_on(cluster, relay) >= held:
                break
            await asyncio.sleep(0.2)
        again = sorted(q for t, (q, _, _) in arrived if q in confirmed and t > confirmed[q])
        assert not again, f"confirmed acks seen again at {relay} after the stall ended: {again} ({arrived})"
        dropped = _dropped_on(cluster, relay)
        print(f"relay {relay} dropped {dropped} stale deliveries")
        assert dropped >= held, f"the held copies never reached {relay} ({dropped} of {held} dropped)"

        # Nothing starves: the consumer carries on from where the acks left it.
        await nc.jetstream(timeout=5).publish("held.after", b"x")
        after = [ack_seqs(m.reply) for _, m in await puller.fetch(BATCH, timeout=3)]
        assert after and not {q for q, _, _ in after} & set(confirmed), f"after the heal: {after}"
    finally:
        await nc.close()


@pytest.mark.chaos
def test_held_copy_of_a_deposed_leaders_delivery_is_dropped_by_the_relay():
    run_scenario("heldcopy", lambda cluster: _scenario(cluster, push=False))


@pytest.mark.chaos
def test_held_copy_of_a_deposed_leaders_push_delivery_is_dropped_by_the_relay():
    run_scenario("heldpush", lambda cluster: _scenario(cluster, push=True))
