/// A consumer's outstanding deliveries (stream seq -> consumer seq and redelivery deadline),
/// with its ack floor kept incrementally: every ack asks for the smallest pending stream and
/// consumer sequences, and a scan of every entry per ack is quadratic in `max_ack_pending`.
struct PendingDeliveries {
    /// Stream seq -> (consumer seq of its latest delivery, redelivery deadline ns on the
    /// `Consumer.ackClockNanos` clock).
    private(set) var entries: [UInt64: (cseq: UInt64, deadline: Int64)] = [:]
    /// Every pending stream seq, plus ones no longer pending (dropped when they reach the top).
    private var seqs = MinHeap<UInt64>()
    /// Every pending entry's (consumer seq, stream seq), plus stale pairs (an entry removed, or
    /// redelivered under a newer consumer seq), dropped when they reach the top.
    private var cseqs = MinHeap<ConsumerSeq>()

    private struct ConsumerSeq: Comparable {
        var cseq: UInt64
        var seq: UInt64
        static func < (a: Self, b: Self) -> Bool { (a.cseq, a.seq) < (b.cseq, b.seq) }
    }

    init() {}

    subscript(seq: UInt64) -> (cseq: UInt64, deadline: Int64)? { entries[seq] }
    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var keys: Dictionary<UInt64, (cseq: UInt64, deadline: Int64)>.Keys { entries.keys }
    /// Entries in the two heaps, stale ones included (for tests of their bound).
    var heapSizes: (seqs: Int, cseqs: Int) { (seqs.count, cseqs.count) }

    /// `seq` was delivered (first time or again) as consumer seq `cseq`.
    mutating func deliver(_ seq: UInt64, cseq: UInt64, deadline: Int64) {
        let old = entries.updateValue((cseq, deadline), forKey: seq)
        if old == nil { seqs.insert(seq) }
        if old?.cseq != cseq { cseqs.insert(ConsumerSeq(cseq: cseq, seq: seq)) }
        compactIfLarge()
    }

    /// A new redelivery deadline for a pending `seq` (nothing when it is not pending).
    mutating func setDeadline(_ seq: UInt64, _ deadline: Int64) {
        entries[seq]?.deadline = deadline
    }

    mutating func remove(_ seq: UInt64) {
        entries[seq] = nil
    }

    /// The smallest pending stream seq and the smallest pending consumer seq; nil when nothing
    /// is pending. Amortized O(log n): each stale heap entry is dropped once.
    mutating func floors() -> (seq: UInt64, cseq: UInt64)? {
        guard !entries.isEmpty else { return nil }
        while let s = seqs.min, entries[s] == nil { seqs.removeMin() }
        while let c = cseqs.min, entries[c.seq]?.cseq != c.cseq { cseqs.removeMin() }
        guard let s = seqs.min, let c = cseqs.min else {
            // Unreachable while every entry enters both heaps; rebuilt rather than trusted.
            rebuild()
            return floors()
        }
        return (s, c.cseq)
    }

    /// Stale entries deep in a heap stay while a smaller one is pending (a message never
    /// acked while later ones are): rebuilt from `entries` past twice their count, so the
    /// heaps stay O(pending) at O(1) amortized per delivery.
    private mutating func compactIfLarge() {
        let bound = 2 * entries.count + 64
        if seqs.count > bound || cseqs.count > bound { rebuild() }
    }

    private mutating func rebuild() {
        seqs = MinHeap(entries.keys)
        cseqs = MinHeap(entries.map { ConsumerSeq(cseq: $0.value.cseq, seq: $0.key) })
    }
}
