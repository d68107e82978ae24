/// What an entry carries. `empty` is the no-op a new leader appends to commit its term.
public enum EntryType: UInt8, Sendable {
    case normal = 0
    case confChange = 1
    case empty = 2
}

/// One log entry.
public struct Entry: Equatable, Sendable {
    public var term: Term
    public var index: LogIndex
    public var type: EntryType
    public var data: [UInt8]

    public init(term: Term, index: LogIndex, type: EntryType = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.type = type
        self.data = data
    }

    /// Approximate encoded size, used for batching and flow control.
    public var sizeBytes: Int { data.count + 24 }
}

/// The state Raft needs on stable storage before it may send messages that depend on it.
public struct HardState: Equatable, Sendable {
    public var term: Term
    public var vote: NodeID?
    public var commit: LogIndex

    public init(term: Term = .zero, vote: NodeID? = nil, commit: LogIndex = .zero) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// A group's membership: voters decide elections and commits; learners only receive the log.
/// Both lists are kept sorted so that iteration (and therefore message order) is deterministic.
public struct ConfState: Equatable, Sendable, CustomStringConvertible {
    public private(set) var voters: [NodeID]
    public private(set) var learners: [NodeID]

    public init(voters: [NodeID] = [], learners: [NodeID] = []) {
        self.voters = Array(Set(voters)).sorted()
        self.learners = Array(Set(learners).subtracting(voters)).sorted()
    }

    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    public func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    public func contains(_ id: NodeID) -> Bool { isVoter(id) || isLearner(id) }
    /// Voters then learners, each sorted.
    public var allMembers: [NodeID] { voters + learners }
    /// Voters needed for a decision (an election, a commit).
    public var quorum: Int { voters.count / 2 + 1 }
    /// Whether the voters for which `member` holds are a majority.
    public func isMajority(_ member: (NodeID) -> Bool) -> Bool { voters.filter(member).count >= quorum }
    public var description: String { "voters=\(voters) learners=\(learners)" }
}

/// Identifies the log prefix a snapshot replaces, and the membership as of its last entry.
public struct SnapshotMetadata: Equatable, Sendable {
    public var index: LogIndex
    public var term: Term
    public var conf: ConfState

    public init(index: LogIndex = .zero, term: Term = .zero, conf: ConfState = ConfState()) {
        self.index = index
        self.term = term
        self.conf = conf
    }
}

/// Application state up to `metadata.index`, opaque to Raft.
public struct Snapshot: Equatable, Sendable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    public var isEmpty: Bool { metadata.index == .zero }
}

/// A linearizable read that may now be served once the state machine applied `index`.
public struct ReadState: Equatable, Sendable {
    public var index: LogIndex
    public var context: [UInt8]
    public init(index: LogIndex, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}
