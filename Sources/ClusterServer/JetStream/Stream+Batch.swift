/// Batched apply for clustered streams: a run of committed publishes that need nothing from the
/// store to be decided is written with one store append (one block, one write) instead of one
/// per message. The decisions are exactly `ingest`'s, in the same order; only the write is
/// shared. Every replica applies the same entries with the same code, so they stay identical.
extension Stream {
    /// One committed publish waiting for the batch's store write.
    struct BatchItem {
        var subject: String
        var headers: [UInt8]?
        var payload: [UInt8]
        /// The entry's timestamp ("now" on every replica).
        var now: Int64
        var raftIndex: UInt64
        /// The entry's dedup time (`DedupClock`); `now` when nil.
        var dedupTime: Int64? = nil
        /// The leader found its `Nats-Msg-Id` new (`Stream.ingest`'s `dedupDecided`).
        var dedupDecided = false
        /// Its `Nats-Msg-Id` (`PublishHeaders.msgID`).
        var msgID: String?

        var dedupNow: Int64 { dedupTime ?? now }

        /// `parsed`: `headers` already read (else they are read here).
        init(subject: String, headers: [UInt8]?, payload: [UInt8], now: Int64, raftIndex: UInt64,
             dedupTime: Int64? = nil, dedupDecided: Bool = false, parsed: PublishHeaders? = nil) {
            self.subject = subject
            self.headers = headers
            self.payload = payload
            self.now = now
            self.raftIndex = raftIndex
            self.dedupTime = dedupTime
            self.dedupDecided = dedupDecided
            msgID = (parsed ?? PublishHeaders(headers)).msgID
        }
    }

    /// True when a publish with these headers can join a batch: the stream discards old messages
    /// (discard-new limits read the store's counts), keeps by limits (interest retention removes
    /// at once), is not sealed, the store writes a batch all-or-nothing, and no header's check
    /// reads the store (`PublishHeaders.readsStore`; `Nats-Msg-Id` is fine: dedup is in memory).
    func canBatch(_ headers: PublishHeaders) -> Bool {
        store.appendsBatches && !config.sealed && config.discard == .old && config.retention == .limits && !headers.readsStore
    }

    /// Stores a batch of publishes accepted by `canBatch`, in order, and returns one outcome per
    /// item: what `ingest` would have returned for each. Duplicates (by `Nats-Msg-Id`, also
    /// within the batch) and oversized messages are answered without being stored; the rest go
    /// to the store in one append. If that append fails, every item is ingested on its own
    /// instead (nothing of the batch was stored), so errors are reported as `ingest` reports them.
    func ingestBatch(_ items: [BatchItem]) -> [PublishOutcome] {
        var outcomes = [PublishOutcome?](repeating: nil, count: items.count)
        var toStore: [(item: Int, msgID: String?)] = []
        var batchIDs: [String: UInt64] = [:]
        let before = store.state
        for (i, m) in items.enumerated() {
            let size = m.payload.count + (m.headers?.count ?? 0)
            if config.maxMsgSize >= 0 && Int64(size) > config.maxMsgSize {
                outcomes[i] = PublishOutcome(response: Stream.errorAck(.messageTooLarge, stream: name), stored: false)
                continue
            }
            if (m.headers?.count ?? 0) > 65_536 {
                outcomes[i] = PublishOutcome(response: Stream.errorAck(JSAPIError(400, 10097, "message header exceeds maximum allowed"), stream: name), stored: false)
                continue
            }
            observeDedupTime(m.dedupNow)
            if let msgID = m.msgID {
                expireDedup(now: m.dedupNow)
                // Decided by the leader: stored, as `ingest` does, even after the same id in this batch.
                if !m.dedupDecided, let prior = batchIDs[msgID] ?? dedupSequence(msgID, now: m.dedupNow) {
                    outcomes[i] = PublishOutcome(response: pubAck(prior, duplicate: true), stored: false)
                    continue
                }
                batchIDs[msgID] = before.lastSeq + 1 + UInt64(toStore.count)
            }
            toStore.append((i, m.msgID))
        }
        guard !toStore.isEmpty else { return outcomes.map { $0! } }
        for (k, t) in toStore.enumerated() {
            noteDedupSkew(seq: before.lastSeq + 1 + UInt64(k), time: items[t.item].now, dedupTime: items[t.item].dedupNow)
        }
        var republishLast = lastSequencesForRepublish(toStore.lazy.map { items[$0.item].subject })
        let first: UInt64
        do {
            first = try store.appendBatch(toStore.map { t in
                let m = items[t.item]
                return (m.subject, m.headers, m.payload, m.now, m.raftIndex)
            })
        } catch {
            // Nothing was stored and no dedup entry was recorded: decide each one alone. After
            // a failure of the storage itself, the rest are not tried: a later one that fits
            // would be stored without the one before it.
            var out: [PublishOutcome] = []
            for m in items {
                if let last = out.last, last.localFailure != nil {
                    out.append(last)
                    continue
                }
                applyingRaftIndex = m.raftIndex
                defer { applyingRaftIndex = 0 }
                out.append(ingest(subject: m.subject, headers: m.headers, payload: m.payload, now: m.now, dedupNow: m.dedupNow,
                                  dedupDecided: m.dedupDecided))
            }
            return out
        }
        dirty = true
        if first != before.lastSeq + 1 {
            for (k, t) in toStore.enumerated() {
                noteDedupSkew(seq: first + UInt64(k), time: items[t.item].now, dedupTime: items[t.item].dedupNow)
            }
        }
        for (k, t) in toStore.enumerated() {
            let seq = first + UInt64(k)
            if let msgID = t.msgID { recordDedup(msgID, seq: seq, now: items[t.item].dedupNow) }
            setLastMsgID(t.msgID)
            outcomes[t.item] = PublishOutcome(response: pubAck(seq), stored: true, seq: seq)
            if republishLast != nil {
                let m = items[t.item]
                republish(subject: m.subject, headers: m.headers, payload: m.payload, seq: seq, time: m.now, last: &republishLast!)
            }
        }
        if store.state.messages != before.messages + UInt64(toStore.count) {
            // Limits removed older messages: consumers re-check what they hold.
            consumersPurged()
        }
        enforceLimits(now: items[toStore[toStore.count - 1].item].now)
        return outcomes.map { $0! }
    }
}
