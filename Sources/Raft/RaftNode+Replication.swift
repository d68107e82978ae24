/// Log replication (§5.3), the commit rule (§5.4.2) and flow control.
extension RaftNode {
    /// Appends a client command; returns its log index. Only the leader accepts proposals.
    @discardableResult
    public func propose(_ data: [UInt8]) throws -> LogIndex {
        try proposeEntries([Entry(term: term, index: .zero, type: .normal, data: data)])
    }

    /// Appends several commands as one batch; returns the index of the last one.
    @discardableResult
    public func proposeBatch(_ batch: [[UInt8]]) throws -> LogIndex {
        try proposeEntries(batch.map { Entry(term: term, index: .zero, type: .normal, data: $0) })
    }

    func proposeEntries(_ entries: [Entry]) throws -> LogIndex {
        wake()
        guard role == .leader else { throw RaftError.notLeader(leader: leader) }
        guard leadTransferee == nil else { throw RaftError.transferInProgress }
        guard conf.contains(id) else { throw RaftError.notMember }
        guard log.lastIndex - log.committed < config.maxUncommittedEntries else { throw RaftError.busy }
        appendAsLeader(entries)
        // Sent when the driver takes the next Ready, so every proposal made until then travels
        // in one AppendEntries per follower instead of one message each.
        broadcastPending = true
        return log.lastIndex
    }

    /// Stamps entries with this term and the next indexes and appends them. Our own copy counts
    /// toward commit once the driver reports it durable (`durableRose`), not before.
    func appendAsLeader(_ entries: [Entry]) {
        var stamped = entries
        var index = log.lastIndex
        for i in stamped.indices {
            index = index.next
            stamped[i].term = term
            stamped[i].index = index
        }
        appendToLog(stamped)
        idleTicks = 0
    }

    /// Appends to the log and keeps the membership in step with it: a configuration takes effect
    /// when appended, and reverts if its entry is truncated.
    func appendToLog(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        let before = conf
        confLog.removeAll { $0.index >= first.index }
        log.append(entries)
        for e in entries where e.type == .confChange {
            confLog.append((e.index, Self.decodeConf(e)))
        }
        if conf != before { applyConf() }
    }

    /// Sends every follower what it lacks (or the commit index), as many messages as its
    /// inflight window allows: proposals are broadcast once per Ready, not one by one.
    func broadcastAppend() {
        for peer in conf.allMembers where peer != id {
            guard sendAppend(to: peer) else { continue }
            var sent = 1
            while sent < config.maxInflightMsgs, sendAppend(to: peer, sendIfEmpty: false) { sent += 1 }
        }
    }

    /// Sends the next batch of entries to `peer` if its flow control allows.
    /// Returns true if a message was sent.
    @discardableResult
    func sendAppend(to peer: NodeID, sendIfEmpty: Bool = true) -> Bool {
        guard let pr = tracker.progress[peer], !pr.isPaused else { return false }
        let prevIndex = pr.next.prev
        guard let prevTerm = log.term(at: prevIndex),
              let entries = log.entries(from: pr.next, maxBytes: config.maxSizePerMsg) else {
            return sendSnapshot(to: peer)
        }
        if entries.isEmpty && !sendIfEmpty { return false }
        let commit = log.committed
        send(to: peer, .appendEntries(AppendEntries(prevLogIndex: prevIndex, prevLogTerm: prevTerm,
                                                    entries: entries, commit: commit)))
        tracker.progress[peer]?.sentEntries(entries)
        return true
    }

    /// §5.4.2 (Figure 8): a leader commits by counting replicas only entries of its own term;
    /// earlier entries commit indirectly with them.
    func maybeCommit() -> Bool {
        let candidate = tracker.committedIndex()
        guard candidate > log.committed else { return false }
        guard log.term(at: candidate) == term else { return false }
        commit(to: candidate)
        return true
    }

    /// Raises the commit index and reacts to what that settles.
    func commit(to index: LogIndex) {
        let old = log.committed
        log.commitTo(index)
        guard log.committed > old, role == .leader else { return }
        releaseReadsAwaitingCommit()
        // A leader that removed itself leads until the change commits, then steps down (§4.2.2).
        if !conf.contains(id), let lastConf = confLog.last?.index, log.committed >= lastConf {
            becomeFollower(term: term, leader: nil)
        }
    }

    var hasCommittedEntryInCurrentTerm: Bool { log.term(at: log.committed) == term }

