import Raft

/// A stream's state as its leader applied it up to one Raft index: what a replica that lost
/// its data (or is too far behind the compacted log) copies, in `StreamCatchup`.
struct CatchupState: Equatable {
    /// The leader's applied Raft index (and its term and membership): the installed replica's
    /// Raft log continues after it.
    var index: UInt64
    var term: UInt64
    var voters: [UInt64]
    var learners: [UInt64]
    /// First live sequence (`lastSeq + 1` when empty) and last sequence ever assigned.
    var firstSeq: UInt64
    var lastSeq: UInt64
    /// Sequences in `firstSeq...lastSeq` that hold no message, ascending (never `firstSeq`: it
    /// names the first live message; `lastSeq` itself may be deleted).
    var deleted: [UInt64]
    /// Replicated consumer records (`<stream>/consumers/<name>.json`) by consumer name.
    var consumers: [String: [UInt8]]
    /// The leader's dedup offset marks (`DedupSkews`) as of this state; empty when it has none
    /// (or is a version that sends none: dedup times are then the message timestamps).
    var dedupSkews: [DedupSkews.Mark] = []
    /// The leader's `Nats-Msg-Id` of the message at `lastSeq` when that message is gone (the
    /// copied messages cannot carry it; `DedupSkews.removedLast`).
    var removedLastMsgID: String? = nil
    /// The config the leader's store applied at `index` (JSON), for a replica that reads it
    /// (route INFO `js_copy_config`): the installed copy replays the log after `index` by it,
    /// as the leader did, not by a newer committed config whose `config` op is still ahead.
    var config: [UInt8]? = nil

    /// `config` decoded; nil when absent or unreadable (the replica then opens with the newest
    /// committed config, as before there was one).
    var appliedConfig: StreamConfig? { config.flatMap(StreamReplica.decodeAppliedConfig) }

    /// The dedup state that goes with the copied messages.
    var copiedDedupSkews: DedupSkews {
        DedupSkews(marks: dedupSkews, removedLast: removedLastMsgID.map { .init(seq: lastSeq, id: $0) })
    }

    /// Whether `seq` holds a message in this state.
    func isPresent(_ seq: UInt64) -> Bool {
        seq >= firstSeq && seq <= lastSeq && !isDeleted(seq)
    }

    private func isDeleted(_ seq: UInt64) -> Bool { deleted.sortedContains(seq) }

    /// The first present sequence ≥ `seq`, or `lastSeq + 1`. Walks runs of deleted sequences,
    /// so it is bounded by the size of `deleted`.
    func nextPresent(from seq: UInt64) -> UInt64 {
        var s = max(seq, firstSeq)
        while s <= lastSeq && isDeleted(s) { s += 1 }
        return min(s, lastSeq &+ 1)
    }

    /// Well-formed: sorted unique interior deletions, a sane range. Checked on receipt.
    var isWellFormed: Bool {
        guard firstSeq >= 1, firstSeq <= lastSeq &+ 1, lastSeq < UInt64.max else { return false }
        var prev: UInt64 = 0
        for d in deleted {
            guard d > prev, d > firstSeq, d <= lastSeq else { return false }
            prev = d
        }
        return !voters.isEmpty
    }
}

/// One stored message as copied between replicas.
struct CatchupMessage: Equatable {
    var seq: UInt64
    var time: Int64
    var subject: String
    var headers: [UInt8]?
    var payload: [UInt8]

    /// About its bytes in a catch-up chunk or snapshot frame (what their budgets count).
    var encodedSize: Int { payload.count + (headers?.count ?? 0) + subject.utf8.count + 28 }
}

extension MessageStore {
    /// The stored messages with sequences in `from...through`, ascending, until about `budget`
    /// bytes (`CatchupMessage.encodedSize`), and the sequence to go on from (`through + 1` once
    /// none is left): a copy's chunk, a snapshot's frame.
    func catchupMessages(from: UInt64, through: UInt64, budget: Int) -> (messages: [CatchupMessage], resume: UInt64) {
        var out: [CatchupMessage] = []
        var bytes = 0
        var s = from
        while s <= through, let m = next(from: s, filters: []), m.seq <= through {
            let c = CatchupMessage(seq: m.seq, time: m.time, subject: m.subject, headers: m.headers, payload: m.payload)
            out.append(c)
            bytes += c.encodedSize
            s = m.seq + 1
            if bytes >= budget { return (out, s) }
        }
        return (out, through &+ 1)
    }
}

