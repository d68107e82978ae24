/// Heartbeats and quiescence of idle groups.
extension RaftNode {
    func broadcastHeartbeat(context: [UInt8]?, quiesce: Bool = false) {
        let ctx = context ?? readOnly.lastContext
        for peer in conf.allMembers where peer != id {
            guard let pr = tracker.progress[peer] else { continue }
            // Never tell a follower to commit past what it is known to hold.
            let commit = min(pr.match, log.committed)
            send(to: peer, .heartbeat(Heartbeat(commit: commit, context: ctx, round: tickCount, quiesce: quiesce)))
        }
    }

    func handleHeartbeat(_ m: Message, _ h: Heartbeat) {
        if role != .follower { becomeFollower(term: term, leader: m.from) }
        electionElapsed = 0
        leader = m.from
        // Diverged (see `divergedAt`): commit nothing, but still answer, so the leader keeps
        // its quorum (check-quorum) and stays there to hand this node a copy.
        if divergedAt == nil {
            if h.commit <= log.lastIndex {
                log.commitTo(h.commit)
            } else {
                // The leader counts us as holding entries we do not have: our log was lost (a
                // wiped volume) after we acknowledged them. Say so, as a rejection of index 0
                // (which no append can produce), so it stops counting on them and probes from
                // our real end.
                send(to: m.from, .appendResponse(AppendResponse(index: .zero, reject: true, hintIndex: log.lastIndex)))
            }
        }
        send(to: m.from, .heartbeatResponse(HeartbeatResponse(context: h.context, round: h.round)))
        if divergedAt == nil, h.quiesce && log.committed == h.commit && log.lastIndex == h.commit
            && config.quiesceAfterIdleTicks != nil {
            isQuiesced = true
        }
    }

    func handleHeartbeatResponse(_ m: Message, _ r: HeartbeatResponse) {
        guard role == .leader, let pr = tracker.progress[m.from] else { return }
        tracker.progress[m.from]?.recentActive = true
        tracker.progress[m.from]?.probeSent = false
        if r.round > pr.ackedRound { tracker.progress[m.from]?.ackedRound = r.round }
        if pr.state == .replicate && pr.inflights.isFull { tracker.progress[m.from]?.inflights.freeFirstOne() }
        if pr.match < log.lastIndex { sendAppend(to: m.from) }
        if let ctx = r.context { ackRead(context: ctx, from: m.from) }
    }

    /// Messages that must not wake a quiesced group: the quiesce heartbeat itself and the
    /// plain answers to it.
    func keepsQuiesced(_ m: Message) -> Bool {
        guard m.term == term else { return false }
        switch m.body {
        case .heartbeat(let h): return h.quiesce
        case .heartbeatResponse(let r): return r.context == nil
        default: return false
        }
    }

    /// A leader whose followers all hold and know every committed entry, with nothing pending,
    /// tells them to stop ticking and stops itself. Returns true if it quiesced.
    func maybeQuiesce() -> Bool {
        guard let idleNeeded = config.quiesceAfterIdleTicks, idleTicks >= idleNeeded,
              log.committed == log.lastIndex, hasCommittedEntryInCurrentTerm,
              leadTransferee == nil, readOnly.isEmpty, readsAwaitingCommit.isEmpty,
              pendingConfIndex <= log.committed else { return false }
        for peer in conf.allMembers where peer != id {
            guard let pr = tracker.progress[peer], pr.match == log.lastIndex, pr.recentActive else { return false }
        }
        broadcastHeartbeat(context: nil, quiesce: true)
        isQuiesced = true
        return true
    }

    /// Resumes ticking. Called by every input; a driver also calls it when it suspects the
    /// leader of a quiesced group is gone (its route dropped, gossip declared it dead).
    public func wake() {
        guard isQuiesced else { return }
        isQuiesced = false
        electionElapsed = 0
        heartbeatElapsed = 0
        idleTicks = 0
        if role == .leader {
            // Heard from before it slept, not since: the followers must answer again before the
            // group quiesces again or passes check-quorum. With the old flags a leader woken to
            // check its quorum (`MultiRaft.wakeQuiesced`) could quiesce again on them before its
            // first check-quorum round, never noticing its followers were gone.
            for peer in conf.allMembers where peer != id { tracker.progress[peer]?.recentActive = false }
        }
    }

    /// Host ticks this node slept through quiesced and has not counted yet.
    var uncountedQuiescedTicks: UInt64 {
        guard isQuiesced, let host = hostTicks else { return 0 }
        return host.now &- quiescedAtHostTick
    }

    /// On a `MultiRaft` host: quiescing notes the host's tick; waking counts the ticks slept
    /// through and puts the node back on the host's tick list.
    func quiescenceChanged() {
        guard let host = hostTicks else { return }
        if isQuiesced {
            quiescedAtHostTick = host.now
        } else {
            let slept = host.now &- quiescedAtHostTick
            countedTicks &+= slept
            countedQuiescedTicks &+= slept
            host.woken.append(self)
        }
    }
}
