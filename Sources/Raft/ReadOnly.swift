/// ReadIndex requests waiting for a quorum to confirm this leader (dissertation §6.4).
struct ReadOnlyQueue {
    struct Pending {
        var index: LogIndex
        var from: NodeID
        var context: [UInt8]
        var acks: Set<NodeID>
    }

    /// Bound on queued reads; beyond it new reads are refused (`RaftError.busy`).
    static let maxPending = 10_000
    private(set) var queue: [Pending] = []

    var isEmpty: Bool { queue.isEmpty }
    var isFull: Bool { queue.count >= Self.maxPending }

    mutating func add(index: LogIndex, from: NodeID, context: [UInt8], selfID: NodeID) {
        queue.append(Pending(index: index, from: from, context: context, acks: [selfID]))
    }

    /// Records an ack for `context` from `peer`; when a quorum of voters acked it, returns that
    /// request and every request queued before it (they are confirmed by the same round).
    mutating func ack(context: [UInt8], from peer: NodeID, conf: ConfState) -> [Pending] {
        guard let pos = queue.firstIndex(where: { $0.context == context }) else { return [] }
        queue[pos].acks.insert(peer)
        let votes = queue[pos].acks.filter { conf.isVoter($0) }.count
        guard votes >= conf.quorum else { return [] }
        let released = Array(queue[...pos])
        queue.removeFirst(pos + 1)
        return released
    }

    /// The newest pending context (what a heartbeat round should confirm).
    var lastContext: [UInt8]? { queue.last?.context }

    mutating func reset() { queue = [] }
}

/// Linearizable reads: ReadIndex and the leader lease.
extension RaftNode {
    /// Requests a linearizable read. When confirmed, a `ReadState(index, context)` appears in a
    /// later `Ready` (on this node, also when this node is a follower); serve the read once the
    /// state machine applied `index`. `context` must be unique among in-flight reads. A follower
    /// forwards the request to the leader; if either message is lost no answer comes, so the
    /// driver retries after a timeout.
    public func readIndex(context: [UInt8]) throws {
        wake()
        switch role {
        case .leader:
            guard !readOnly.isFull else { throw RaftError.busy }
            handleRead(from: id, context: context)
        case .follower:
            guard let l = leader else { throw RaftError.notLeader(leader: nil) }
            send(to: l, .readIndexRequest(context: context))
        case .candidate, .preCandidate:
            throw RaftError.notLeader(leader: nil)
        }
    }

    func handleReadIndexRequest(_ m: Message, _ context: [UInt8]) {
        guard role == .leader, conf.contains(m.from), !readOnly.isFull else { return }
        handleRead(from: m.from, context: context)
    }

    func handleReadIndexResponse(_ m: Message, _ index: LogIndex, _ context: [UInt8]) {
        guard role == .follower, m.from == leader else { return }
        readStates.append(ReadState(index: index, context: context))
    }

    private func handleRead(from: NodeID, context: [UInt8]) {
        if conf.voters == [id] {
            respondToRead(from: from, index: log.committed, context: context)
            return
        }
        // Until it commits an entry of its term a new leader does not know the commit index.
        guard hasCommittedEntryInCurrentTerm else {
            readsAwaitingCommit.append((from, context))
            return
        }
        if config.readOnlyOption == .leaseBased && leaseIsValid {
            respondToRead(from: from, index: log.committed, context: context)
            return
        }
        readOnly.add(index: log.committed, from: from, context: context, selfID: id)
        broadcastHeartbeat(context: context)
    }

    /// Valid while a quorum acknowledged a heartbeat sent less than an election timeout ago:
    /// those followers refuse to vote for anyone else until their timeout runs out.
    var leaseIsValid: Bool {
        guard role == .leader, !leaseRevoked, hasCommittedEntryInCurrentTerm else { return false }
        let round = tracker.quorumAckedRound(selfID: id, now: tickCount)
        return tickCount < round &+ UInt64(config.electionTimeoutTicks - 1)
    }

    /// Leader only: the tick (`tickCount`) at which the newest heartbeat round that a quorum
    /// acknowledged was sent, the start of this leader's lease; nil when the lease must not be
    /// used (not leader, a transfer in flight, nothing committed in this term yet). Ticks stand
    /// still while the process is frozen, so a driver measures the lease in wall-clock time from
    /// when it ticked `leaseStartTick` (see `RaftHost.holdsLease`).
    public var leaseStartTick: UInt64? {
        guard role == .leader, !leaseRevoked, hasCommittedEntryInCurrentTerm else { return nil }
        return tracker.quorumAckedRound(selfID: id, now: tickCount)
    }

    /// Ticks since this node object was created.
    public var ticksSinceStart: UInt64 { tickCount }

    /// Leader only: sends a heartbeat round now (waking a quiesced group), so that the answers
    /// renew the lease — or a newer term in them deposes this leader.
    public func renewLease() {
        guard role == .leader else { return }
        wake()
        broadcastHeartbeat(context: nil)
    }

    func respondToRead(from: NodeID, index: LogIndex, context: [UInt8]) {
        if from == id {
            readStates.append(ReadState(index: index, context: context))
        } else {
            send(to: from, .readIndexResponse(index: index, context: context))
        }
    }

    func releaseReadsAwaitingCommit() {
        guard !readsAwaitingCommit.isEmpty, hasCommittedEntryInCurrentTerm else { return }
        let waiting = readsAwaitingCommit
        readsAwaitingCommit = []
        for r in waiting { handleRead(from: r.from, context: r.context) }
    }

    func ackRead(context: [UInt8], from peer: NodeID) {
        for r in readOnly.ack(context: context, from: peer, conf: conf) {
            respondToRead(from: r.from, index: r.index, context: r.context)
        }
    }
}
