/// Sorted stream sequences, searched by bisection.
extension Array where Element == UInt64 {
    /// The index of the first element ≥ `value` in this ascending array (`count` when none).
    func lowerBound(_ value: UInt64) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Whether this ascending array holds `value`.
    func sortedContains(_ value: UInt64) -> Bool {
        let i = lowerBound(value)
        return i < count && self[i] == value
    }
}

/// Ascending stream sequences (stored in sequence order, so an insert is an append), looked up
/// by bisection: the never-expiring messages of a stream (`Stream.neverExpires`).
struct AscendingSequences {
    private(set) var seqs: [UInt64] = []

    var isEmpty: Bool { seqs.isEmpty }

    private func index(atOrAfter s: UInt64) -> Int { seqs.lowerBound(s) }

    mutating func insert(_ s: UInt64) {
        if let last = seqs.last, last < s { return seqs.append(s) }
        let i = index(atOrAfter: s)
        if i == seqs.count || seqs[i] != s { seqs.insert(s, at: i) }
    }

    func contains(_ s: UInt64) -> Bool { seqs.sortedContains(s) }

    func first(atOrAfter s: UInt64) -> UInt64? {
        let i = index(atOrAfter: s)
        return i < seqs.count ? seqs[i] : nil
    }

    /// Forgets the sequences below `s` (removed from the stream).
    mutating func dropBelow(_ s: UInt64) {
        let i = index(atOrAfter: s)
        if i > 0 { seqs.removeFirst(i) }
    }
}
