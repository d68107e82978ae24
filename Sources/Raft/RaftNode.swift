/// The role a node plays in its group.
public enum RaftRole: Sendable, CustomStringConvertible {
    case follower, preCandidate, candidate, leader
    public var description: String {
        switch self {
        case .follower: return "follower"
        case .preCandidate: return "pre-candidate"
        case .candidate: return "candidate"
        case .leader: return "leader"
        }
    }
}

/// Why a proposal or request was refused. The driver retries elsewhere or later.
public enum RaftError: Error, Equatable {
    /// Only the leader accepts this; `leader` is the known leader, if any.
    case notLeader(leader: NodeID?)
    /// A leadership transfer is in progress; proposals wait until it ends.
    case transferInProgress
    /// The previous membership change has not committed yet.
    case confChangeInProgress
    /// The change would not change anything, or would leave no voters.
    case invalidConfChange
    /// Too many uncommitted entries; back off.
    case busy
    /// This node is not a member of the group (it was removed).
    case notMember
}

/// One member of one Raft group: a pure state machine with no clock, sockets, files or threads.
///
/// Inputs: `tick()`, `step(_:)`, `propose(_:)`, `proposeConfChange(_:)`, `readIndex(context:)`,
/// `transferLeadership(to:)`. Output: a `Ready` from `ready()`, which the driver handles in this
/// order — persist `snapshot`, then `entries` (truncating any conflicting suffix), then
/// `hardState` (all durably if `mustSync`), send `messages`, apply `snapshot` and
/// `committedEntries` to the state machine, serve `readStates` once applied — then calls
/// `advance(_:)`. Call `ready()` again only after `advance` (or `advanceWritten`, for a driver
/// that syncs in the background: see `Ready`).
///
/// Not thread-safe: one owner (a driver thread, actor or event loop) calls everything.
public final class RaftNode {
    public let id: NodeID
    public let group: GroupID
    let config: RaftConfig
    var rng: any RaftRandom

    public internal(set) var term: Term = .zero
    public internal(set) var vote: NodeID?
    public internal(set) var role: RaftRole = .follower
    /// The leader this node currently follows (itself when leader), if known.
    public internal(set) var leader: NodeID?
    /// This node's last leadership ended because it did not hear from a quorum for an election
    /// timeout (check-quorum), not because of a newer term or a transfer: what a driver reports
    /// as a lost quorum. Cleared when it leads again.
    public internal(set) var lostQuorum = false

