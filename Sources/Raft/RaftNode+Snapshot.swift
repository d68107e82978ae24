/// Snapshots (§7): a follower too far behind gets the application state instead of entries.
extension RaftNode {
    /// Sends the latest snapshot to `peer`; returns true if sent.
    func sendSnapshot(to peer: NodeID) -> Bool {
        guard let pr = tracker.progress[peer], pr.recentActive else { return false }
        let snapshot = log.pendingSnapshot ?? log.storage.snapshot()
        guard !snapshot.isEmpty else { return false }
        tracker.progress[peer]?.becomeSnapshot(snapshot.metadata.index, tick: tickCount)
        send(to: peer, .installSnapshot(snapshot))
        return true
    }

    /// The transport could not deliver a snapshot (or did): resume probing either way.
    public func reportSnapshot(to peer: NodeID, success: Bool) {
        guard role == .leader, tracker.progress[peer]?.state == .snapshot else { return }
        if !success { tracker.progress[peer]?.pendingSnapshot = .zero }
        tracker.progress[peer]?.becomeProbe()
        tracker.progress[peer]?.probeSent = true // wait for the follower's next heartbeat response
    }

    /// The transport lost contact with `peer`: stop pipelining to it.
    public func reportUnreachable(_ peer: NodeID) {
        guard role == .leader, tracker.progress[peer]?.state == .replicate else { return }
        tracker.progress[peer]?.becomeProbe()
    }

    /// Snapshots are fire-and-forget messages; one that got no answer for an election timeout
    /// is assumed lost and the follower is probed again (which resends it if still needed).
    func retryStalledSnapshots() {
        for peer in conf.allMembers where peer != id {
            guard let pr = tracker.progress[peer], pr.state == .snapshot,
                  tickCount &- pr.snapshotSentAtTick >= UInt64(config.electionTimeoutTicks) else { continue }
            tracker.progress[peer]?.pendingSnapshot = .zero
            tracker.progress[peer]?.becomeProbe()
        }
    }

    func handleInstallSnapshot(_ m: Message, _ s: Snapshot) {
        guard !s.isEmpty, s.metadata.term <= m.term, !s.metadata.conf.voters.isEmpty else { return }
        if role != .follower { becomeFollower(term: term, leader: m.from) }
        electionElapsed = 0
        leader = m.from
        if config.applicationInstallsSnapshots, s.metadata.index > log.committed,
           !log.matchTerm(s.metadata.index, s.metadata.term) {
            // No answer: the leader keeps this follower in snapshot state (and re-offers after an
            // election timeout) until the application installed the state and restarted us.
            snapshotOffer = s.metadata
            return
        }
        if restore(s) {
            send(to: m.from, .appendResponse(AppendResponse(index: log.lastIndex, reject: false)))
        } else {
            send(to: m.from, .appendResponse(AppendResponse(index: log.committed, reject: false)))
        }
    }

    /// The latest snapshot a leader offered that this follower needs (only with
    /// `applicationInstallsSnapshots`); cleared by reading it.
    public func takeSnapshotOffer() -> SnapshotMetadata? {
        defer { snapshotOffer = nil }
        return snapshotOffer
    }

    /// Installs a leader's snapshot unless our log already covers it. Returns true if installed.
    private func restore(_ s: Snapshot) -> Bool {
        let meta = s.metadata
        guard meta.index > log.committed else { return false }
        if log.matchTerm(meta.index, meta.term) {
            // We have the entries: just fast-forward the commit index.
            log.commitTo(meta.index)
            return false
        }
        let before = conf
        log.restore(s)
        confBase = (meta.index, meta.conf)
        confLog = []
        if conf != before { applyConf() }
        return true
    }
}
