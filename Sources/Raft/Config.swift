/// How a leader answers reads.
public enum ReadOnlyOption: Sendable {
    /// ReadIndex: confirm leadership with a heartbeat round to a quorum before answering.
    case safe
    /// Leader lease: answer at once while a quorum acknowledged a heartbeat sent less than an
    /// election timeout ago. Needs `checkQuorum` and assumes all nodes tick at the same rate.
    case leaseBased
}

/// Tunables of one Raft group. Times are in ticks; the driver decides how long a tick is.
public struct RaftConfig: Sendable {
    /// A follower campaigns after a random timeout in [electionTimeoutTicks, 2*electionTimeoutTicks).
    public var electionTimeoutTicks: Int = 10
    /// A leader sends heartbeats every this many ticks. Must be < electionTimeoutTicks.
    public var heartbeatTicks: Int = 1
    /// Max AppendEntries in flight to one follower in replicate state (pipelining window).
    public var maxInflightMsgs: Int = 64
    /// Max bytes of entries in flight to one follower (0 = unlimited).
    public var maxInflightBytes: Int = 0
    /// Max bytes of entries in one AppendEntries (at least one entry is always sent).
    public var maxSizePerMsg: Int = 1 << 20
    /// Max bytes of committed entries handed out in one Ready (at least one entry).
    public var maxCommittedSizePerReady: Int = 8 << 20
    /// Run a pre-election first so a partitioned node does not bump terms and disrupt a leader.
    public var preVote: Bool = true
    /// A leader that has not heard from a quorum in an election timeout steps down, and
    /// followers that heard from a leader within an election timeout ignore vote requests.
    public var checkQuorum: Bool = true
    public var readOnlyOption: ReadOnlyOption = .safe
    /// A leader whose group is fully replicated and idle quiesces after this many idle ticks
    /// (nil disables quiescence). Followers quiesce on the leader's quiesce heartbeat.
    public var quiesceAfterIdleTicks: Int? = nil
    /// Max proposals (entries) buffered in the unstable log before `propose` reports `.busy`.
    public var maxUncommittedEntries: Int = 100_000
    /// The application transfers snapshot data itself (a stream copied in chunks): a follower
    /// offered a snapshot it needs does not install or acknowledge it, it records an offer
    /// (`takeSnapshotOffer`) and stays behind until the application installed the state into
    /// storage and restarted the node. So it never counts as holding entries it has no data for.
    public var applicationInstallsSnapshots: Bool = false

    public init() {}

    func validate() {
        precondition(electionTimeoutTicks > heartbeatTicks && heartbeatTicks > 0, "heartbeat must be shorter than election timeout")
        precondition(maxInflightMsgs > 0 && maxSizePerMsg > 0, "flow control limits must be positive")
        precondition(readOnlyOption == .safe || checkQuorum, "lease reads require checkQuorum")
    }
}

/// A seedable random source; every random choice in a Raft node comes from one of these.
public protocol RaftRandom {
    /// A uniformly random integer in 0..<upperBound.
    mutating func next(below upperBound: Int) -> Int
}

/// SplitMix64: tiny, fast and good enough for timeouts and simulations.
public struct SplitMix64: RaftRandom, RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next(below upperBound: Int) -> Int {
        precondition(upperBound > 0)
        return Int(next() % UInt64(upperBound))
    }
}
