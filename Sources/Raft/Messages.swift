/// A message between two members of one group. The driver delivers it to `to`'s `RaftNode` for
/// `group` by calling `step(_:)`; delivery may be lost, duplicated or reordered.
public struct Message: Equatable, Sendable {
    public var group: GroupID
    public var from: NodeID
    public var to: NodeID
    /// The sender's term (for pre-votes: the term the sender would campaign in).
    public var term: Term
    public var body: MessageBody

    public init(group: GroupID, from: NodeID, to: NodeID, term: Term, body: MessageBody) {
        self.group = group
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }
}

/// The kinds of messages, each with its own payload and its own handler in `RaftNode`.
public enum MessageBody: Equatable, Sendable {
    case requestVote(VoteRequest)
    case voteResponse(VoteResponse)
    case appendEntries(AppendEntries)
    case appendResponse(AppendResponse)
    case heartbeat(Heartbeat)
    case heartbeatResponse(HeartbeatResponse)
    case installSnapshot(Snapshot)
    /// Leadership transfer: campaign now, skipping pre-vote and the leader lease.
    case timeoutNow
    /// A follower forwards a read to the leader.
    case readIndexRequest(context: [UInt8])
    /// The leader's answer: the read may be served once `index` is applied.
    case readIndexResponse(index: LogIndex, context: [UInt8])

    /// A short name for logs and fault schedules.
    public var name: String {
        switch self {
        case .requestVote(let v): return v.preVote ? "PreVote" : "Vote"
        case .voteResponse(let v): return v.preVote ? "PreVoteResp" : "VoteResp"
        case .appendEntries: return "App"
        case .appendResponse: return "AppResp"
        case .heartbeat: return "Heartbeat"
        case .heartbeatResponse: return "HeartbeatResp"
        case .installSnapshot: return "Snap"
        case .timeoutNow: return "TimeoutNow"
        case .readIndexRequest: return "ReadIndex"
        case .readIndexResponse: return "ReadIndexResp"
        }
    }
}

public struct VoteRequest: Equatable, Sendable {
    public var lastLogIndex: LogIndex
    public var lastLogTerm: Term
    public var preVote: Bool
    /// Sent because of a leadership transfer: voters ignore their leader lease.
    public var transfer: Bool
    public init(lastLogIndex: LogIndex, lastLogTerm: Term, preVote: Bool, transfer: Bool) {
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
        self.preVote = preVote
        self.transfer = transfer
    }
}

public struct VoteResponse: Equatable, Sendable {
    public var granted: Bool
    public var preVote: Bool
    public init(granted: Bool, preVote: Bool) {
        self.granted = granted
        self.preVote = preVote
    }
}

public struct AppendEntries: Equatable, Sendable {
    public var prevLogIndex: LogIndex
    public var prevLogTerm: Term
    public var entries: [Entry]
    public var commit: LogIndex
    public init(prevLogIndex: LogIndex, prevLogTerm: Term, entries: [Entry], commit: LogIndex) {
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.entries = entries
        self.commit = commit
    }
}

public struct AppendResponse: Equatable, Sendable {
    /// On success the follower's matching last index; on rejection the rejected prevLogIndex.
    public var index: LogIndex
    public var reject: Bool
    /// Fast back-off hint on rejection: the follower's last index whose term is <= the leader's
    /// prevLogTerm, and that term. The leader skips a whole conflicting term per round trip.
    public var hintIndex: LogIndex
    public var hintTerm: Term
    public init(index: LogIndex, reject: Bool, hintIndex: LogIndex = .zero, hintTerm: Term = .zero) {
        self.index = index
        self.reject = reject
        self.hintIndex = hintIndex
        self.hintTerm = hintTerm
    }
}

public struct Heartbeat: Equatable, Sendable {
    /// min(follower's match, leader commit): always safe for the follower to commit.
    public var commit: LogIndex
    /// The ReadIndex request this round confirms, if any.
    public var context: [UInt8]?
    /// The leader's tick count when sent; echoed so the leader can extend its lease.
    public var round: UInt64
    /// The group is idle: followers may stop ticking until the next message.
    public var quiesce: Bool
    public init(commit: LogIndex, context: [UInt8]? = nil, round: UInt64 = 0, quiesce: Bool = false) {
        self.commit = commit
        self.context = context
        self.round = round
        self.quiesce = quiesce
    }
}

public struct HeartbeatResponse: Equatable, Sendable {
    public var context: [UInt8]?
    public var round: UInt64
    public init(context: [UInt8]? = nil, round: UInt64 = 0) {
        self.context = context
        self.round = round
    }
}
