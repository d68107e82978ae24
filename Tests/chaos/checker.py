"""The checker: pure functions from the recorded history and the read-back copies to a list of
violations (first one = the first violated property) and the measured numbers. No I/O.

Properties, in the order they are reported:
  replicas-agree        every replica that could be read holds the same (seq, id) list, and
                        every replica's own /jsz state (messages, first/last seq) matches it;
                        a consumer delivery of another message at a sequence than the stream
                        holds counts here too (a replica held it then), numbered apart as
                        `consumer_saw_other`
  acked-present         every acknowledged publish is in the stream at the sequence its
                        PubAck named (a duplicate PubAck must name the original sequence);
                        counted as `lost` when no replica holds it, else `misplaced`
  no-duplicates         no message id appears twice (Nats-Msg-Id deduplication held)
  no-phantoms           every message read back was published by the workload
  no-holes              sequences are contiguous (the workload deletes nothing)
  quorum-loss-no-ack    no publish sent while a stream had lost its quorum was acknowledged
  consumer-at-least-once   the durable delivered every message of the stream
  consumer-acked-not-redelivered  a message whose ack the server confirmed does not reach the
                        client again (judged by arrival time, not when the worker got to it)
  kv-cas-linearizable   KV updates form one chain per key: each successful compare-and-set
                        follows exactly the revision it was conditioned on; no lost updates

With interest retention (`--retention interest`: the stream's one durable is its only
interest, so an acknowledged message is removed) `acked-present` and `no-holes` give way to:
  acked-delivered       every acknowledged publish reached the durable (by the end of the
                        drain): removed only once consumed, never lost with a leader
  acked-removed         no replica still holds a message whose ack the server confirmed
and each replica's own state is compared by message count only (removals leave holes).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from workload import Delivery, History


@dataclass
class Result:
    violations: list[tuple[str, str]] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    def add(self, prop: str, detail: str) -> None:
        self.violations.append((prop, detail))

    @property
    def ok(self) -> bool:
        return not self.violations


def check_stream(res: Result, stream: str, hist: History, read: dict,
                 quorum_loss: list[tuple[float, float]], retention: str = "limits") -> None:
    """`read` is readback.read_all_replicas' answer for `stream`; `quorum_loss` the windows
    (start, end) in history time during which two of its three replicas were dead;
    `retention` the stream's (limits or interest)."""
    removes = retention != "limits"
    copies: dict[str, list[tuple[int, str]]] = read["copies"]
    if not copies:
        res.add("replicas-agree", f"{stream}: no replica could be read")
        return
    names = sorted(copies)
    ref_name = names[0]
    ref = copies[ref_name]
    for n in names[1:]:
        if copies[n] != ref:
            diff = next((i for i, (a, b) in enumerate(zip(copies[n], ref)) if a != b), min(len(ref), len(copies[n])))
            res.add("replicas-agree", f"{stream}: {n} differs from {ref_name} at position {diff}: "
                    f"{copies[n][diff:diff + 3]} vs {ref[diff:diff + 3]} (lengths {len(copies[n])} / {len(ref)})")
    want = {"messages": len(ref), "first_seq": ref[0][0] if ref else None, "last_seq": ref[-1][0] if ref else None}
    for n, st in sorted(read["local"].items()):
        if not st or "error" in st:
            res.add("replicas-agree", f"{stream}: {n} has no local copy: {st}")
            continue
        got = {"messages": st.get("messages"), "first_seq": st.get("first_seq") if ref else None,
               "last_seq": st.get("last_seq") if ref else None}
        if removes:
            got, want = {"messages": got["messages"]}, {"messages": want["messages"]}
        if got != want:
            res.add("replicas-agree", f"{stream}: {n}'s own state {got} != read copy {want}")
    if read["unverified"]:
        res.numbers.setdefault("unverified_replicas", []).extend(f"{stream}/{n}" for n in read["unverified"])

    at_seq = {seq: mid for seq, mid in ref}
    pubs = [p for p in hist.pubs if p.stream == stream]
    attempted = {p.id for p in pubs}
    seqs_of: dict[str, list[int]] = defaultdict(list)
    for seq, mid in ref:
        seqs_of[mid].append(seq)
    # An acked id at another sequence than its PubAck's is misplaced, not lost: lost means no
    # replica that was read holds it at all.
    held = {mid for copy in copies.values() for _, mid in copy}
    dels = [d for d in hist.deliveries if d.stream == stream]
    delivered_ids = {d.id for d in dels}
    if removes:
        for p in pubs:
            if p.outcome in ("ack", "dup") and p.id not in delivered_ids and at_seq.get(p.seq) != p.id:
                res.add("acked-delivered", f"{stream}: {p.id} acked at seq {p.seq} ({p.outcome} via {p.node} "
                        f"t={p.t1:.2f}) was never delivered and seq {p.seq} holds {at_seq.get(p.seq)!r}")
        confirmed = {d.seq for d in dels if d.acked}
        for n in names:
            kept = [(seq, mid) for seq, mid in copies[n] if seq in confirmed]
            if kept:
                res.add("acked-removed", f"{stream}: {n} still holds {len(kept)} messages whose ack was "
                        f"confirmed, first {kept[:3]}")
    for p in pubs if not removes else []:
        if p.outcome in ("ack", "dup") and at_seq.get(p.seq) != p.id:
            where = f"stored at {seqs_of[p.id]}" if p.id in seqs_of else (
                "held by another replica only" if p.id in held else "on no replica")
            res.add("acked-present", f"{stream}: {p.id} acked at seq {p.seq} ({p.outcome} via {p.node} "
                    f"t={p.t1:.2f}) but seq {p.seq} holds {at_seq.get(p.seq)!r} ({where})")
    counts = Counter(mid for _, mid in ref)
    for mid, c in counts.items():
        if c > 1:
            res.add("no-duplicates", f"{stream}: {mid} stored {c} times at "
                    f"{[s for s, m in ref if m == mid]}")
    for seq, mid in ref:
        if mid not in attempted:
            res.add("no-phantoms", f"{stream}: seq {seq} holds {mid!r}, never published")
    seqs = [s for s, _ in ref]
    if not removes and seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
        res.add("no-holes", f"{stream}: sequence gaps {gaps[:5]}")
    for (a, b) in quorum_loss:
        for p in pubs:
            if p.outcome in ("ack", "dup") and p.t0 > a and p.t1 < b and p.outcome == "ack":
                res.add("quorum-loss-no-ack", f"{stream}: {p.id} acked seq {p.seq} at t={p.t1:.2f} while "
                        f"quorum was lost ({a:.2f}..{b:.2f})")

    seen = {d.seq for d in dels}
    missing = [s for s in seqs if s not in seen]
    if missing:
        res.add("consumer-at-least-once", f"{stream}: {len(missing)} stored messages not delivered by the end "
                f"of the drain window, "
                f"first {missing[:5]}")
    # The earliest confirmed ack of each seq; a delivery that *reached the client* after it is a
    # violation (one that arrived before, e.g. a redelivery sent while the ack was on its way,
    # is legitimate even when the worker got to it later).
    first_ack: dict[int, Delivery] = {}
    for d in dels:
        if d.acked and (d.seq not in first_ack or d.t_ack < first_ack[d.seq].t_ack):
            first_ack[d.seq] = d
    for d in sorted(dels, key=lambda d: d.t):
        a = first_ack.get(d.seq)
        arrived = d.t_recv or d.t
        if a is not None and d is not a and arrived <= a.t_ack < d.t:
            # What the checker once flagged (finding 9): arrived before, handled after.
            res.numbers["redelivered_before_ack_handled_after"] = \
                res.numbers.get("redelivered_before_ack_handled_after", 0) + 1
        if a is not None and d is not a and arrived > a.t_ack:
            # Consumer seq and node of both deliveries tell which server state each came from.
            res.add("consumer-acked-not-redelivered", f"{stream}: seq {d.seq} ({d.id}) delivered again "
                    f"(count {d.delivered}, cseq {d.cseq}, via {d.via}) arriving at t={arrived:.2f} after its "
                    f"ack was confirmed at t={a.t_ack:.2f} (cseq {a.cseq}, via {a.via}, arrived "
                    f"t={a.t_recv or a.t:.2f})")
    for d in dels:
        if at_seq.get(d.seq, d.id) != d.id:
            res.add("replicas-agree", f"{stream}: consumer got {d.id} as seq {d.seq}, stream holds {at_seq.get(d.seq)}")
            # Counted apart: after a lost write (`sync_interval` and a power loss) there can be
            # thousands of these, and the report keeps only the first 50 findings.
            res.numbers["consumer_saw_other"] = res.numbers.get("consumer_saw_other", 0) + 1

    n = res.numbers
    n["acked"] = n.get("acked", 0) + sum(1 for p in pubs if p.outcome == "ack")
    n["dup_acks"] = n.get("dup_acks", 0) + sum(1 for p in pubs if p.outcome == "dup")
    n["failed_attempts"] = n.get("failed_attempts", 0) + sum(1 for p in pubs if p.outcome in ("error", "timeout"))
    n["stored"] = n.get("stored", 0) + len(ref)
    acked_ids = {p.id for p in pubs if p.outcome in ("ack", "dup")}
    wrong = {p.id for p in pubs if p.outcome in ("ack", "dup") and at_seq.get(p.seq) != p.id}
    if removes:  # consumed and removed is not lost
        wrong -= delivered_ids
    n["lost"] = n.get("lost", 0) + sum(1 for mid in wrong if mid not in held)
    n["misplaced"] = n.get("misplaced", 0) + sum(1 for mid in wrong if mid in held)
    n["duplicates"] = n.get("duplicates", 0) + sum(c - 1 for c in counts.values() if c > 1)
    n["unacked_but_stored"] = n.get("unacked_but_stored", 0) + sum(1 for m in counts if m not in acked_ids)
    n["deliveries"] = n.get("deliveries", 0) + len(dels)
    n["redeliveries"] = n.get("redeliveries", 0) + sum(1 for d in dels if d.delivered > 1)


