import Raft

/// A publish to an interest stream that no consumer is interested in keeps nothing. Only the
/// leader runs consumers, so it judges when it proposes the message and proposes its removal
/// right behind it (the next index, in the same call). Every replica, the leader included,
/// removes the message when that op applies: at the same point of the log, in the same round
/// as the message (both commit together), so before the PubAck goes out, as on nats-server.
/// Before, the leader removed it at apply and its followers a round later through a
/// `retentionRemoved` entry: a discard-new limit or an expected-sequence check applied in
/// between judged different stores, and the copies diverged.
extension StreamReplica {
    /// Leader: whether no consumer would deliver `subject` (interest retention only). A
    /// consumer created after this does not see the message, as when it is published before.
    func nobodyInterested(in subject: String) -> Bool {
        stream.config.retention == .interest && !stream.hasInterest(in: subject)
    }

    /// Leader: the removal of the message just proposed at `index`; false when the log refused
    /// it (full), and the leader's apply then removes the message through `retentionRemoved`.
    /// If it does not make it into the log (a leader change), the message stays until a later
    /// removal or expiry.
    func proposeNoInterestRemoval(of index: LogIndex) -> Bool {
        (try? proposeOp(["op": "no_interest", "index": index.rawValue], answer: nil)) != nil
    }

    /// Every replica: removes the message its leader proposed at `index`, if it was stored
    /// (a publish refused at apply stored nothing).
    func applyNoInterestRemoval(_ index: UInt64?) {
        guard let index, let last = lastStored, last.index.rawValue == index else { return }
        if (try? stream.remove(last.seq)) == true { stream.dirty = true }
    }
}
