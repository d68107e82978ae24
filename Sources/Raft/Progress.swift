/// How the leader is currently replicating to one follower.
public enum ProgressState: Sendable {
    /// One AppendEntries at a time until we find where the logs match.
    case probe
    /// Logs match: pipeline up to `maxInflightMsgs` messages optimistically.
    case replicate
    /// The follower needs a snapshot; wait until it reports back.
    case snapshot
}

/// A bounded window of in-flight AppendEntries (their last indexes and sizes).
struct Inflights {
    let maxCount: Int
    let maxBytes: Int
    private var items: [(index: LogIndex, bytes: Int)] = []
    private var head = 0
    private(set) var bytes = 0

    init(maxCount: Int, maxBytes: Int) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    var count: Int { items.count - head }
    var isFull: Bool { count >= maxCount || (maxBytes > 0 && bytes >= maxBytes) }

    mutating func add(_ index: LogIndex, bytes n: Int) {
        precondition(count < maxCount, "inflight window overflow")
        items.append((index, n))
        bytes += n
    }

    /// Frees every message whose last index is <= `index` (acknowledged).
    mutating func freeLE(_ index: LogIndex) {
        while head < items.count, items[head].index <= index {
            bytes -= items[head].bytes
            head += 1
        }
        if head > 32 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Frees the oldest message: a heartbeat answer shows the follower is alive, so the window
    /// must not stay full forever when every in-flight message was lost.
    mutating func freeFirstOne() {
        guard head < items.count else { return }
        freeLE(items[head].index)
    }

    mutating func reset() {
        items.removeAll(keepingCapacity: true)
        head = 0
        bytes = 0
    }
}

/// The leader's view of one follower (Raft paper: nextIndex / matchIndex, plus flow control).
public struct Progress: Sendable {
    public internal(set) var match: LogIndex = .zero
    public internal(set) var next: LogIndex
    public internal(set) var state: ProgressState = .probe
    public internal(set) var isLearner: Bool
    /// The snapshot index sent while in `.snapshot`.
    var pendingSnapshot: LogIndex = .zero
    var snapshotSentAtTick: UInt64 = 0
    /// Heard from since the last check-quorum round.
    var recentActive = false
    /// In probe state: one message sent, wait for an answer or a heartbeat response.
    var probeSent = false
    /// Highest heartbeat round (leader tick) this follower acknowledged, for the lease.
    var ackedRound: UInt64 = 0
    var inflights: Inflights

    init(next: LogIndex, isLearner: Bool, maxInflight: Int, maxInflightBytes: Int) {
        self.next = next
        self.isLearner = isLearner
        inflights = Inflights(maxCount: maxInflight, maxBytes: maxInflightBytes)
    }

    var isPaused: Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }

    mutating func becomeProbe() {
        if state == .snapshot {
            next = max(match.next, pendingSnapshot.next)
        } else {
            next = match.next
        }
        state = .probe
        probeSent = false
        pendingSnapshot = .zero
        inflights.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match.next
        probeSent = false
        inflights.reset()
    }

    mutating func becomeSnapshot(_ index: LogIndex, tick: UInt64) {
        state = .snapshot
        pendingSnapshot = index
        snapshotSentAtTick = tick
        probeSent = false
        inflights.reset()
    }

    /// The follower's log ends at `last`, below what it acknowledged (its storage was lost):
    /// count only what it holds and probe from there (a snapshot in flight stays in flight).
    /// Lowering `match` never lowers the commit index; it only stops counting lost copies.
    mutating func lostLog(endingAt last: LogIndex) {
        match = min(match, last)
        if state != .snapshot { becomeProbe() }
    }

    /// A successful append response up to `index`. Returns false if it was stale.
    mutating func maybeUpdate(_ index: LogIndex) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index.next)
        return updated
    }

    /// A rejection of `rejected` with the follower's hint. Returns false if it was stale.
    mutating func maybeDecrTo(rejected: LogIndex, matchHint: LogIndex) -> Bool {
        if state == .replicate {
            // Stale unless it rejects something past what we know matches.
            if rejected <= match { return false }
            next = match.next
            return true
        }
        // Probe: only the answer to the outstanding probe counts.
        if next.prev != rejected { return false }
        next = max(min(rejected, matchHint.next), match.next)
        if next == .zero { next = LogIndex(1) }
        probeSent = false
        return true
    }
}

/// Membership plus per-member progress and vote tallies.
struct ProgressTracker {
    private(set) var conf: ConfState
    var progress: [NodeID: Progress] = [:]
    private(set) var votes: [NodeID: Bool] = [:]

    init(conf: ConfState) { self.conf = conf }

    var quorum: Int { conf.quorum }

    mutating func setConf(_ conf: ConfState, lastIndex: LogIndex, maxInflight: Int, maxInflightBytes: Int) {
        self.conf = conf
        var updated: [NodeID: Progress] = [:]
        for id in conf.allMembers {
            var p = progress[id] ?? Progress(next: lastIndex.next, isLearner: false,
                                             maxInflight: maxInflight, maxInflightBytes: maxInflightBytes)
            p.isLearner = conf.isLearner(id)
            updated[id] = p
        }
        progress = updated
    }

    /// The highest index replicated on a quorum of voters.
    func committedIndex() -> LogIndex {
        guard !conf.voters.isEmpty else { return .zero }
        var matches = conf.voters.map { progress[$0]?.match ?? .zero }
        matches.sort(by: >)
        return matches[quorum - 1]
    }

    mutating func resetVotes() { votes = [:] }

    mutating func recordVote(_ id: NodeID, granted: Bool) {
        if votes[id] == nil { votes[id] = granted }
    }

    enum VoteResult { case won, lost, pending }

    func voteResult() -> VoteResult {
        var granted = 0, rejected = 0
        for v in conf.voters {
            switch votes[v] {
            case true?: granted += 1
            case false?: rejected += 1
            case nil: break
            }
        }
        if granted >= quorum { return .won }
        if rejected > conf.voters.count - quorum { return .lost }
        return .pending
    }

    /// True when a quorum of voters (counting `selfID`) was active since the last reset.
    func quorumActive(selfID: NodeID) -> Bool {
        conf.isMajority { $0 == selfID || progress[$0]?.recentActive == true }
    }

    /// The newest leader round acknowledged by a quorum (counting `selfID` at `now`).
    func quorumAckedRound(selfID: NodeID, now: UInt64) -> UInt64 {
        guard !conf.voters.isEmpty else { return 0 }
        var rounds = conf.voters.map { $0 == selfID ? now : (progress[$0]?.ackedRound ?? 0) }
        rounds.sort(by: >)
        return rounds[quorum - 1]
    }
}