def check_kv(res: Result, hist: History, entries: list[tuple[int, str, str]]) -> None:
    """`entries` = the KV stream's messages (seq, key, value) still stored (history-limited)."""
    ops_by_value = {op.value: op for op in hist.kv}
    by_key: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for seq, key, value in entries:
        # Values are unique per run, so the op names the key even if a delivery's subject is off.
        op = ops_by_value.get(value)
        by_key[op.key if op else key].append((seq, value))
    for key, chain in by_key.items():
        chain.sort()
        for i, (seq, value) in enumerate(chain):
            op = ops_by_value.get(value)
            if op is None:
                res.add("kv-cas-linearizable", f"{key}: revision {seq} holds {value!r}, never written")
                continue
            if op.outcome == "rejected":
                res.add("kv-cas-linearizable", f"{key}: rejected update {value!r} is stored at {seq}")
            if op.outcome == "ok" and op.revision != seq:
                res.add("kv-cas-linearizable", f"{key}: {value!r} acked as revision {op.revision}, stored at {seq}")
            if i > 0 and op.expected != chain[i - 1][0]:
                res.add("kv-cas-linearizable", f"{key}: {value!r} at {seq} was conditioned on revision "
                        f"{op.expected} but follows {chain[i - 1][0]} (lost update)")
        oldest = chain[0][0] if chain else 0
        stored = {seq for seq, _ in chain}
        for op in hist.kv:
            if op.key == key and op.outcome == "ok" and op.revision >= oldest and op.revision not in stored:
                res.add("kv-cas-linearizable", f"{key}: acked update {op.value!r} (revision {op.revision}) missing")
    res.numbers["kv_ok"] = sum(1 for o in hist.kv if o.outcome == "ok")
    res.numbers["kv_rejected"] = sum(1 for o in hist.kv if o.outcome == "rejected")
    res.numbers["kv_indeterminate"] = sum(1 for o in hist.kv if o.outcome == "indeterminate")


def unavailability(hist: History, faults: list[dict], end: float) -> list[float]:
    """Per fault: the longest stretch without any successful publish, from the fault's start
    to the next fault's start (or `end`)."""
    acks = sorted(p.t1 for p in hist.pubs if p.outcome in ("ack", "dup"))
    out = []
    for i, f in enumerate(faults):
        a = f["fired_at"]
        b = faults[i + 1]["fired_at"] if i + 1 < len(faults) else end
        pts = [a] + [t for t in acks if a <= t <= b] + [b]
        out.append(round(max(y - x for x, y in zip(pts, pts[1:])), 2))
    return out
