"""The checker must catch what it claims to catch: each test feeds it a history with one
planted fault (lost ack, duplicate, phantom, divergent replica, lost KV update, ...)."""
from __future__ import annotations

from checker import Result, check_kv, check_stream, unavailability
from runner import lagging
from workload import Delivery, History, KVOp, PubOp


def history(n: int = 5) -> History:
    h = History()
    for i in range(n):
        h.pubs.append(PubOp(f"p0-{i}", "S", "n1", i, i + 0.1, "ack", i + 1))
        h.deliveries.append(Delivery("S", "CS", f"p0-{i}", i + 1, 1, i + 0.5, True, i + 0.6))
    return h


def read(copy, nodes=("n1", "n2", "n3")):
    return {"copies": {n: list(copy) for n in nodes}, "unverified": [],
            "local": {n: {"messages": len(copy), "first_seq": copy[0][0], "last_seq": copy[-1][0]} for n in nodes}}


GOOD = [(i + 1, f"p0-{i}") for i in range(5)]


def props(res: Result) -> set[str]:
    return {p for p, _ in res.violations}


def test_clean_history_passes():
    res = Result()
    check_stream(res, "S", history(), read(GOOD), [])
    assert res.ok, res.violations
    assert res.numbers["acked"] == 5 and res.numbers["lost"] == 0


def test_lost_acked_message():
    res = Result()
    check_stream(res, "S", history(), read(GOOD[:3] + [(4, "p0-4")]), [])
    assert "acked-present" in props(res)
    # p0-3 is gone; p0-4 is there, one sequence early.
    assert res.numbers["lost"] == 1 and res.numbers["misplaced"] == 1


def test_acked_messages_at_shifted_sequences_are_misplaced_not_lost():
    # Every replica holds every id, but from seq 3 on one place earlier than the PubAcks said
    # (an extra message on the node that answered them): acked-present, 0 lost.
    h = history()
    for p in h.pubs[2:]:
        p.seq += 1
    res = Result()
    check_stream(res, "S", h, read(GOOD), [])
    details = [d for p, d in res.violations if p == "acked-present"]
    assert len(details) == 3 and all("stored at" in d for d in details), details
    assert res.numbers["lost"] == 0 and res.numbers["misplaced"] == 3


def test_acked_message_only_on_another_replica_is_not_lost():
    copy_b = GOOD
    copy_a = GOOD[:4]
    r = read(copy_a)
    r["copies"]["n3"] = list(copy_b)
    res = Result()
    check_stream(res, "S", history(), r, [])
    assert "replicas-agree" in props(res)
    assert res.numbers["lost"] == 0 and res.numbers["misplaced"] == 1
    assert any("held by another replica only" in d for p, d in res.violations if p == "acked-present")


def test_duplicate_and_phantom():
    res = Result()
    copy = GOOD + [(6, "p0-1"), (7, "zz")]
    check_stream(res, "S", history(), read(copy), [])
    assert {"no-duplicates", "no-phantoms"} <= props(res)


def test_divergent_replica_and_local_state():
    res = Result()
    r = read(GOOD)
    r["copies"]["n2"] = GOOD[:4] + [(5, "p0-x")]
    r["local"]["n3"] = {"messages": 4, "first_seq": 1, "last_seq": 4}
    check_stream(res, "S", history(), r, [])
    assert "replicas-agree" in props(res)
    assert sum(1 for p, _ in res.violations if p == "replicas-agree") == 2


def test_consumer_got_another_message_than_the_stream_holds():
    # A replica once held p0-x at seq 5 and delivered it; every replica now holds p0-4 there.
    h = history()
    h.deliveries[4] = Delivery("S", "CS", "p0-x", 5, 1, 4.5, True, 4.6)
    res = Result()
    check_stream(res, "S", h, read(GOOD), [])
    assert [d for p, d in res.violations if p == "replicas-agree"] == ["S: consumer got p0-x as seq 5, stream holds p0-4"]
    assert res.numbers["consumer_saw_other"] == 1


def test_holes():
    res = Result()
    h = history(4)
    check_stream(res, "S", h, read([(1, "p0-0"), (2, "p0-1"), (4, "p0-2")]), [])
    assert "no-holes" in props(res)


def test_ack_during_quorum_loss():
    res = Result()
    check_stream(res, "S", history(), read(GOOD), [(1.5, 3.5)])
    assert "quorum-loss-no-ack" in props(res)


def test_consumer_properties():
    h = history()
    h.deliveries = [d for d in h.deliveries if d.seq != 3]
    h.deliveries.append(Delivery("S", "CS", "p0-0", 1, 2, 9.0, False))
    res = Result()
    check_stream(res, "S", h, read(GOOD), [])
    assert {"consumer-at-least-once", "consumer-acked-not-redelivered"} <= props(res)


