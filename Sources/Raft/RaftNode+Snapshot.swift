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
        if role != .follower { becomeFollower(term: term, leader: m.from) }
        electionElapsed = 0
        leader = m.from
        if restore(s) {
            send(to: m.from, .appendResponse(AppendResponse(index: log.lastIndex, reject: false)))
        } else {
            send(to: m.from, .appendResponse(AppendResponse(index: log.committed, reject: false)))
        }
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

/// Membership changes, one server at a time (see `ConfChangeKind`).
extension RaftNode {
    /// Proposes a membership change; returns the index of its entry. Refused while a previous
    /// change is uncommitted, or before this leader committed an entry of its own term.
    @discardableResult
    public func proposeConfChange(_ change: ConfChange) throws -> LogIndex {
        wake()
        guard role == .leader else { throw RaftError.notLeader(leader: leader) }
        guard leadTransferee == nil else { throw RaftError.transferInProgress }
        guard pendingConfIndex <= log.committed else { throw RaftError.confChangeInProgress }
        guard let result = change.applied(to: conf), !result.voters.isEmpty else { throw RaftError.invalidConfChange }
        let record = ConfChangeRecord(change: change, result: result)
        let index = try proposeEntries([Entry(term: term, index: .zero, type: .confChange, data: record.encoded())])
        pendingConfIndex = index
        return index
    }

    /// Makes the tracker follow the active configuration.
    func applyConf() {
        let c = conf
        tracker.setConf(c, lastIndex: log.lastIndex, maxInflight: config.maxInflightMsgs,
                        maxInflightBytes: config.maxInflightBytes)
        if let t = leadTransferee, !c.isVoter(t) { leadTransferee = nil }
        guard role == .leader else { return }
        if tracker.progress[id] != nil { _ = tracker.progress[id]?.maybeUpdate(log.lastIndex) }
        // New members start in probe state; a smaller quorum may commit more right away.
        for peer in c.allMembers where peer != id && tracker.progress[peer]?.match == .zero {
            tracker.progress[peer]?.recentActive = true
        }
        if maybeCommit() { broadcastAppend() }
    }

    /// Rebuilds the configuration history from the log after a restart.
    func rebuildConfLog() {
        confLog = []
        var from = log.firstIndex
        let end = log.lastIndex.next
        var batches = 0
        while from < end, batches < 1_000_000 {
            guard let chunk = log.entries(from: from, to: end, maxBytes: 4 << 20), let last = chunk.last else { break }
            for e in chunk where e.type == .confChange { confLog.append((e.index, Self.decodeConf(e))) }
            from = last.index.next
            batches += 1
        }
        applyConf()
    }

    /// Drops configuration history that a compaction made unreachable (keeps the latest of it).
    func pruneConfLog() {
        let floor = log.firstIndex.prev
        while let first = confLog.first, first.index <= floor {
            confBase = (first.index, first.conf)
            confLog.removeFirst()
        }
    }
}
