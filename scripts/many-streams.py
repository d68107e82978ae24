#!/usr/bin/env python3
"""Many streams: start three clusterd nodes (free loopback ports, temporary data directories),
create N R3 file streams in parallel from several connections, let them go idle, then sample
each node's idle CPU (CPU-seconds per second), RSS and open file descriptors from /proc.

    nice -n 10 .venv/bin/python scripts/many-streams.py --bin .build/release/clusterd --streams 10000

Creation stops early (and the idle numbers are taken for what exists) when --create-seconds
runs out or --give-up creates failed five attempts each; the report says how many streams
exist and at what rate they were created, how the failed attempts failed (timeout, 503, other),
and how often the meta group elected a leader meanwhile (its term on /jsz, and the nodes' "this
server is the meta leader" log lines). The nodes are always stopped and their directories removed.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "compat"))

import nats  # noqa: E402
import nats.errors  # noqa: E402

from clusterproc import Cluster  # noqa: E402


def proc_sample(pid: int) -> tuple[float, int, int]:
    """CPU seconds used so far, RSS in bytes, open file descriptors."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss, len(os.listdir(f"/proc/{pid}/fd"))


def meta_state(cluster: Cluster) -> tuple[int | None, int]:
    """The meta group's highest term on /jsz (None when a node did not answer in time: /jsz
    sums up every stream, slow with thousands on a loaded machine), and how many times any node
    logged that it became meta leader so far."""
    terms = []
    for n in cluster.nodes:
        try:
            with urllib.request.urlopen(n.monitor_url + "/jsz", timeout=60) as r:
                terms.append(json.loads(r.read()).get("meta_cluster", {}).get("leader_term", 0))
        except OSError as e:
            print(f"  /jsz of {n.monitor_url}: {e!r}", flush=True)
    elected = sum(n.stderr_text().count("this server is the meta leader") for n in cluster.nodes)
    return (max(terms) if terms else None), elected


def failure_kind(e: Exception) -> str:
    if isinstance(e, (asyncio.TimeoutError, nats.errors.TimeoutError)):
        return "timeout"
    code = getattr(e, "code", None)
    return f"{code}" if code else type(e).__name__


async def create_streams(cluster: Cluster, count: int, conns_per_node: int, in_flight: int,
                         budget_s: float, give_up: int, kinds: collections.Counter) -> tuple[int, float]:
    """Creates streams MS0..MS<count-1>; returns how many exist and the seconds it took."""
    conns = [await nats.connect(n.url, connect_timeout=5, max_reconnect_attempts=3)
             for n in cluster.nodes for _ in range(conns_per_node)]
    next_index = 0
    created = 0
    failures = 0
    abandoned = 0
    started = time.monotonic()
    deadline = started + budget_s
    stop = False

    async def worker(k: int) -> None:
        nonlocal next_index, created, failures, abandoned, stop
        js = conns[k % len(conns)].jetstream(timeout=20)
        while not stop and next_index < count and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            for attempt in range(5):
                try:
                    await js.add_stream(name=f"MS{i}", subjects=[f"ms.{i}"], num_replicas=3)
                    created += 1
                    break
                except Exception as e:  # noqa: BLE001 - timeout (the create may have applied): retry
                    failures += 1
                    kinds[failure_kind(e)] += 1
                    if attempt == 4:
                        abandoned += 1
                        print(f"stream MS{i}: skipped after {e!r} ({abandoned} skipped)", flush=True)
                        stop = abandoned >= give_up
                    await asyncio.sleep(0.5)
            if created and created % 500 == 0:
                el = time.monotonic() - started
                print(f"  {created} streams in {el:.0f} s ({created / el:.1f}/s), {failures} retried", flush=True)

    try:
        await asyncio.gather(*(worker(k) for k in range(in_flight)))
    finally:
        for c in conns:
            await c.close()
    return created, time.monotonic() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=".build/release/clusterd")
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--connections-per-node", type=int, default=2)
    ap.add_argument("--in-flight", type=int, default=32, help="concurrent creates")
    ap.add_argument("--create-seconds", type=float, default=1800)
    ap.add_argument("--give-up", type=int, default=20, help="stop creating after this many streams failed")
    ap.add_argument("--settle-seconds", type=float, default=20, help="wait before sampling (groups quiesce after 2 s)")
    ap.add_argument("--sample-seconds", type=float, default=30)
    ap.add_argument("--healthz-probes", type=int, default=50)
    a = ap.parse_args()

    # Two descriptors per stream and node (its Raft log and its store): raise the soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"open files limit per process: {hard}")

    cluster = Cluster(a.bin, name="many")
    try:
        cluster.start()
        cluster.warm_up()
        term0, elected0 = meta_state(cluster)
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        kinds: collections.Counter = collections.Counter()
        created, took = asyncio.run(create_streams(cluster, a.streams, a.connections_per_node, a.in_flight,
                                                    a.create_seconds, a.give_up, kinds))
        term1, elected1 = meta_state(cluster)
        print(f"created {created} of {a.streams} R3 streams in {took:.0f} s ({created / max(took, 1e-9):.1f}/s)")
        print(f"failed attempts: {sum(kinds.values())} {dict(kinds) if kinds else ''}")
        print(f"meta group while creating: term {term0} -> {term1}, {elected1 - elected0} leader elections logged")
        print(f"load average after creating: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        time.sleep(a.settle_seconds)
        before = {n.proc.pid: proc_sample(n.proc.pid) for n in cluster.nodes}
        time.sleep(a.sample_seconds)
        print(f"idle, over {a.sample_seconds:.0f} s:")
        for i, n in enumerate(cluster.nodes):
            cpu0 = before[n.proc.pid][0]
            cpu1, rss, fds = proc_sample(n.proc.pid)
            print(f"  n{i + 1}: {(cpu1 - cpu0) / a.sample_seconds:.3f} CPU-s/s, RSS {rss / 2**20:.0f} MiB, {fds} open fds")
        # The readiness probe checks every replicated stream on the node (on its JetStream queue).
        # `?js-meta-only=true` skips the streams: the difference is their check.
        for query in ("", "?js-meta-only=true"):
            print(f"/healthz{query}, {a.healthz_probes} probes per node (ms):")
            for i, n in enumerate(cluster.nodes):
                took_ms, codes = [], collections.Counter()
                for _ in range(a.healthz_probes):
                    t = time.monotonic()
                    try:
                        with urllib.request.urlopen(n.monitor_url + "/healthz" + query, timeout=10) as r:
                            codes[r.status] += 1
                    except urllib.error.HTTPError as e:
                        codes[e.code] += 1
                    took_ms.append((time.monotonic() - t) * 1000)
                took_ms.sort()
                print(f"  n{i + 1}: median {took_ms[len(took_ms) // 2]:.1f}, max {took_ms[-1]:.1f}, answers {dict(codes)}")
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
