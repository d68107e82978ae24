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
        if tracker.progress[id] != nil { _ = tracker.progress[id]?.maybeUpdate(log.durable) }
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