    func handleAppendEntries(_ m: Message, _ a: AppendEntries) {
        // A malformed message (a buggy or corrupted peer) is dropped, never trusted.
        guard a.isWellFormed(leaderTerm: m.term) else { return }
        if role != .follower { becomeFollower(term: term, leader: m.from) }
        electionElapsed = 0
        leader = m.from
        announcedCommit = (term, announcedCommit.term == term ? max(announcedCommit.index, a.commit) : a.commit)
        if divergedAt != nil { return }
        if let bad = disagreementWithCommitted(a) {
            divergedAt = bad
            return
        }
        if a.prevLogIndex < log.committed {
            send(to: m.from, .appendResponse(AppendResponse(index: log.committed, reject: false)))
            return
        }
        guard log.matchTerm(a.prevLogIndex, a.prevLogTerm) else {
            // Fast back-off: point the leader at our last entry whose term is <= its prevLogTerm.
            let hintIndex = log.findConflictByTerm(index: min(a.prevLogIndex, log.lastIndex), term: a.prevLogTerm)
            let hintTerm = log.term(at: hintIndex) ?? .zero
            send(to: m.from, .appendResponse(AppendResponse(index: a.prevLogIndex, reject: true,
                                                            hintIndex: hintIndex, hintTerm: hintTerm)))
            return
        }
        let lastNew = a.prevLogIndex + a.entries.count
        if let conflict = a.entries.first(where: { !log.matchTerm($0.index, $0.term) }) {
            precondition(conflict.index > log.committed, "leader overwrites committed entry \(conflict.index)")
            appendToLog(Array(a.entries[(conflict.index - a.prevLogIndex - 1)...]))
        }
        log.commitTo(min(a.commit, lastNew))
        send(to: m.from, .appendResponse(AppendResponse(index: lastNew, reject: false)))
    }

    /// The first index at or below our commit where the leader's append disagrees with our log
    /// (its `prevLogIndex` or an entry with another term), or nil. Entries compacted here are
    /// not compared (their terms are gone).
    private func disagreementWithCommitted(_ a: AppendEntries) -> LogIndex? {
        if a.prevLogIndex <= log.committed, a.prevLogIndex > .zero,
           let mine = log.term(at: a.prevLogIndex), mine != a.prevLogTerm {
            return a.prevLogIndex
        }
        for e in a.entries where e.index <= log.committed {
            if let mine = log.term(at: e.index), mine != e.term { return e.index }
        }
        return nil
    }

    /// `divergedAt` the first time it is set, then nil: the application learns it once.
    public func takeDivergence() -> LogIndex? {
        guard let at = divergedAt, !divergenceReported else { return nil }
        divergenceReported = true
        return at
    }

    func handleAppendResponse(_ m: Message, _ r: AppendResponse) {
        guard role == .leader, tracker.progress[m.from] != nil else { return }
        tracker.progress[m.from]?.recentActive = true
        if r.reject {
            handleAppendRejection(m.from, r)
            return
        }
        let wasPaused = tracker.progress[m.from]!.isPaused
        guard tracker.progress[m.from]!.maybeUpdate(r.index) else { return }
        tracker.progress[m.from]?.acknowledged(r.index)
        if maybeCommit() {
            broadcastPending = true // the new commit index goes out once per Ready, not per response
        } else if wasPaused {
            sendAppend(to: m.from)
        }
        // Keep the pipeline full; bounded by the inflight window.
        var sent = 0
        while sent < config.maxInflightMsgs, sendAppend(to: m.from, sendIfEmpty: false) { sent += 1 }
        if m.from == leadTransferee, tracker.progress[m.from]?.match == log.lastIndex {
            timeoutNowSent = true
            send(to: m.from, .timeoutNow)
        }
    }

    private func handleAppendRejection(_ peer: NodeID, _ r: AppendResponse) {
        if r.index == .zero {
            // The follower lost entries it had acknowledged (see `handleHeartbeat`).
            guard r.hintIndex < tracker.progress[peer]!.match else { return }
            tracker.progress[peer]!.lostLog(endingAt: r.hintIndex)
            sendAppend(to: peer)
            return
        }
        let probe = r.hintTerm > .zero
            ? log.findConflictByTerm(index: r.hintIndex, term: r.hintTerm)
            : r.hintIndex
        guard tracker.progress[peer]!.maybeDecrTo(rejected: r.index, matchHint: probe) else { return }
        if tracker.progress[peer]!.state == .replicate { tracker.progress[peer]!.becomeProbe() }
        sendAppend(to: peer)
    }

    static func decodeConf(_ e: Entry) -> ConfState {
        do {
            return try ConfChangeRecord.decode(e.data).result
        } catch {
            preconditionFailure("corrupt configuration entry at \(e.index): \(error)")
        }
    }
}

extension AppendEntries {
    /// Entries follow `prevLogIndex` without gaps, with non-decreasing terms no newer than the
    /// leader's, and none older than `prevLogTerm`.
    func isWellFormed(leaderTerm: Term) -> Bool {
        var expected = prevLogIndex.next
        var lastTerm = prevLogTerm
        for e in entries {
            guard e.index == expected, e.term >= lastTerm, e.term <= leaderTerm else { return false }
            expected = expected.next
            lastTerm = e.term
        }
        return prevLogTerm <= leaderTerm
    }
}

extension Progress {
    /// Bookkeeping after sending `entries` (optimistic in replicate state).
    mutating func sentEntries(_ entries: [Entry]) {
        switch state {
        case .replicate:
            if let last = entries.last {
                next = last.index.next
                inflights.add(last.index, bytes: entries.reduce(0) { $0 + $1.sizeBytes })
            }
        case .probe:
            probeSent = true
        case .snapshot:
            preconditionFailure("append sent while waiting for a snapshot")
        }
    }

    /// State transitions after a successful append response up to `index`.
    mutating func acknowledged(_ index: LogIndex) {
        switch state {
        case .probe:
            becomeReplicate()
        case .snapshot:
            if match >= pendingSnapshot {
                becomeProbe()
                becomeReplicate()
            }
        case .replicate:
            inflights.freeLE(index)
        }
    }
}
