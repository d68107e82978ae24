import Foundation

/// max_age and per-message TTL expiry of a clustered stream, decided by its leader and applied
/// by every replica at the same point of the log. The `Nats-Expected-*` checks and the
/// discard-new limits run at apply on every replica against its store: if each replica expired
/// by its own clock and tick, a publish checked between two replicas' expiries (a few ms of
/// tick phase, or any clock skew) was stored by one and refused by another, and their
/// sequences diverged from there.
extension StreamReplica {
    /// The leader's housekeeping tick: proposes one `expire` op with its clock's `now` when
    /// messages are due, at most one in flight (and none for a second after one that removed
    /// nothing, so a cutoff that cannot make progress does not become ten entries a second).
    func proposeExpiryIfDue(now: Int64) {
        guard isLeader, stream.expiryDue(now: now) else { return }
        let mono = DispatchTime.now().uptimeNanoseconds
        if let hold = expiryHold, mono < hold { return }
        expiryHold = mono + 5_000_000_000 // in flight; cleared when it applies, or retried after 5 s
        try? proposeOp(["op": "expire", "now": now], answer: nil)
    }

    /// An `expire` op: every replica removes what is aged or past its TTL at the leader's
    /// `now` (message timestamps and TTL deadlines come from the log, so all remove the same).
    func applyExpiry(now: Int64) {
        let aged = stream.expireAged(now: now)
        let removed = stream.expireTTL(now: now) || aged
        if removed { stream.consumersPurged() }
        expiryHold = removed ? nil : DispatchTime.now().uptimeNanoseconds + 1_000_000_000
    }
}