def test_kv_lost_update_and_missing_ack():
    h = History()
    h.kv = [KVOp("k0", "a", 0, 0, 1, "ok", 1), KVOp("k0", "b", 1, 1, 2, "ok", 2),
            KVOp("k0", "c", 1, 1, 2, "ok", 3), KVOp("k0", "d", 3, 3, 4, "ok", 4)]
    res = Result()
    check_kv(res, h, [(1, "k0", "a"), (2, "k0", "b"), (3, "k0", "c")])
    details = " ".join(d for _, d in res.violations)
    assert "lost update" in details and "'d'" in details


def test_kv_clean_chain():
    h = History()
    h.kv = [KVOp("k0", "a", 0, 0, 1, "ok", 1), KVOp("k0", "b", 1, 1, 2, "rejected"),
            KVOp("k0", "c", 1, 1, 2, "ok", 2)]
    res = Result()
    check_kv(res, h, [(1, "k0", "a"), (2, "k0", "c")])
    assert res.ok, res.violations


def test_unavailability_windows():
    h = History()
    h.pubs = [PubOp(f"x{i}", "S", "n1", t, t, "ack", i) for i, t in enumerate([1, 2, 9, 10, 11])]
    assert unavailability(h, [{"fired_at": 2.5}, {"fired_at": 10.5}], 12) == [6.5, 1.0]


def test_redelivery_that_arrived_before_the_ack_was_confirmed_is_legitimate():
    # Finding 9's pattern: the server redelivered seq 1 (count 2) while the worker was still
    # acking the first copy; the worker got to the copy after the ack was confirmed.
    h = history()
    h.deliveries.append(Delivery("S", "CS", "p0-0", 1, 2, 9.0, False, cseq=7, t_recv=0.55))
    res = Result()
    check_stream(res, "S", h, read(GOOD), [])
    assert res.ok, res.violations
    # The same copy arriving after the confirmation is a violation.
    h.deliveries[-1].t_recv = 0.7
    res = Result()
    check_stream(res, "S", h, read(GOOD), [])
    assert "consumer-acked-not-redelivered" in props(res)


def test_history_file_round_trip(tmp_path):
    from workload import read_history, write_history
    h = history()
    h.pubs.append(PubOp("p0-9", "S", "n2", 9.0, 9.5, "timeout", None, "TimeoutError: x"))
    h.kv.append(KVOp("k0", "w0-0", 0, 1.0, 1.1, "ok", 1))
    path = str(tmp_path / "h.jsonl")
    write_history(h, path)
    back = read_history(path)
    assert back.pubs == h.pubs and back.deliveries == h.deliveries and back.kv == h.kv
    # The checker gives the same answer on the history read back.
    a, b = Result(), Result()
    check_stream(a, "S", h, read(GOOD), [])
    check_stream(b, "S", back, read(GOOD), [])
    assert a.violations == b.violations and a.numbers == b.numbers


def read_interest(copies: dict[str, list]) -> dict:
    """A read-back of an interest stream: removals leave holes, a drained stream is empty."""
    return {"copies": copies, "unverified": [],
            "local": {n: {"messages": len(c), "first_seq": 0, "last_seq": 5} for n, c in copies.items()}}


def test_interest_drained_and_empty_passes():
    res = Result()
    check_stream(res, "S", history(), read_interest({n: [] for n in ("n1", "n2", "n3")}), [], "interest")
    assert res.ok, res.violations
    assert res.numbers["lost"] == 0


def test_interest_acked_publish_never_delivered_is_lost():
    h = history()
    h.deliveries = [d for d in h.deliveries if d.id != "p0-2"]
    res = Result()
    check_stream(res, "S", h, read_interest({n: [] for n in ("n1", "n2", "n3")}), [], "interest")
    assert props(res) == {"acked-delivered"}, res.violations
    assert res.numbers["lost"] == 1


def test_interest_replica_keeping_a_confirmed_ack_is_caught():
    res = Result()
    copies = {"n1": [], "n2": [], "n3": [(3, "p0-2")]}
    check_stream(res, "S", history(), read_interest(copies), [], "interest")
    assert "acked-removed" in props(res), res.violations


def test_interest_stored_but_undelivered_is_at_least_once_not_lost():
    h = history()
    h.deliveries = [d for d in h.deliveries if d.id != "p0-4"]
    res = Result()
    check_stream(res, "S", h, read_interest({n: [(5, "p0-4")] for n in ("n1", "n2", "n3")}), [], "interest")
    assert props(res) == {"consumer-at-least-once"}, res.violations
    assert res.numbers["lost"] == 0


def test_lagging_counts_missing_and_far_behind_copies_only():
    # Only the replicas are passed in (runner.copies_behind filters by the peer set).
    assert not lagging({"n1": 900, "n2": 880, "n3": 750}, slack=200)
    assert lagging({"n1": 900, "n2": 880, "n3": 650}, slack=200)
    assert lagging({"n1": 900, "n2": None}, slack=200), "a replica without a copy is being rebuilt"
    assert lagging({}, slack=200), "nothing known: do not wipe"
