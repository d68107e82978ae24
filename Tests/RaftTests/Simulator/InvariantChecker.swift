@testable import Raft

/// Safety properties of Raft (paper Figure 3), checked as the simulation runs.
struct InvariantChecker {
    /// Election safety: at most one leader per term.
    private(set) var leaderOfTerm: [Term: NodeID] = [:]
    /// Log matching: (index, term) -> (payload hash, previous entry's term), from every persisted entry.
    private var persisted: [LogIndex: [Term: (hash: UInt64, prevTerm: Term)]] = [:]
    /// The term of the committed entry at each index (index 0 unused).
    private(set) var committedTerms: [Term?] = [nil]
    /// State-machine safety: the state hash after applying each index.
    private var hashAfter: [UInt64?] = [0]
    private(set) var maxCommitted = LogIndex.zero

    enum Violation: Error {
        case broken(String, String)
    }

    mutating func sawLeader(_ node: NodeID, term: Term, raft: RaftNode) throws {
        if let other = leaderOfTerm[term] {
            guard other == node else { throw Violation.broken("election safety", "\(other) and \(node) both lead \(term)") }
            return
        }
        leaderOfTerm[term] = node
        try checkLeaderCompleteness(node, raft)
    }

    /// Leader completeness: a new leader's log holds every entry committed so far.
    private func checkLeaderCompleteness(_ node: NodeID, _ raft: RaftNode) throws {
        guard maxCommitted > .zero else { return }
        guard raft.lastIndex >= maxCommitted else {
            throw Violation.broken("leader completeness", "\(node) leads \(raft.term) with last \(raft.lastIndex) < committed \(maxCommitted)")
        }
        var i = max(raft.firstIndex, LogIndex(1))
        while i <= maxCommitted {
            if let want = committedTerms[Int(i.rawValue)], let have = raft.term(at: i), want != have {
                throw Violation.broken("leader completeness", "\(node) leads \(raft.term) with \(i) in \(have), committed in \(want)")
            }
            i = i.next
        }
    }

    /// Called with entries about to be appended to `storage`.
    mutating func persisting(_ entries: [Entry], into storage: RaftStorage, node: NodeID) throws {
        guard let first = entries.first else { return }
        var prevTerm = (try? storage.term(at: first.index.prev)) ?? Term.zero
        if first.index.prev < storage.firstIndex.prev { prevTerm = .zero }
        for e in entries {
            let h = SimNode.mix(0, e)
            if let seen = persisted[e.index]?[e.term] {
                if seen.hash != h {
                    throw Violation.broken("log matching", "\(node) has a different entry at \(e.index) in \(e.term)")
                }
                if seen.prevTerm != prevTerm && prevTerm != .zero && seen.prevTerm != .zero {
                    throw Violation.broken("log matching", "\(node): entry \(e.index)/\(e.term) follows \(prevTerm), elsewhere \(seen.prevTerm)")
                }
            } else {
                persisted[e.index, default: [:]][e.term] = (h, prevTerm)
            }
            prevTerm = e.term
        }
    }

    /// A node's commit index rose: the entries it now calls committed must agree with history.
    mutating func committed(upTo commit: LogIndex, from old: LogIndex, raft: RaftNode, node: NodeID) throws {
        var i = old.next
        while i <= commit {
            if let t = raft.term(at: i) {
                let slot = Int(i.rawValue)
                while committedTerms.count <= slot { committedTerms.append(nil) }
                if let want = committedTerms[slot] {
                    guard want == t else {
                        throw Violation.broken("committed entry lost", "\(node) commits \(i) in \(t), was committed in \(want)")
                    }
                } else {
                    committedTerms[slot] = t
                }
            }
            i = i.next
        }
        maxCommitted = max(maxCommitted, commit)
    }

    /// State-machine safety: every node reaches the same state after applying index `i`.
    mutating func applied(_ index: LogIndex, hash: UInt64, node: NodeID) throws {
        let slot = Int(index.rawValue)
        while hashAfter.count <= slot { hashAfter.append(nil) }
        if let want = hashAfter[slot] {
            guard want == hash else { throw Violation.broken("state machine safety", "\(node) applied a different history up to \(index)") }
        } else {
            hashAfter[slot] = hash
        }
    }
}
