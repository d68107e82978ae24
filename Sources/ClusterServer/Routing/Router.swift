/// A per-connection memo of match results, valid while the sublist's generation holds:
/// the hot publish path then needs no lock at all.
struct MatchCache {
    private var generation: UInt64 = .max
    private var entries: [String: SublistResult] = [:]
    private let limit = 256

    mutating func result(for subject: String, in sublist: Sublist) -> SublistResult {
        // Read the generation before matching: a change racing with us leaves the stored
        // generation behind, so the next lookup discards what we cached now.
        let g = sublist.generation
        if g != generation {
            entries.removeAll(keepingCapacity: true)
            generation = g
        }
        if let hit = entries[subject] { return hit }
        let result = sublist.match(subject)
        if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
        entries[subject] = result
        return result
    }
}

/// SplitMix64: a tiny fast generator for picking queue-group members (not for secrets).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Fan-out of one message to the subscriptions of a match result: every plain subscription,
/// and one member of each queue group (random start, skipping members that refuse).
enum Fanout {
    /// Returns how many subscriptions accepted the message.
    @inline(__always)
    static func deliver(_ message: RoutedMessage, to result: SublistResult, skipOwner: UInt64?,
                        rng: inout SplitMix64) -> Int {
        var delivered = 0
        for sub in result.plain {
            if let skip = skipOwner, sub.ownerID == skip { continue }
            if sub.sink.deliver(message, to: sub) { delivered += 1 }
        }
        for group in result.queues {
            let n = group.count
            let start = Int(rng.next() % UInt64(n))
            for k in 0..<n {
                let sub = group[(start + k) % n]
                if let skip = skipOwner, sub.ownerID == skip { continue }
                if sub.sink.deliver(message, to: sub) {
                    delivered += 1
                    break
                }
            }
        }
        return delivered
    }
}