    var log: RaftLog
    var tracker: ProgressTracker
    /// Membership as of `confBase.index` (the snapshot), then every configuration entry in the log.
    var confBase: (index: LogIndex, conf: ConfState)
    var confLog: [(index: LogIndex, conf: ConfState)] = []

    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Ticks since this node object was created (the leader's clock for its lease): the ticks
    /// it was given, plus those it slept through quiesced on a `MultiRaft` host (not visited).
    var tickCount: UInt64 { countedTicks &+ uncountedQuiescedTicks }
    var countedTicks: UInt64 = 0
    /// With lease reads, refuse votes for one election timeout after a restart: before the crash
    /// we may have acknowledged a heartbeat that a leader's lease counts on.
    var leaseGuardAfterRestart: Bool

    var leadTransferee: NodeID?
    /// Set once this leader started a transfer in its term: a TimeoutNow may still be in flight
    /// and its election ignores leases, so no lease reads until the term changes (or the
    /// transfer is abandoned before any TimeoutNow went out).
    var leaseRevoked = false
    /// Set once this leader sent TimeoutNow in its term: its target may campaign whenever it
    /// reads it (late, if it was paused), with a vote the others grant despite any lease.
    var timeoutNowSent = false
    /// This node's latest campaign answered a TimeoutNow (see `handedOverTerm`).
    var campaignedByTransfer = false
    /// Index of the last membership change this leader proposed (or its no-op on election).
    var pendingConfIndex: LogIndex = .zero
    var readOnly = ReadOnlyQueue()
    /// Reads received before this leader committed an entry of its term.
    var readsAwaitingCommit: [(from: NodeID, context: [UInt8])] = []

    var msgs: [Message] = []
    /// See `takeSnapshotOffer`.
    var snapshotOffer: SnapshotMetadata?
    /// See `divergedAt`.
    var divergenceReported = false
    /// Set when the leader's log disagrees with an entry this node had committed. Raft rules
    /// that out while storage keeps what it acknowledged; a group that acknowledges writes
    /// before they are durable (`sync_interval`) can get here after a power loss, when the
    /// quorum lost entries this node kept and committed, and a leader put others there. From
    /// then on the node ignores its leader's appends and the commit index of its heartbeats (it
    /// would commit the wrong entries, or claim to hold the leader's); it answers heartbeats only
    /// (the leader keeps its quorum) and keeps its election timer quiet. Its application must
    /// rebuild the group's state from the leader (`takeDivergence`).
    public internal(set) var divergedAt: LogIndex?
    /// The commit index the leader of `term` announced in its latest append to this follower
    /// (appends carry the leader's commit; heartbeats only what this node is known to hold):
    /// how far a follower has to commit to be caught up (`isCaughtUp`).
    var announcedCommit: (term: Term, index: LogIndex) = (.zero, .zero)
    /// New entries or a new commit index to send to every follower at the next `ready()`.
    var broadcastPending = false
    var readStates: [ReadState] = []
    var prevHardState: HardState

    public internal(set) var isQuiesced = false {
        didSet { if isQuiesced != oldValue { quiescenceChanged() } }
    }
    /// Ticks spent quiesced (an idle group's only per-tick state; on a `MultiRaft` host it is
    /// not even ticked then, see `hostTicks`).
    public var quiescedTicks: UInt64 { countedQuiescedTicks &+ uncountedQuiescedTicks }
    var countedQuiescedTicks: UInt64 = 0
    /// The tick count of the `MultiRaft` hosting this node (nil: standalone, ticked every tick).
    var hostTicks: HostTicks?
    /// `hostTicks.now` when this node last quiesced.
    var quiescedAtHostTick: UInt64 = 0
    /// The host's `ticking` list holds this node.
    var onTickList = false
    var idleTicks = 0

    /// Creates a node from what `storage` holds (a fresh group, or a restart after a crash).
    /// - Parameter applied: the last index the application already applied (defaults to the
    ///   snapshot index; committed entries after it are handed out again). The application must
    ///   have loaded `storage.snapshot()` (or a newer state) before. It may be above the stored
    ///   commit index (which storage may persist lazily): it counts as committed.
    public init(id: NodeID, group: GroupID = GroupID(0), storage: RaftStorage, config: RaftConfig,
                random: any RaftRandom, applied: LogIndex? = nil) {
        config.validate()
        self.id = id
        self.group = group
        self.config = config
        self.rng = random
        leaseGuardAfterRestart = config.readOnlyOption == .leaseBased
        let (hs, conf) = storage.initialState()
        log = RaftLog(storage: storage, commit: hs.commit, maxCommittedSizePerReady: config.maxCommittedSizePerReady)
        confBase = (storage.firstIndex.prev, conf)
        tracker = ProgressTracker(conf: conf)
        prevHardState = hs
        term = hs.term
        vote = hs.vote
        rebuildConfLog()
        if let applied {
            // What the state machine applied was committed, even when storage persists the commit
            // index lazily and it trails after a crash (StreamLogRaftStorage does). Entries past
            // the log's end cannot be taken as applied: they are handed out again.
            let a = min(applied, log.lastIndex)
            log.commitTo(a)
            log.appliedTo(max(a, log.applied))
        }
        becomeFollower(term: term, leader: nil)
    }

    // MARK: status

    public var commitIndex: LogIndex { log.committed }
    public var appliedIndex: LogIndex { log.applied }
    public var lastIndex: LogIndex { log.lastIndex }
    public var firstIndex: LogIndex { log.firstIndex }
    /// The active membership (the latest configuration entry in the log, committed or not).
    public var conf: ConfState { confLog.last?.conf ?? confBase.conf }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    /// Whether this node holds everything its leader committed, as far as it can tell: a
    /// leader does; a follower does when it knows a leader, has not diverged and committed up to
    /// the leader's latest announced commit of this term. A candidate, or a follower without a
    /// leader, does not (what `/healthz` reports as not current). Applying is not waited for: a
    /// follower applies only what it synced, so under load applied trails commit by a sync.
    public var isCaughtUp: Bool {
        switch role {
        case .leader: return true
        case .preCandidate, .candidate: return false
        case .follower:
            guard leader != nil, divergedAt == nil else { return false }
            return announcedCommit.term != term || log.committed >= announcedCommit.index
        }
    }
    /// The leader's view of `peer` (nil on followers or for non-members).
    public func progress(of peer: NodeID) -> Progress? { role == .leader ? tracker.progress[peer] : nil }
    /// The term of the entry at `index`, if still in the log.
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    /// Entries `[from, to)` from the log, for tests and tools.
    public func entries(from: LogIndex, to: LogIndex) -> [Entry]? { log.entries(from: from, to: to, maxBytes: .max) }
    /// The membership as of `index`, to store with a snapshot taken at `index`.
    public func confState(atIndex index: LogIndex) -> ConfState {
        confLog.last(where: { $0.index <= index })?.conf ?? confBase.conf
    }
    /// Whether this node may campaign (it is a voter of the active configuration).
    var isPromotable: Bool { conf.isVoter(id) }

    // MARK: inputs

    /// Advances logical time by one tick.
    public func tick() {
        if isQuiesced {
            // A host does not tick quiesced groups: it counts for them (`uncountedQuiescedTicks`).
            if hostTicks == nil {
                countedTicks &+= 1
                countedQuiescedTicks &+= 1
            }
            return
        }
        countedTicks &+= 1
        if role == .leader { tickLeader() } else { tickElection() }
    }

    /// Handles one message from a peer. Messages for another group or node are ignored.
    public func step(_ m: Message) {
        guard m.group == group, m.to == id, m.from != id else { return }
        if !keepsQuiesced(m) { wake() }
        guard admitTerm(m) else { return }
        switch m.body {
        case .requestVote(let r): handleRequestVote(m, r)
        case .voteResponse(let r): handleVoteResponse(m, r)
        case .appendEntries(let a): handleAppendEntries(m, a)
        case .appendResponse(let r): handleAppendResponse(m, r)
        case .heartbeat(let h): handleHeartbeat(m, h)
        case .heartbeatResponse(let r): handleHeartbeatResponse(m, r)
        case .installSnapshot(let s): handleInstallSnapshot(m, s)
        case .timeoutNow: handleTimeoutNow(m)
        case .readIndexRequest(let ctx): handleReadIndexRequest(m, ctx)
        case .readIndexResponse(let index, let ctx): handleReadIndexResponse(m, index, ctx)
        }
    }

    /// Term rules shared by all messages (§5.1): a newer term makes us a follower, an older
    /// term is stale. Returns false when the message must not be handled further.
    private func admitTerm(_ m: Message) -> Bool {
        if m.term > term {
            switch m.body {
            case .requestVote(let r):
                // A follower that hears from a live leader ignores campaigns (leader lease).
                if inLease && !r.transfer { return false }
                if !r.preVote { becomeFollower(term: m.term, leader: nil) }
            case .voteResponse(let r) where r.preVote && r.granted:
                break // A granted pre-vote carries the term we are about to campaign in.
            case .appendEntries, .heartbeat, .installSnapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: nil)
            }
            return true
        }
        if m.term < term {
            switch m.body {
            case .appendEntries, .heartbeat:
                // Tell a stale leader about the new term so it steps down.
                if config.checkQuorum || config.preVote {
                    send(to: m.from, .appendResponse(AppendResponse(index: .zero, reject: false)))
                }
            case .requestVote(let r) where r.preVote:
                send(to: m.from, .voteResponse(VoteResponse(granted: false, preVote: true)))
            default:
                break
            }
            return false
        }
        return true
    }

