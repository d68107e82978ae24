@testable import Raft

/// A lossy network: drops, duplicates, delays (which reorders), and directed partitions.
struct SimNetwork {
    struct InFlight {
        var deliverAt: Int
        var message: Message
    }

    private(set) var queue: [InFlight] = []
    /// Directed links that drop everything: (from, to).
    var blocked: Set<[UInt64]> = []
    var dropPercent = 0
    var duplicatePercent = 0
    var maxDelayTicks = 0
    /// Bound on queued messages; beyond it the network drops (like a full socket buffer).
    static let maxQueued = 50_000

    mutating func send(_ m: Message, now: Int, rng: inout SplitMix64) {
        if blocked.contains([m.from.rawValue, m.to.rawValue]) { return }
        if dropPercent > 0 && rng.next(below: 100) < dropPercent { return }
        let copies = duplicatePercent > 0 && rng.next(below: 100) < duplicatePercent ? 2 : 1
        for _ in 0..<copies where queue.count < Self.maxQueued {
            let delay = 1 + (maxDelayTicks > 0 ? rng.next(below: maxDelayTicks + 1) : 0)
            queue.append(InFlight(deliverAt: now + delay, message: m))
        }
    }

    /// Removes and returns the messages due at `now`, shuffled.
    mutating func due(now: Int, rng: inout SplitMix64) -> [Message] {
        var ready: [Message] = []
        var rest: [InFlight] = []
        rest.reserveCapacity(queue.count)
        for f in queue {
            if f.deliverAt <= now { ready.append(f.message) } else { rest.append(f) }
        }
        queue = rest
        if ready.count > 1 {
            for i in stride(from: ready.count - 1, to: 0, by: -1) {
                ready.swapAt(i, rng.next(below: i + 1))
            }
        }
        return ready
    }

    mutating func heal() {
        blocked = []
        dropPercent = 0
        duplicatePercent = 0
        maxDelayTicks = min(maxDelayTicks, 1)
    }
}
