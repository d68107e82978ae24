"""Reading every replica's copy of a stream after the cluster healed.

Reads are served by the stream leader from its own store, so a copy is read once per replica
by moving leadership around (STREAM.LEADER.STEPDOWN to a replica not read yet, until every
replica has led once; a node that never gets elected within the attempts is reported as
unverified, not assumed good).
Each node's own /jsz stream state (messages, first and last sequence) is compared as well,
which covers every replica even when its contents could not be read through leadership.
"""
from __future__ import annotations

import asyncio
import json
import time

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cluster import ChaosCluster


READ_SECONDS = 180


async def wait_caught_up(js, stream: str, replicas: int, timeout: float) -> dict:
    """Stream info once a leader answers and every replica reports current."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            si = await js.stream_info(stream)
            c = si.cluster
            if c and c.leader and len(c.replicas or []) == replicas - 1 and all(r.current for r in c.replicas):
                return {"leader": c.leader, "last_seq": si.state.last_seq, "messages": si.state.messages}
            last = c
        except Exception as e:  # noqa: BLE001 - elections in progress
            last = e
        await asyncio.sleep(0.5)
    raise TimeoutError(f"stream {stream}: replicas not current after {timeout}s: {last}")


async def leader_only(js, stream: str, timeout: float) -> dict:
    """Stream info from whichever leader answers, current replicas or not."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            si = await js.stream_info(stream)
            if si.cluster and si.cluster.leader:
                return {"leader": si.cluster.leader, "last_seq": si.state.last_seq, "messages": si.state.messages}
        except Exception as e:  # noqa: BLE001
            last = e
        await asyncio.sleep(0.5)
    raise TimeoutError(f"stream {stream}: no leader answered within {timeout}s (replicas also not current): {last}")


async def read_through_leader(js, stream: str, last_seq: int, tag: str) -> tuple[list[tuple[int, str]], bool]:
    """All messages of `stream` as (seq, id), read by an ack-none pull consumer, and whether the
    consumer went back to a sequence it had already delivered (it moved to another replica)."""
    name = f"chk{tag}"
    sub = await js.pull_subscribe("", durable=None, stream=stream, config=ConsumerConfig(
        name=name, ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30))
    out: list[tuple[int, str]] = []
    try:
        seen_last = 0
        rewound = False
        idle = 0
        # Bounded also when fetches keep answering without progress (a consumer that went back
        # to a sequence it had delivered, again and again): a read that ends short is re-read.
        deadline = time.monotonic() + READ_SECONDS
        while seen_last < last_seq and idle < 5 and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(256, timeout=2)
            except (asyncio.TimeoutError, nats.errors.TimeoutError):
                idle += 1
                continue
            idle = 0 if msgs else idle + 1
            for m in msgs:
                seq = m.metadata.sequence.stream
                rewound = rewound or seq <= seen_last
                out.append((seq, m.data.decode(errors="replace")))
                seen_last = max(seen_last, seq)
    finally:
        try:
            await sub.unsubscribe()
            await js.delete_consumer(stream, name)
        except Exception:  # noqa: BLE001 - the consumer expires on its own
            pass
    return out, rewound


async def read_all_replicas(cluster: ChaosCluster, nc, stream: str, replicas: int,
                            catch_up_timeout: float = 90, attempts: int = 12) -> dict:
    """{"copies": {node: [(seq, id)]}, "local": {node: state}, "unverified": [...]}"""
    js = nc.jetstream(timeout=5)
    lagging = None
    try:
        info = await wait_caught_up(js, stream, replicas, catch_up_timeout)
    except TimeoutError as e:
        # Still check what the leader holds; the lagging replicas are reported, not read.
        lagging = str(e)
        info = await leader_only(js, stream, 30)
    copies: dict[str, list[tuple[int, str]]] = {}
    peers: set[str] = set()
    rereads = 0
    for i in range(1 if lagging else attempts):
        if i > 0:
            info = await wait_caught_up(js, stream, replicas, catch_up_timeout)
        leader = info["leader"]
        si = await js.stream_info(stream)
        peers = {leader} | {r.name for r in si.cluster.replicas}
        for attempt in range(3):
            if leader in copies:
                break
            # An empty stream (interest retention, drained) has nothing to read: no consumer
            # waits out its idle fetches.
            copy, rewound = ([], False) if info["messages"] == 0 else \
                await read_through_leader(js, stream, info["last_seq"], f"{i}r{attempt}")
            after = (await js.stream_info(stream)).cluster
            moved = rewound or not after or after.leader != leader
            short = len(copy) < info["messages"]
            if attempt == 2 or not (moved or short):
                copies[leader] = copy  # the last attempt is checked whatever it holds
                break
            # The stream's leadership moved during the read (an election under load, or the
            # previous round's stepdown taking effect late): the consumer went on from another
            # replica, which resumed at its last replicated delivery point, so the copy mixes
            # two replicas and repeats what came between. Or the read stopped early (five
            # fetches in a row timed out on a loaded machine: the 3-node soak once read an empty
            # copy of a 3,656-message stream). Read again, from whoever leads now.
            rereads += 1
            if after and after.leader:
                leader = after.leader
                peers.add(leader)
        if set(copies) >= peers:
            break
        # Hand leadership to a replica not read yet (`placement.preferred`, as nats-server
        # 2.11+): a plain stepdown picks the most caught-up follower, which can bounce between
        # the same two nodes and never reach the third.
        unread = sorted(peers - set(copies))
        body = json.dumps({"placement": {"preferred": unread[0]}}).encode() if unread else b""
        try:
            r = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", body, timeout=5)
            json.loads(r.data)
        except Exception:  # noqa: BLE001 - retried by the next round
            pass
        await asyncio.sleep(1.0)
    local = {}
    for n in cluster.nodes:
        if n.name in peers and not lagging:
            try:
                local[n.name] = cluster.local_stream_state(n, stream)
            except OSError as e:
                local[n.name] = {"error": str(e)}
    return {"copies": copies, "local": local, "peers": sorted(peers), "lagging": lagging,
            "unverified": sorted(peers - set(copies)), "leader_info": info,
            "rereads": rereads}
