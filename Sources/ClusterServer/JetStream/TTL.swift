import Foundation

/// Expiry: per-message TTL (`Nats-TTL`, API level 1: messages carrying it are removed once it
/// passes) and max_age (`expireAged`), which leaves messages with `Nats-TTL: never`.
extension Stream {
    /// `Nats-TTL` values: whole seconds, a Go duration (`1m30s`), or `never` (-1 = no expiry).
    /// nats-server refuses anything under one second.
    static func parseTTL(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "never" { return -1 }
        if let secs = Int64(t) { return secs >= 1 && secs < 9_000_000_000 ? secs * 1_000_000_000 : nil }
        guard let ns = JetStreamService.parseGoDuration(t), ns >= 1_000_000_000 else { return nil }
        return ns
    }

    /// Keeps `ttlQueue` ordered by expiry so the tick only looks at its head.
    func scheduleExpiry(seq: UInt64, at deadline: Int64) {
        var lo = 0, hi = ttlQueue.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ttlQueue[mid].at <= deadline { lo = mid + 1 } else { hi = mid }
        }
        ttlQueue.insert((deadline, seq), at: lo)
    }

    /// Removes messages older than max_age in one purge (one log write, one fsync); true if
    /// any went. Store times only grow with sequences, so "older" is a sequence prefix. Messages
    /// with `Nats-TTL: never` stay (`removeAgedKeepingNever`).
    @discardableResult
    func expireAged(now: Int64) -> Bool {
        guard let aged = agedRange(now: now) else { return false }
        let from = aged.lowerBound, upTo = aged.upperBound
        let removed = writesMarkers ? subjectsRemoved(in: from..<upTo) : nil
        let gone = neverExpires.isEmpty ? (try? purge(subject: nil, upTo: upTo, keep: nil)) ?? 0 > 0
                                        : removeAgedKeepingNever(from..<upTo)
        guard gone else { return false }
        dirty = true
        if let removed { noteMarkersDue(removed, now: now) }
        return true
    }

    /// Whether `expireAged` or `expireTTL` would remove something at `now` (a clustered
    /// leader's tick asks before proposing an `expire` op).
    func expiryDue(now: Int64) -> Bool {
        if let head = ttlQueue.first, head.at <= now { return true }
        return agedRange(now: now) != nil
    }

    /// The sequences max_age would judge at `now` (nil: none): from the first message, or past
    /// what an earlier pass kept (old never-expiring messages at the front are not due).
    private func agedRange(now: Int64) -> Range<UInt64>? {
        guard config.maxAgeNanos > 0 else { return nil }
        let st = store.state
        guard st.messages > 0, st.firstTime <= now - config.maxAgeNanos else { return nil }
        let upTo = store.firstSequence(atOrAfter: now - config.maxAgeNanos + 1)
        let from = neverExpires.isEmpty ? st.firstSeq : max(st.firstSeq, ageScanFrom)
        return upTo > from ? from..<upTo : nil
    }

    /// max_age over `range` when messages carry `Nats-TTL: never`: those stay, as on
    /// nats-server; the rest go (a leading run in one purge, then one by one). True if any went.
    /// Later passes start past `range` unless a removal failed.
    func removeAgedKeepingNever(_ range: Range<UInt64>) -> Bool {
        let first = store.state.firstSeq
        neverExpires.dropBelow(first)
        var gone = false, failed = false
        var seq = range.lowerBound
        // Below `range` only never-expiring messages are left: a purge is safe only from the first.
        if range.lowerBound == first {
            let firstKept = min(neverExpires.first(atOrAfter: first) ?? range.upperBound, range.upperBound)
            if firstKept > first {
                do { gone = try purge(subject: nil, upTo: firstKept, keep: nil) > 0 } catch { failed = true }
            }
            seq = firstKept
        }
        while seq < range.upperBound, let m = store.next(from: seq, filters: []), m.seq < range.upperBound {
            if !neverExpires.contains(m.seq) {
                do { if try remove(m.seq) { gone = true } } catch { failed = true }
            }
            seq = m.seq + 1
        }
        if !failed { ageScanFrom = range.upperBound }
        return gone
    }

    /// Removes messages whose TTL passed; true if any went.
    @discardableResult
    func expireTTL(now: Int64) -> Bool {
        var removed = false
        var n = 0
        var subjects: RemovedSubjects? = writesMarkers ? RemovedSubjects() : nil
        while n < ttlQueue.count && ttlQueue[n].at <= now {
            let m = subjects == nil ? nil : store.load(ttlQueue[n].seq)
            if (try? remove(ttlQueue[n].seq)) == true {
                removed = true
                if let m { subjects?.note(m) }
            }
            n += 1
        }
        if n > 0 { ttlQueue.removeFirst(n) }
        if removed { dirty = true }
        if let subjects { noteMarkersDue(subjects, now: now) }
        return removed
    }
}
