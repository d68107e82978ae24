import Raft

/// `Nats-Msg-Id` dedup decided by the stream's leader when it proposes a publish, as
/// nats-server does, instead of by every replica at apply. At apply each replica looked the id
/// up in its own duplicate window; a replica whose window lacked ids — restarted within the
/// window of a message's removal (its window is rebuilt from the stored messages), or copied
/// from the leader — stored a retry its peers answered as a duplicate, and the copies
/// diverged by a message. Now:
/// - an id in the leader's window is answered as a duplicate at once, nothing is proposed;
/// - an id neither there nor in one of the leader's proposals still in flight goes out as a
///   *decided* entry (`StreamEntry.messageDecidedTag`): every replica records the id and
///   stores the message (its other checks still run at apply);
/// - an id in flight goes out as before (decided at apply, where the earlier entry has
///   applied on every replica first).
/// A leader decides only once it has applied every earlier term's entry (before, its window
/// could lack ids committed by the previous leader), and only while every member reads the
/// decided form (route INFO `js_dedup_decided`). A leader whose own window lacks an id (it was
/// the restarted one) stores the retry on every replica: a missed duplicate, as nats-server's,
/// never a divergence.
extension StreamReplica {
    enum LeaderDedup: Equatable {
        case duplicate(of: UInt64)
        case new
        case undecided
    }

    /// The leader's verdict on a publish carrying `msgID` (none: `.undecided`, there is nothing
    /// to decide), at dedup time `now` (nil while a member cannot read dedup times: decided at
    /// apply, as before).
    func leaderDedup(_ msgID: String?, now: Int64?) -> LeaderDedup {
        guard let msgID, let now, writesDecidedDedup(), decidesDedup() else { return .undecided }
        if let prior = stream.dedupSequence(msgID, now: now) { return .duplicate(of: prior) }
        return pendingMsgIDs[msgID] == nil ? .new : .undecided
    }

    /// True once this leader applied every entry of earlier terms: the first entry of its term
    /// (the no-op it appended on election) has applied. (Also when sources may start.)
    func decidesDedup() -> Bool {
        guard let node = raftNode, node.role == .leader else { return false }
        if dedupDecidingTerm == node.term { return true }
        guard node.term(at: node.appliedIndex) == node.term else { return false }
        dedupDecidingTerm = node.term
        return true
    }

    /// A publish with `msgID` applied here: the id is no longer in flight once its last
    /// proposal applied.
    func notePendingApplied(_ msgID: String?, at index: LogIndex) {
        guard let id = msgID, let last = pendingMsgIDs[id], last <= index else { return }
        pendingMsgIDs[id] = nil
    }
}