/// The follower's side of a stream copy, as pure state: which request to send next and what to
/// do with each answer. The leader's store keeps changing while it is copied, so the copy
/// converges instead of pinning a point in time: messages are immutable once stored (only
/// removed), so the follower fetches them in sequence order in bounded chunks; whenever a chunk
/// lacks a message the state promised (removed since), it asks for a fresh state and removes
/// from its copy what that state no longer holds. It finishes with exactly the present set of
/// the latest state it holds, at that state's Raft index.
struct StreamCatchup {
    /// What the caller does to its staged copy, in order.
    enum Op: Equatable {
        /// Discard the copy and start empty.
        case reset
        /// Remove every staged message below this sequence.
        case removeBelow(UInt64)
        /// Remove one staged message.
        case remove(UInt64)
        /// Store this message at its sequence (ascending; skipped sequences hold no message).
        case append(CatchupMessage)
        /// The copy is complete: its last sequence must be this (trailing removals included).
        case finish(lastSeq: UInt64)
    }

    /// The next request to the leader, or the end.
    enum Next: Equatable {
        case state
        case messages(from: UInt64, to: UInt64)
        case done(CatchupState)
    }

    struct ProtocolError: Error, CustomStringConvertible {
        let description: String
    }

    private(set) var target: CatchupState?
    /// Every present sequence of `target` below it is staged.
    private(set) var cursor: UInt64 = 0
    /// The copy must reach at least this Raft index (what the replica already applied).
    let minimumIndex: UInt64

    init(minimumIndex: UInt64) {
        self.minimumIndex = minimumIndex
    }

    /// A state arrived. One older than what we hold (another leader that applied less) restarts
    /// the copy; the caller should retry later when it is below `minimumIndex`.
    mutating func received(state s: CatchupState) throws -> ([Op], Next) {
        guard s.isWellFormed else { throw ProtocolError(description: "malformed stream state") }
        guard s.index >= minimumIndex else { return ([], .state) }
        var ops: [Op] = []
        if let old = target, s.index >= old.index, s.firstSeq >= old.firstSeq, s.lastSeq >= old.lastSeq {
            // Staged messages the new state no longer holds go; sequences are never reused.
            if s.firstSeq > old.firstSeq { ops.append(.removeBelow(min(s.firstSeq, cursor))) }
            for d in s.deleted where d < cursor && d >= s.firstSeq && old.isPresent(d) { ops.append(.remove(d)) }
        } else {
            if target != nil { ops.append(.reset) }
            cursor = s.firstSeq
        }
        target = s
        cursor = s.nextPresent(from: cursor)
        let next = nextRequest(&ops)
        return (ops, next)
    }

    /// A chunk of messages `[from, next)` arrived for the last `.messages` request.
    mutating func received(messages: [CatchupMessage], from: UInt64, next: UInt64) throws -> ([Op], Next) {
        guard let t = target else { throw ProtocolError(description: "messages before a state") }
        guard from == cursor, next > from, next <= t.lastSeq &+ 1 else {
            throw ProtocolError(description: "chunk [\(from), \(next)) does not continue at \(cursor)")
        }
        var prev = from - 1
        for m in messages {
            guard m.seq > prev, m.seq < next else {
                throw ProtocolError(description: "message \(m.seq) out of order in chunk [\(from), \(next))")
            }
            guard t.isPresent(m.seq) else {
                throw ProtocolError(description: "message \(m.seq) is not in the stream state")
            }
            prev = m.seq
        }
        var ops: [Op] = []
        var expected = cursor
        for m in messages {
            if m.seq != expected {
                // `expected` was removed after the state was taken: refresh the state first.
                cursor = expected
                return (ops, .state)
            }
            ops.append(.append(m))
            expected = t.nextPresent(from: m.seq + 1)
        }
        if expected < next {
            cursor = expected
            return (ops, .state)
        }
        cursor = t.nextPresent(from: next)
        let request = nextRequest(&ops)
        return (ops, request)
    }

    private func nextRequest(_ ops: inout [Op]) -> Next {
        guard let t = target else { return .state }
        if cursor > t.lastSeq {
            ops.append(.finish(lastSeq: t.lastSeq))
            return .done(t)
        }
        return .messages(from: cursor, to: t.lastSeq)
    }
}