    /// We heard from a leader less than an election timeout ago (or just restarted).
    var inLease: Bool {
        config.checkQuorum && (leader != nil || leaseGuardAfterRestart) && electionElapsed < config.electionTimeoutTicks
    }

    // MARK: role changes

    func becomeFollower(term newTerm: Term, leader newLeader: NodeID?) {
        resetFor(term: newTerm)
        role = .follower
        leader = newLeader
    }

    func becomePreCandidate() {
        precondition(role != .leader, "a leader cannot become pre-candidate")
        role = .preCandidate
        leader = nil
        tracker.resetVotes()
    }

    func becomeCandidate() {
        precondition(role != .leader, "a leader cannot become candidate")
        resetFor(term: term.next)
        vote = id
        role = .candidate
    }

    func becomeLeader() {
        precondition(role == .candidate, "only a candidate becomes leader")
        resetFor(term: term)
        role = .leader
        leader = id
        lostQuorum = false
        for peer in conf.allMembers {
            tracker.progress[peer]?.recentActive = true
        }
        tracker.progress[id]?.becomeReplicate()
        // The no-op entry lets the new leader commit (and learn the commit index) in its term.
        appendAsLeader([Entry(term: term, index: .zero, type: .empty)])
        // No membership change until everything up to the no-op committed.
        pendingConfIndex = log.lastIndex
        broadcastAppend()
    }

