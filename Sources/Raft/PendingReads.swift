/// A driver's bookkeeping for ReadIndex reads across many groups (pure: no I/O, no clock).
///
/// A read goes through two waits: first for its `ReadState` (the leader confirmed it still
/// leads and named the commit index the read must see), then for the local state machine to
/// apply that index. Reads whose confirmation does not come in time (a lost message, a deposed
/// leader that can no longer reach a quorum) expire; the caller answers them with an error.
public struct PendingReads<Waiter> {
    private struct Asked {
        var group: GroupID
        var waiter: Waiter
        var deadline: UInt64
    }

    private var nextContext: UInt64 = 1
    /// Waiting for a ReadState, by context.
    private var asked: [[UInt8]: Asked] = [:]
    /// Confirmed, waiting for apply: per group, in the order confirmed (indexes ascend).
    private var confirmed: [GroupID: [(index: LogIndex, waiter: Waiter, deadline: UInt64)]] = [:]

    public init() {}

    /// Reads not answered yet.
    public var count: Int { asked.count + confirmed.values.reduce(0) { $0 + $1.count } }

    /// Registers a read of `group` and returns the context to pass to `RaftNode.readIndex`.
    /// The read expires at tick `deadline` unless it was answered before.
    public mutating func register(group: GroupID, waiter: Waiter, deadline: UInt64) -> [UInt8] {
        let id = nextContext
        nextContext &+= 1
        let context = withUnsafeBytes(of: id.bigEndian) { Array($0) }
        asked[context] = Asked(group: group, waiter: waiter, deadline: deadline)
        return context
    }

    /// Forgets a read whose `readIndex` call failed at once (no leader known, queue full).
    public mutating func cancel(context: [UInt8]) -> Waiter? {
        asked.removeValue(forKey: context)?.waiter
    }

    /// Takes the read states of one group's `Ready`; returns the reads that may be served now
    /// (their index is applied), keeps the others until `applied` reaches them.
    public mutating func confirm(_ states: [ReadState], group: GroupID, applied: LogIndex) -> [Waiter] {
        var ready: [Waiter] = []
        for st in states {
            guard let a = asked[st.context], a.group == group else { continue }
            asked[st.context] = nil
            if st.index <= applied {
                ready.append(a.waiter)
            } else {
                confirmed[group, default: []].append((st.index, a.waiter, a.deadline))
            }
        }
        return ready
    }

    /// The group applied up to `applied`: returns the confirmed reads that may be served now.
    public mutating func applied(group: GroupID, upTo applied: LogIndex) -> [Waiter] {
        guard var list = confirmed[group], !list.isEmpty else { return [] }
        var ready: [Waiter] = []
        list.removeAll { r in
            guard r.index <= applied else { return false }
            ready.append(r.waiter)
            return true
        }
        confirmed[group] = list.isEmpty ? nil : list
        return ready
    }

    /// Removes and returns every read whose deadline passed at tick `now`.
    public mutating func expire(now: UInt64) -> [Waiter] {
        var out: [Waiter] = []
        for (ctx, a) in asked where a.deadline <= now {
            out.append(a.waiter)
            asked[ctx] = nil
        }
        for (g, list) in confirmed {
            let (late, keep) = (list.filter { $0.deadline <= now }, list.filter { $0.deadline > now })
            out += late.map(\.waiter)
            confirmed[g] = keep.isEmpty ? nil : keep
        }
        return out
    }

    /// Removes and returns every read of `group` (the group stopped being hosted here).
    public mutating func drop(group: GroupID) -> [Waiter] {
        var out: [Waiter] = []
        for (ctx, a) in asked where a.group == group {
            out.append(a.waiter)
            asked[ctx] = nil
        }
        out += (confirmed.removeValue(forKey: group) ?? []).map(\.waiter)
        return out
    }
}
