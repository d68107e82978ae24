extension SWIM {
    // MARK: - time

    /// One tick of the shell's timer: timeouts, the next probe, periodic sync and rejoin.
    public mutating func tick() -> [GossipDirective] {
        guard !hasLeft else { return [] }
        now += 1
        var out: [GossipDirective] = []
        expireSuspicions(into: &out)
        if !relays.isEmpty { relays = relays.filter { $0.value.expires > now } }
        if var p = probe, !p.acked, !p.indirectSent, now - p.startedAt >= config.pingTimeoutTicks {
            p.indirectSent = true
            probe = p
            askHelpers(p, into: &out)
        }
        if now - periodStart >= config.periodTicks {
            endPeriod(into: &out)
        }
        return out
    }

    private mutating func expireSuspicions(into out: inout [GossipDirective]) {
        // Most ticks expire nothing: look before sorting (sorted for a replayable order).
        guard members.values.contains(where: { ($0.suspectDeadline ?? .max) <= now }) else { return }
        for id in members.keys.sorted() {
            guard let e = members[id], case let .suspect(i) = e.status, let d = e.suspectDeadline, d <= now else { continue }
            record(id, .dead(i), into: &out)
        }
    }

    private mutating func forgetTombstones() {
        let horizon = config.tombstonePeriods * config.periodTicks
        guard members.values.contains(where: { !$0.status.isLive && now - $0.changedAt >= horizon }) else { return }
        members = members.filter { $0.value.status.isLive || now - $0.value.changedAt < horizon }
    }

    private mutating func endPeriod(into out: inout [GossipDirective]) {
        if let p = probe, !p.acked, let s = members[p.target]?.status, case let .alive(i) = s {
            record(p.target, .suspect(i), into: &out)
        }
        probe = nil
        forgetTombstones()
        periodStart = now
        periods += 1
        startProbe(into: &out)
        if periods % config.syncPeriods == 0, let peer = randomMember(where: { $0.isLive }) {
            out.append(.send(GossipMessage(from: myself, incarnation: incarnation, kind: .sync, updates: fullState()), to: peer))
        }
        if periods % config.rejoinPeriods == 0 {
            rejoin(into: &out)
        }
    }

    private mutating func startProbe(into out: inout [GossipDirective]) {
        guard let target = nextProbeTarget() else { return }
        let seq = newSeq()
        probe = Probe(target: target, seq: seq, startedAt: now)
        out.append(.send(message(.ping(seq: seq), to: target), to: target))
    }

    /// Round-robin over a shuffled list of live members; reshuffled at the end of each round.
    private mutating func nextProbeTarget() -> MemberID? {
        for _ in 0..<2 {
            while probeIndex < probeOrder.count {
                let m = probeOrder[probeIndex]
                probeIndex += 1
                if members[m]?.status.isLive == true { return m }
            }
            probeOrder = liveMembers
            probeOrder.shuffle(using: &rng)
            probeIndex = 0
            if probeOrder.isEmpty { return nil }
        }
        return nil
    }

    private mutating func askHelpers(_ p: Probe, into out: inout [GossipDirective]) {
        var helpers = members.compactMap { $0.key != p.target && $0.value.status.rank == 0 ? $0.key : nil }.sorted()
        helpers.shuffle(using: &rng)
        for h in helpers.prefix(config.indirectProbes) {
            out.append(.send(message(.pingReq(seq: p.seq, target: p.target), to: h), to: h))
        }
    }

    func randomMemberList(where keep: (MemberStatus) -> Bool) -> [MemberID] {
        members.compactMap { keep($0.value.status) ? $0.key : nil }.sorted()
    }

    mutating func randomMember(where keep: (MemberStatus) -> Bool) -> MemberID? {
        let list = randomMemberList(where: keep)
        return list.isEmpty ? nil : list[rng.next(below: list.count)]
    }

    // MARK: - messages

    /// Handles one message from another member.
    public mutating func receive(_ m: GossipMessage) -> [GossipDirective] {
        guard !hasLeft, m.from != myself else { return [] }
        var out: [GossipDirective] = []
        // Hearing from a member directly is its own alive claim at its incarnation.
        apply(m.from, .alive(m.incarnation), into: &out)
        for u in m.updates { apply(u.member, u.status, into: &out) }
        switch m.kind {
        case let .ping(seq):
            out.append(.send(message(.ack(seq: seq), to: m.from), to: m.from))
        case let .ack(seq):
            if var p = probe, p.seq == seq {
                p.acked = true
                probe = p
            }
            if let r = relays.removeValue(forKey: seq) {
                out.append(.send(message(.ack(seq: r.seq), to: r.requester), to: r.requester))
            }
        case let .pingReq(seq, target):
            guard target != myself else {
                // Asked to probe ourselves: answer for the requester directly.
                out.append(.send(message(.ack(seq: seq), to: m.from), to: m.from))
                break
            }
            let mine = newSeq()
            relays[mine] = Relay(requester: m.from, seq: seq, expires: now + config.periodTicks)
            out.append(.send(message(.ping(seq: mine), to: target), to: target))
        case .sync:
            out.append(.send(GossipMessage(from: myself, incarnation: incarnation, kind: .syncReply, updates: fullState()),
                             to: m.from))
        case .syncReply:
            break
        }
        // The sender does not know it is suspected or dead here: tell it so it can refute.
        if m.kind != .sync, let s = members[m.from]?.status, s.rank == 1 || s.rank == 2, s.incarnation >= m.incarnation {
            out.append(.send(GossipMessage(from: myself, incarnation: incarnation, kind: .syncReply, updates: fullState()),
                             to: m.from))
        }
        return out
    }
}