    private func resetFor(term newTerm: Term) {
        if newTerm != term {
            precondition(newTerm > term, "term went backwards: \(term) -> \(newTerm)")
            term = newTerm
            vote = nil
        }
        leader = nil
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizedElectionTimeout = config.electionTimeoutTicks + rng.next(below: config.electionTimeoutTicks)
        leadTransferee = nil
        leaseRevoked = false
        timeoutNowSent = false
        tracker.resetVotes()
        readOnly.reset()
        readsAwaitingCommit = []
        let last = log.lastIndex
        for peer in conf.allMembers {
            var p = Progress(next: last.next, isLearner: conf.isLearner(peer),
                             maxInflight: config.maxInflightMsgs, maxInflightBytes: config.maxInflightBytes)
            // Our own copy counts only as far as it is durable.
            if peer == id { p.match = min(log.durable, last) }
            tracker.progress[peer] = p
        }
    }

    // MARK: ticks

    private func tickElection() {
        electionElapsed += 1
        if electionElapsed >= config.electionTimeoutTicks { leaseGuardAfterRestart = false }
        guard isPromotable, electionElapsed >= randomizedElectionTimeout else { return }
        electionElapsed = 0
        campaign(config.preVote ? .preElection : .election)
    }

    private func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        idleTicks += 1
        if electionElapsed >= config.electionTimeoutTicks {
            electionElapsed = 0
            if config.checkQuorum {
                guard tracker.quorumActive(selfID: id) else {
                    becomeFollower(term: term, leader: nil)
                    lostQuorum = true
                    return
                }
                for peer in conf.allMembers where peer != id { tracker.progress[peer]?.recentActive = false }
            }
            // A transfer that did not finish within an election timeout is abandoned.
            leadTransferee = nil
            if leaseRevoked {
                // Once TimeoutNow went out, no lease of this term can be trusted again (its
                // target may still win a forced election), so step down and let an election
                // settle the term; a stale TimeoutNow cannot win a term already decided. A
                // target that never got it cannot campaign early: the lease is sound again.
                // Without this a driver that serves under the lease (consumer delivery) would
                // stall for the rest of the term.
                if timeoutNowSent {
                    becomeFollower(term: term, leader: nil)
                    return
                }
                leaseRevoked = false
            }
            retryStalledSnapshots()
        }
        if heartbeatElapsed >= config.heartbeatTicks {
            heartbeatElapsed = 0
            if !maybeQuiesce() { broadcastHeartbeat(context: nil) }
        }
    }

    // MARK: output

    func send(to: NodeID, _ body: MessageBody, term msgTerm: Term? = nil) {
        msgs.append(Message(group: group, from: id, to: to, term: msgTerm ?? term, body: body))
    }
}
