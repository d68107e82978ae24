"""One chaos run: start the cluster, create the streams, run the workload while the seeded
fault schedule fires, heal, drain the consumers, read every replica back and check.
Returns a report dict (see `summarize`); `run_chaos.py` is the command line around it.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig

from checker import Result, check_kv, check_stream, unavailability
from cluster import ChaosCluster
from readback import READ_SECONDS, leader_only, read_all_replicas, wait_caught_up
from schedule import CLOCK_KINDS, POWER_CUT_KINDS, Fault, dump, make_schedule
from workload import History, Workload, connect_any, consumer_config, write_history, _close


DRAIN_SECONDS = 90  # per durable, after healing: liveness bound of consumer-at-least-once...
DRAIN_MAX_SECONDS = 600  # ...extended while the durable keeps catching up, up to this
DRAIN_STALL_SECONDS = 30  # no progress for this long after DRAIN_SECONDS: stuck, stop waiting
# Stream segment size of runs with `corrupt` (CLUSTERD_STREAM_SEGMENT_BYTES): small enough that
# a few seconds of publishing seal segments, so the fault hits a sealed one.
CORRUPT_SEGMENT_BYTES = 16384


@dataclass
class RunConfig:
    kind: str = "clusterd"          # or nats-server
    binary: str = ""
    nodes: int = 3
    seconds: float = 60
    seed: int = 1
    kinds: tuple[str, ...] = ()
    streams: int = 2
    publishers: int = 4
    kv: bool = True
    hold: tuple[float, float] = (2.0, 6.0)
    settle: tuple[float, float] = (4.0, 8.0)
    segment_bytes: int | None = None  # clusterd stream segment size (None: the server's default)
    retention: str = "limits"         # interest: acknowledged messages are removed; mixed: every
                                      # other stream (CHAOS1, CHAOS3, ...) is an interest stream

    def retention_of(self, i: int) -> str:
        """The retention of stream `CHAOS<i>`."""
        if self.retention == "mixed":
            return "interest" if i % 2 == 1 else "limits"
        return self.retention
    history_file: str | None = None   # write the recorded history here (JSON lines)


class DrainWatch:
    """Decides how long to wait for a durable to drain: `DRAIN_SECONDS` in any case, beyond
    that only while what is left (`num_pending` + `num_ack_pending`) fell to a new low within
    the last `stall` seconds, and never beyond `limit`. A slow consumer still gets to the end;
    a stuck one is reported after `grace` (+ `stall`) seconds as before."""

    def __init__(self, start: float, grace: float = DRAIN_SECONDS, limit: float = DRAIN_MAX_SECONDS,
                 stall: float = DRAIN_STALL_SECONDS):
        self.start, self.grace, self.limit, self.stall = start, grace, limit, stall
        self.low: int | None = None
        self.low_at = start

    def keep_waiting(self, now: float, left: int | None) -> bool:
        """`left`: pending + ack pending now (None: no answer this time)."""
        if left == 0:
            return False
        if left is not None and (self.low is None or left < self.low):
            self.low, self.low_at = left, now
        if now - self.start < self.grace:
            return True
        return now - self.start < self.limit and now - self.low_at < self.stall


class Admin:
    """Short requests through whichever node answers (nodes die, pause and get cut off)."""

    def __init__(self, cluster: ChaosCluster, rng: random.Random):
        self.cluster, self.rng = cluster, rng
        self.nc, self.node = None, None

    async def js(self):
        if self.nc is None or not self.nc.is_connected:
            await _close(self.nc)
            urls = {n.name: n.url for n in self.cluster.nodes if n.alive and not n.paused}
            self.node, self.nc = await connect_any(urls, self.rng)
            if self.nc is None:
                raise ConnectionError("no node accepts connections")
        return self.nc.jetstream(timeout=3)

    async def retry(self, fn, attempts: int = 40, delay: float = 0.5):
        last = None
        for _ in range(attempts):
            try:
                return await fn(await self.js())
            except Exception as e:  # noqa: BLE001 - elections, dead nodes: try again elsewhere
                last = e
                await _close(self.nc)
                self.nc = None
                await asyncio.sleep(delay)
        raise RuntimeError(f"admin request kept failing: {last!r}")

    async def peers(self, stream: str, attempts: int = 6) -> tuple[str | None, list[str]]:
        """(leader, all replicas) of `stream`; leader None when unknown right now."""
        async def q(js):
            si = await js.stream_info(stream)
            c = si.cluster
            return c.leader, sorted({c.leader} | {r.name for r in (c.replicas or [])} - {None})
        try:
            return await self.retry(q, attempts=attempts, delay=0.3)
        except RuntimeError:
            return None, [n.name for n in self.cluster.nodes]

    async def close(self) -> None:
        await _close(self.nc)


async def fire(cluster: ChaosCluster, admin: Admin, f: Fault, streams: list[str], hist: History,
               peer_sets: dict[str, list[str]], kv: bool = False) -> dict:
    """Injects fault `f`; returns what was done (also the quorum-loss streams)."""
    rng = random.Random(f.pick)
    names = [n.name for n in cluster.nodes]
    stream = streams[f.stream]
    leader = None
    if f.kind in ("kill_leader", "pause_leader", "isolate_leader", "wipe", "kill_quorum") + CLOCK_KINDS:
        leader, peers = await admin.peers(stream)
        peer_sets[stream] = peers
    target = leader if (leader and (f.kind.endswith("_leader") or f.kind in CLOCK_KINDS)) else rng.choice(names)
    r: dict = {"kind": f.kind, "meta_before": meta_view(cluster)}
    if f.kind in ("kill", "kill_leader"):
        cluster.kill(target)
        r["nodes"] = [target]
    elif f.kind == "kill_quorum":
        pool = peer_sets.get(stream) or names
        victims = rng.sample(pool, 2)
        for v in victims:
            cluster.kill(v)
        r["nodes"] = victims
        r["quorum_lost"] = [s for s in streams if len(set(victims) & set(peer_sets.get(s, names))) >= 2]
    elif f.kind in ("pause", "pause_leader"):
        cluster.pause(target)
        r["nodes"] = [target]
    elif f.kind == "wipe":
        followers = [p for p in (peer_sets.get(stream) or names) if p != leader] or names
        target = rng.choice(followers)
        # A wipe is a replaced disk. Replacing another while an earlier one's replicas are still
        # being rebuilt leaves a majority of some stream's replicas empty, which no Raft system
        # recovers without an operator: then the node is only killed (its data kept).
        guarded = streams + (["KV_chaoskv"] if kv else [])
        for s in guarded:
            if s != stream:  # its peers were just read
                _, peer_sets[s] = await admin.peers(s)
        behind = copies_behind(cluster, guarded, peer_sets)
        cluster.kill(target)
        r["nodes"] = [target]
        if behind:
            r["wipe_skipped"] = behind
        else:
            r["wipe"] = True
    elif f.kind in ("isolate", "isolate_leader"):
        cluster.partition({(a, b) for a in names for b in names if a != b and target in (a, b)})
        r["nodes"] = [target]
    elif f.kind == "asymmetric":
        cluster.partition({(target, b) for b in names if b != target})
        r["nodes"] = [target]
        r["direction"] = "outbound stalled"
    elif f.kind == "kill_all":
        cluster.kill_all()
        r["nodes"] = names
        r["quorum_lost"] = list(streams)
    elif f.kind in ("power_cut", "power_cut_all"):
        victims = names if f.kind == "power_cut_all" else [target]
        cluster.power_cut(victims)
        r["nodes"] = victims
        if f.kind == "power_cut_all":
            r["quorum_lost"] = list(streams)
    elif f.kind == "corrupt":
        leader, peers = await admin.peers(stream)
        followers = [p for p in (peers or names) if p != leader] or names
        target = rng.choice(followers)
        cluster.kill(target)
        r["nodes"] = [target]
        r["corrupted"] = cluster.corrupt_segment(target, stream, rng)
    elif f.kind in CLOCK_KINDS:
        ms = int(rng.uniform(60, 600) * 1000) * (1 if f.kind == "clock_forward" else -1)
        cluster.set_clock(target, ms)
        r["nodes"] = [target]
        r["clock_offset_ms"] = ms
    elif f.kind == "split":
        minority = rng.sample(names, max(1, len(names) // 2))
        cluster.partition({(a, b) for a in names for b in names
                           if a != b and ((a in minority) != (b in minority))})
        r["nodes"] = minority
    else:
        raise ValueError(f"unknown fault kind {f.kind}")
    r["fired_at"] = round(hist.now(), 2)
    return r


def copies_behind(cluster: ChaosCluster, streams: list[str], peer_sets: dict[str, list[str]] | None = None,
                  slack: int = 200) -> list[str]:
    """The streams whose replicas (`peer_sets`; every node where unknown) include a live one
    that holds no copy, or a copy more than `slack` messages behind the most advanced (each
    node's own /jsz): a replica still being rebuilt. ("current" in stream info is no help here:
    under load a healthy follower is a few entries behind most of the time.) Only replicas
    count: on five nodes an R3 stream has no copy on two of them, and counting those made
    every wipe of a five-node run a plain kill."""
    behind = []
    for stream in streams:
        replicas = set((peer_sets or {}).get(stream) or [])
        lasts: dict[str, int | None] = {}
        for n in cluster.nodes:
            if not n.alive or n.paused or (replicas and n.name not in replicas):
                continue
            try:
                st = cluster.local_stream_state(n, stream)
            except OSError:
                st = None
            lasts[n.name] = st.get("last_seq", 0) if st else None
        if lagging(lasts, slack):
            behind.append(stream)
    return behind


def lagging(lasts: dict[str, int | None], slack: int) -> bool:
    """Whether a copy in `lasts` (a node's last sequence; None: it holds no copy) is missing
    or more than `slack` behind the most advanced one; no copy at all counts as lagging."""
    seqs = [s for s in lasts.values() if s is not None]
    return not lasts or len(seqs) < len(lasts) or max(seqs) - min(seqs) > slack


def meta_view(cluster: ChaosCluster) -> dict:
    """Each live node's idea of the meta leader (diagnosis: which fault broke the meta group)."""
    out = {}
    for n in cluster.nodes:
        if n.alive and not n.paused:
            try:
                out[n.name] = (cluster.jsz(n).get("meta_cluster") or {}).get("leader")
            except OSError:
                out[n.name] = "unreachable"
    return out


def heal(cluster: ChaosCluster, r: dict) -> None:
    if "clock_offset_ms" in r:
        for name in r["nodes"]:
            cluster.set_clock(name, 0)  # put right: a jump back by the same amount
    for name in r.get("nodes", []):
        n = cluster.node(name)
        if r.get("wipe"):
            cluster.restart(name, wipe=True)
        elif not n.alive:
            cluster.restart(name)
    cluster.heal()


async def run(cfg: RunConfig, log=print) -> dict:
    schedule = make_schedule(cfg.seed, cfg.seconds, cfg.kinds, cfg.streams, cfg.hold, cfg.settle)
    log(f"chaos: seed={cfg.seed} server={cfg.kind} nodes={cfg.nodes} seconds={cfg.seconds} faults={len(schedule)}")
    log(f"chaos: schedule={dump(schedule)}")
    streams = [f"CHAOS{i}" for i in range(cfg.streams)]
    cluster = ChaosCluster(cfg.kind, cfg.binary, cfg.nodes,
                           power_cut=any(k in POWER_CUT_KINDS for k in cfg.kinds),
                           segment_bytes=cfg.segment_bytes or (CORRUPT_SEGMENT_BYTES if "corrupt" in cfg.kinds else None),
                           test_clock=any(k in CLOCK_KINDS for k in cfg.kinds))
    hist = History()
    fired: list[dict] = []
    res = Result()
    wl = None
    admin = Admin(cluster, random.Random(cfg.seed))
    t_setup = time.monotonic()
    try:
        await cluster.start()
        for i, s in enumerate(streams):
            await admin.retry(lambda js, s=s, i=i: js.add_stream(StreamConfig(
                name=s, subjects=[f"{s.lower()}.>"], num_replicas=3, duplicate_window=120,
                retention=RetentionPolicy(cfg.retention_of(i)))))
            await admin.retry(lambda js, s=s: js.add_consumer(s, consumer_config(), durable_name=f"C{s}"))
        kv_ok = False
        if cfg.kv:
            try:
                await admin.retry(lambda js: js.create_key_value(bucket="chaoskv", history=64, replicas=3), attempts=10)
                kv_ok = True
            except RuntimeError as e:
                res.numbers["kv_setup_error"] = str(e)[:300]
                log(f"chaos: KV bucket could not be created: {e}")
        peer_sets = {}
        for s in streams:
            peer_sets[s] = (await admin.peers(s))[1]
        res.numbers["setup_seconds"] = round(time.monotonic() - t_setup, 1)
        hist.start = time.monotonic()
        wl = Workload({n.name: n.url for n in cluster.nodes}, streams, cfg.seed, hist,
                      publishers=cfg.publishers, kv_writers=2 if kv_ok else 0)
        wl.start()
        quorum_loss: dict[str, list[tuple[float, float]]] = {s: [] for s in streams}
        for f in schedule:
            await asyncio.sleep(max(0.0, f.at - hist.now()))
            r = await fire(cluster, admin, f, streams, hist, peer_sets, kv_ok)
            f.resolved = r
            log(f"chaos: t={r['fired_at']:7.2f} {f.kind:15s} {r.get('nodes')} for {f.duration}s "
                f"(meta leader before: {r['meta_before']})"
                + (f" corrupted: {r['corrupted']}" if "corrupted" in r else "")
                + (f" clock offset: {r['clock_offset_ms'] / 1000:+.0f} s" if "clock_offset_ms" in r else "")
                + (f" (not wiped, only killed: copies of {r['wipe_skipped']} still behind)" if "wipe_skipped" in r else ""))
            await asyncio.sleep(f.duration)
            healed = hist.now()
            for s in r.get("quorum_lost", []):
                quorum_loss[s].append((r["fired_at"], healed))
            heal(cluster, r)
            r["healed_at"] = round(healed, 2)
            fired.append(r)
        await asyncio.sleep(max(0.0, cfg.seconds - hist.now()))
        end = hist.now()
        await wl.stop_publishing()
        cluster.heal()
        try:
            await after_heal(cluster, admin, wl, streams, hist, res, quorum_loss, kv_ok,
                             {s: cfg.retention_of(i) for i, s in enumerate(streams)})
        except Exception as e:  # noqa: BLE001 - a cluster that does not recover is a finding
            res.add("recovery", f"after healing: {e!r}")
        wl = None
        res.numbers["unavailability"] = unavailability(hist, fired, end)
    finally:
        if wl is not None:
            await wl.join()
        await admin.close()
        logs = {n.name: n.log_tail(1500) for n in cluster.nodes}
        res.numbers["proxy_unknown_dialers"] = sum(p.unknown_dialers for p in cluster.proxies)
        res.numbers["proxy_connections"] = sum(p.accepted for p in cluster.proxies)
        await cluster.close()
        if cfg.history_file:  # also when the run failed: that is when it is needed
            write_history(hist, cfg.history_file)
    return summarize(cfg, schedule, fired, hist, res, logs)


async def after_heal(cluster: ChaosCluster, admin: Admin, wl: Workload, streams: list[str], hist: History,
                     res: Result, quorum_loss: dict, kv_ok: bool, retention: dict[str, str]) -> None:
    """Waits for the healed cluster, drains the durables, reads every replica, checks."""
    try:
        await cluster.wait_meta_leader(90)
        # Drain: the consumers keep fetching until each durable has nothing pending.
        for s in streams:
            watch = DrainWatch(time.monotonic())
            # Progress of the drain (stuck or only slow?): (t, num_pending, num_ack_pending,
            # deliveries so far) at the start and at the last answer.
            progress = []
            while True:
                left = None
                try:
                    ci = await admin.retry(lambda js, s=s: js.consumer_info(s, f"C{s}"), attempts=5)
                    point = (round(hist.now(), 1), ci.num_pending, ci.num_ack_pending,
                             sum(1 for d in hist.deliveries if d.stream == s))
                    progress[1:] = [point] if progress else []
                    if not progress:
                        progress.append(point)
                    left = ci.num_pending + ci.num_ack_pending
                except RuntimeError:
                    pass
                if not watch.keep_waiting(time.monotonic(), left):
                    break
                await asyncio.sleep(1)
            res.numbers.setdefault("drain", {})[s] = progress
    finally:
        await wl.join()
    for s in streams:
        try:
            await admin.js()
            read = await read_all_replicas(cluster, admin.nc, s, 3)
        except Exception as e:  # noqa: BLE001 - a stream that never recovers is a finding
            res.add("recovery", f"{s}: could not be read back after healing: {e!r}")
            continue
        res.numbers["readback_rereads"] = res.numbers.get("readback_rereads", 0) + read.get("rereads", 0)
        if read.get("lagging"):
            res.add("recovery", f"{s}: {read['lagging']} (checked the leader's copy only)")
        check_stream(res, s, hist, read, quorum_loss[s], retention[s])
    if kv_ok:
        try:
            js = await admin.js()
            try:
                await wait_caught_up(js, "KV_chaoskv", 3, 90)
            except TimeoutError as e:
                res.add("recovery", f"KV_chaoskv: {e} (checked the leader's copy only)")
                await leader_only(js, "KV_chaoskv", 30)
            # A leadership move (the hand-back to the preferred replica after a restart) can
            # answer the read's consumer create with 503: retried like the streams' read-back.
            async def read(js):
                si = await js.stream_info("KV_chaoskv")
                return await read_kv(js, si.state.last_seq)
            check_kv(res, hist, await admin.retry(read, attempts=6, delay=1.0))
        except Exception as e:  # noqa: BLE001
            res.add("recovery", f"KV_chaoskv: could not be read back after healing: {e!r}")


async def read_kv(js, last_seq: int) -> list[tuple[int, str, str]]:
    """The KV stream's messages as (seq, key, value), read like the streams (the key is the
    subject's last token)."""
    sub = await js.pull_subscribe("", durable=None, stream="KV_chaoskv", config=ConsumerConfig(
        name="chkkv", ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30))
    out: list[tuple[int, str, str]] = []
    idle = 0
    seen = 0
    deadline = time.monotonic() + READ_SECONDS  # bounded as the streams' read-back
    while seen < last_seq and idle < 5 and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(256, timeout=2)
        except (asyncio.TimeoutError, nats.errors.TimeoutError):
            idle += 1
            continue
        idle = 0 if msgs else idle + 1
        for m in msgs:
            seq = m.metadata.sequence.stream
            seen = max(seen, seq)
            out.append((seq, m.subject.split(".", 2)[-1], m.data.decode(errors="replace")))
    await sub.unsubscribe()
    return out


def summarize(cfg: RunConfig, schedule: list[Fault], fired: list[dict], hist: History, res: Result,
              logs: dict) -> dict:
    n = res.numbers
    unav = n.get("unavailability", [])
    return {
        "server": cfg.kind, "nodes": cfg.nodes, "seed": cfg.seed, "seconds": cfg.seconds,
        "kinds": list(cfg.kinds), "retention": cfg.retention, "ok": res.ok,
        "first_violation": res.violations[0] if res.violations else None,
        "violations": res.violations[:50], "violation_count": len(res.violations),
        "first_by_property": {p: d for p, d in reversed(res.violations)},
        "count_by_property": {p: sum(1 for q, _ in res.violations if q == p) for p in {q for q, _ in res.violations}},
        "faults_injected": len(fired),
        "faults_by_kind": {k: sum(1 for f in fired if f["kind"] == k) for k in sorted({f["kind"] for f in fired})},
        "wipes_only_killed": sum(1 for f in fired if "wipe_skipped" in f),
        # Counted from the history itself, so they are right even when a read-back failed.
        "acked": sum(1 for p in hist.pubs if p.outcome == "ack"),
        "dup_acks": sum(1 for p in hist.pubs if p.outcome == "dup"),
        "failed_attempts": sum(1 for p in hist.pubs if p.outcome in ("error", "timeout")),
        "stored": n.get("stored", 0), "lost": n.get("lost", 0), "misplaced": n.get("misplaced", 0), "duplicates": n.get("duplicates", 0),
        "unacked_but_stored": n.get("unacked_but_stored", 0),
        "drain": n.get("drain", {}),
        "deliveries": len(hist.deliveries), "redeliveries": sum(1 for d in hist.deliveries if d.delivered > 1),
        "redelivered_before_ack_handled_after": n.get("redelivered_before_ack_handled_after", 0),
        "kv_ok": sum(1 for o in hist.kv if o.outcome == "ok"),
        "kv_rejected": sum(1 for o in hist.kv if o.outcome == "rejected"),
        "kv_indeterminate": sum(1 for o in hist.kv if o.outcome == "indeterminate"),
        "kv_setup_error": n.get("kv_setup_error"),
        "unverified_replicas": n.get("unverified_replicas", []),
        "readback_rereads": n.get("readback_rereads", 0),
        "consumer_saw_other": n.get("consumer_saw_other", 0),
        "proxy_connections": n.get("proxy_connections"), "proxy_unknown_dialers": n.get("proxy_unknown_dialers"),
        "worst_unavailability_s": max(unav) if unav else None,
        "unavailability_by_fault": [{"kind": f["kind"], "nodes": f.get("nodes"), "at": f["fired_at"], "gap_s": g}
                                    for f, g in zip(fired, unav)],
        "client_errors": hist.errors,
        "schedule": [f.to_json() for f in schedule],
        "node_log_tails": logs if not res.ok else {},
    }


def describe(report: dict) -> str:
    retention = f" retention={report['retention']}" if report.get("retention", "limits") != "limits" else ""
    lines = [f"chaos {report['server']} x{report['nodes']} seed={report['seed']} {report['seconds']}s{retention}: "
             f"{'OK' if report['ok'] else 'FAILED'}",
             f"  faults={report['faults_injected']} {report['faults_by_kind']}"
             + (f" (wipes only killed, copies still behind: {report['wipes_only_killed']})"
                if report.get("wipes_only_killed") else ""),
             f"  acked={report['acked']} dup_acks={report['dup_acks']} failed_attempts={report['failed_attempts']} "
             f"stored={report['stored']} lost={report['lost']} misplaced={report.get('misplaced', 0)} "
             f"duplicates={report['duplicates']} "
             f"unacked_but_stored={report['unacked_but_stored']}",
             f"  deliveries={report['deliveries']} redeliveries={report['redeliveries']} "
             f"kv ok/rejected/indeterminate={report['kv_ok']}/{report['kv_rejected']}/{report['kv_indeterminate']} "
             f"(redeliveries that arrived before an ack was confirmed, handled after: "
             f"{report.get('redelivered_before_ack_handled_after', 0)})",
             f"  worst unavailability={report['worst_unavailability_s']}s unverified={report['unverified_replicas']} "
             f"read-back reads repeated (leader moved mid-read)={report.get('readback_rereads', 0)} "
             f"route connections via proxy={report['proxy_connections']} (unidentified {report['proxy_unknown_dialers']})"]
    if not report["ok"]:
        lines.append(f"  drain (t, num_pending, num_ack_pending, deliveries) first/last: {report.get('drain')}")
        lines.append(f"  FIRST VIOLATION: {report['first_violation']}")
        lines.append(f"  violations by property: {report['count_by_property']}"
                     + (f" (replicas-agree: {report['consumer_saw_other']} of them consumer deliveries of another"
                        f" message than the stream holds at that sequence)" if report.get("consumer_saw_other") else ""))
        lines.append(f"  replay: --seed {report['seed']} --nodes {report['nodes']} --seconds {report['seconds']} "
                     f"--kinds {','.join(report['kinds'])}")
        lines.append(f"  schedule: {json.dumps(report['schedule'])}")
    return "\n".join(lines)
