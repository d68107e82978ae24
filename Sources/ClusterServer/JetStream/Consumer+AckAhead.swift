/// Acks of deliveries this consumer state never made (chaos finding 15).
///
/// A stream leader records its deliveries in the consumer record it replicates every 100 ms.
/// When it loses leadership between a delivery and the commit of that record (killed, cut off
/// or frozen while its lease still held), the new leader continues from an older record: the
/// messages are still "not delivered" to it. The client then acks them; an ack of a sequence
/// that is not pending used to be ignored and yet confirmed (a double ack's reply is sent when
/// the record commits), and the new leader delivered the message again, as new, to the next
/// pull. nats-server ignores such acks too (its `processAckMsg` does not move the consumer's
/// pointer for an ack past it). Here the ack is kept instead: the sequence is remembered as
/// acked ahead, replicated in the record before the ack is confirmed, and skipped when the
/// cursor reaches it. The pointer does not move, so messages before it that the old leader may
/// not have delivered are still delivered.
extension Consumer {
    /// At most this many sequences acked ahead are kept; an ack beyond is not confirmed.
    static let maxAckedAhead = 10_000
    /// An ack's consumer sequence counts as issued only this far past the last one issued here
    /// (a hostile ack must not push the numbering to its end).
    static let maxConsumerSeqJump: UInt64 = 1_000_000

    /// An explicit ack (or term) of `seq`, which is not pending here. True when nothing is
    /// left to do or `seq` was recorded as acked ahead; false when it could not be recorded
    /// (never stored, or too many already), so the ack is not confirmed.
    func noteAckedAhead(_ seq: UInt64, consumerSeq: UInt64) -> Bool {
        guard config.ackPolicy == .explicit else { return true }
        // Below the cursor and not pending: acked before, or given up on (max_deliver, term).
        if seq < cursor || ackedAhead.contains(seq) { return true }
        guard seq <= stream.store.state.lastSeq else { return false }
        // A message that is gone or not ours would not be delivered anyway.
        guard let m = stream.store.load(seq), matches(m.subject) else { return true }
        guard ackedAhead.count < Self.maxAckedAhead else { return false }
        ackedAhead.insert(seq)
        // The other leader issued that consumer sequence: number later deliveries past it, so
        // one consumer sequence never names two deliveries.
        if consumerSeq > deliveredConsumerSeq && consumerSeq - deliveredConsumerSeq <= Self.maxConsumerSeqJump {
            deliveredConsumerSeq = consumerSeq
        }
        invalidatePending()
        dirty = true
        if stream.config.retention != .limits {
            stream.checkAckedEverywhere(seq)
            if stream.store.load(seq) == nil { ackedAhead.remove(seq) }
        }
        return true
    }

    /// `ack_policy: all`: an ack at or past the cursor acknowledges everything up to it, so the
    /// cursor moves past it (another leader delivered all of them, in order). False when `seq`
    /// was never stored (not confirmed).
    func ackAllAhead(_ seq: UInt64, consumerSeq: UInt64) -> Bool {
        guard seq <= stream.store.state.lastSeq else { return false }
        cursor = seq + 1
        deliveredStreamSeq = max(deliveredStreamSeq, seq)
        if consumerSeq > deliveredConsumerSeq && consumerSeq - deliveredConsumerSeq <= Self.maxConsumerSeqJump {
            deliveredConsumerSeq = consumerSeq
        }
        invalidatePending()
        return true
    }

    /// Called with the next message at or past the cursor: when it was acked ahead, the cursor
    /// passes it (delivered by another leader, acknowledged) and the caller looks further.
    func skipAckedAhead(_ seq: UInt64) -> Bool {
        guard !ackedAhead.isEmpty, ackedAhead.remove(seq) != nil else { return false }
        cursor = seq + 1
        deliveredStreamSeq = max(deliveredStreamSeq, seq)
        invalidatePending()
        updateAckFloor()
        dirty = true
        return true
    }

    /// Drops acked-ahead sequences the cursor passed or the stream no longer holds.
    func pruneAckedAhead() {
        guard !ackedAhead.isEmpty else { return }
        ackedAhead = ackedAhead.filter { $0 >= cursor && stream.store.load($0) != nil }
    }
}
