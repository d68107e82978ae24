/// Interest and work-queue retention: which node judges it, and the removals it makes.
extension Stream {
    /// True when some consumer would deliver `subject` (interest/workqueue retention).
    func hasInterest(in subject: String) -> Bool {
        consumers.values.contains { $0.matches(subject) }
    }

    /// Removes `seq` from an interest or workqueue stream once every interested consumer acked it.
    func checkAckedEverywhere(_ seq: UInt64) {
        guard config.retention != .limits, decidesRetention, let m = store.load(seq) else { return }
        for c in consumers.values where c.matches(m.subject) {
            if !c.hasAcked(seq) { return }
        }
        removeForRetention(seq)
    }

    /// Whether this node judges interest and acks for retention: on one node always; in a
    /// cluster only the stream's leader, which runs the consumers. A follower has none, so
    /// by its own judgement nobody is interested in anything; it removes what the leader's
    /// `StreamEntry.retentionRemoved` entries name.
    var decidesRetention: Bool { actsForStream }

    /// Whether this node acts for the stream beyond storing (judges retention, republishes):
    /// on one node always; in a cluster only the stream's leader.
    var actsForStream: Bool {
        guard let cluster = service.cluster else { return true }
        return cluster.replicas[name]?.isLeader ?? true
    }

    /// Removes `seq` because no consumer needs it. A clustered leader proposes the removal
    /// (`retentionRemoved`, at the end of the queue's round) and removes it when the entry
    /// applies, as every replica does: the `Nats-Expected-*` checks and discard-new limits,
    /// which run at apply on every replica, then see the same messages.
    func removeForRetention(_ seq: UInt64) {
        guard service.cluster?.replicas[name] != nil else {
            if (try? remove(seq)) == true { dirty = true }
            return
        }
        if retentionRemoved.insert(seq).inserted {
            service.retentionRemovedPending.insert(self)
            service.scheduleFlush()
        }
    }

    /// After a consumer went away: drop what no remaining consumer still needs.
    func sweepInterest() {
        guard config.retention != .limits, decidesRetention else { return }
        var s = store.state.firstSeq
        var bound = 0
        while let m = store.next(from: s, filters: []), bound < 10_000_000 {
            checkAckedEverywhere(m.seq)
            s = m.seq + 1
            bound += 1
        }
    }

    func consumersPurged() {
        for c in consumers.values { c.streamPurged() }
    }
}
