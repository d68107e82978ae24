/// A SWIM membership node as a pure, deterministic state machine: no clock, no sockets, no
/// threads. The shell feeds it ticks, received messages and discovery answers, and carries
/// out the returned directives (send, connect, report a change). Randomness (probe order,
/// helper choice) comes from an injected seed, so a run replays exactly.
///
/// Protocol (Das, Gupta, Motivala: "SWIM", 2002; plus memberlist's push-pull):
/// - each period, probe the next member of a shuffled round-robin list with `ping`;
/// - no `ack` within `pingTimeoutTicks`: ask `indirectProbes` members to `pingReq` it;
/// - no ack by the end of the period: the member becomes `suspect`; after the suspicion
///   timeout, `dead`. A member that hears it is suspected/dead refutes with a higher
///   incarnation;
/// - changes are piggybacked on protocol messages, each `lambda * log n` times;
/// - joins and periodic anti-entropy exchange full state (`sync` / `syncReply`).
public struct SWIM: Sendable {
    public let config: GossipConfig
    public let myself: MemberID
    public internal(set) var incarnation = Incarnation(0)
    /// Ticks seen so far.
    public internal(set) var now = 0
    /// True after `leave()`: the node no longer takes part.
    public internal(set) var hasLeft = false

    struct Entry: Sendable {
        var status: MemberStatus
        /// Tick at which a suspicion turns into death.
        var suspectDeadline: Int?
        /// Tick of the last change (tombstone expiry).
        var changedAt: Int
    }

    struct Probe: Sendable {
        var target: MemberID
        var seq: UInt64
        var startedAt: Int
        var acked = false
        var indirectSent = false
    }

    struct Relay: Sendable {
        var requester: MemberID
        var seq: UInt64
        var expires: Int
    }

    var members: [MemberID: Entry] = [:]
    var rng: SplitMix64
    var probeOrder: [MemberID] = []
    var probeIndex = 0
    var probe: Probe?
    var periodStart = 0
    var periods = 0
    var relays: [UInt64: Relay] = [:]
    var nextSeq: UInt64 = 0
    var broadcasts = Broadcasts()
    /// Discovery source ("seeds", "dns:<name>") -> addresses (`host:port`).
    var discovery: [String: Set<String>] = [:]

    /// `seed` drives every random choice; `config` must be valid (`config.problem == nil`).
    public init(myself: MemberID, config: GossipConfig = GossipConfig(), seed: UInt64) {
        precondition(config.problem == nil, config.problem ?? "")
        self.myself = myself
        self.config = config
        self.rng = SplitMix64(seed: seed)
    }

    // MARK: - views

    /// This node's view, itself included.
    public var view: [MemberID: MemberStatus] {
        var v = members.mapValues(\.status)
        v[myself] = hasLeft ? .left(incarnation) : .alive(incarnation)
        return v
    }

    /// The status of `member` in this view (nil: unknown).
    public func status(of member: MemberID) -> MemberStatus? {
        member == myself ? view[myself] : members[member]?.status
    }

    /// Alive or suspect members other than this node, sorted.
    public var liveMembers: [MemberID] { members.compactMap { $0.value.status.isLive ? $0.key : nil }.sorted() }

    /// Live members including this node: the n in the log n bounds.
    var clusterSize: Int { members.values.reduce(1) { $0 + ($1.status.isLive ? 1 : 0) } }

    var suspicionTicks: Int { config.periodTicks * config.suspicionMultiplier * GossipConfig.scale(clusterSize) }
    var maxTransmits: Int { config.retransmitMultiplier * GossipConfig.scale(clusterSize) }

    /// The full-state message a shell sends over a freshly opened transport (join).
    public func joinMessage() -> GossipMessage {
        GossipMessage(from: myself, incarnation: incarnation, kind: .sync, updates: fullState())
    }

    func fullState() -> [MemberUpdate] {
        [MemberUpdate(member: myself, status: view[myself]!)]
            + members.keys.sorted().map { MemberUpdate(member: $0, status: members[$0]!.status) }
    }

    // MARK: - leave

    /// Graceful leave: tells every live member directly, then stops taking part.
    public mutating func leave() -> [GossipDirective] {
        guard !hasLeft else { return [] }
        hasLeft = true
        let note = [MemberUpdate(member: myself, status: .left(incarnation))]
        return liveMembers.map {
            .send(GossipMessage(from: myself, incarnation: incarnation, kind: .syncReply, updates: note), to: $0)
        }
    }

    // MARK: - merging

    /// Applies one update to the view; appends directives for what changed.
    mutating func apply(_ member: MemberID, _ status: MemberStatus, into out: inout [GossipDirective]) {
        if member == myself {
            refute(status)
            return
        }
        if member.isOtherBoot(of: myself) {
            // An earlier boot of this very server: it is gone, whatever others still think.
            record(member, status.isLive ? .dead(status.incarnation) : status, into: &out)
            return
        }
        if let e = members[member] {
            guard status.supersedes(e.status) else { return }
        }
        record(member, status, into: &out)
        if status.isLive {
            // A newer boot of a known server retires the older one at once.
            for other in members.keys.sorted() where other.isOtherBoot(of: member) {
                if let s = members[other]?.status, s.isLive { record(other, .dead(s.incarnation), into: &out) }
            }
        }
    }

    /// Stores a status that supersedes the current one, queues it for dissemination and
    /// reports it.
    mutating func record(_ member: MemberID, _ status: MemberStatus, into out: inout [GossipDirective]) {
        let previous = members[member]?.status
        if let p = previous, !status.supersedes(p) { return }
        let deadline: Int? = if case .suspect = status { now + suspicionTicks } else { nil }
        members[member] = Entry(status: status, suspectDeadline: deadline, changedAt: now)
        broadcasts.enqueue(member, status)
        out.append(.changed(MemberChange(member: member, previous: previous, status: status)))
        if previous == nil || !(previous!.isLive), status.isLive {
            // Newly live: probe it soon (random position in the round) and connect to it.
            let at = probeIndex + rng.next(below: max(1, probeOrder.count - probeIndex + 1))
            probeOrder.insert(member, at: min(at, probeOrder.count))
            out.append(.connect(address: member.address))
        }
    }

    /// Someone says this node is suspect, dead or left: outbid it (SWIM section 4.2).
    mutating func refute(_ claim: MemberStatus) {
        guard !hasLeft else { return }
        // rank > 0: a suspicion or death to outbid; alive with a higher incarnation: our own
        // claim from an earlier life of this identity, to move past.
        guard (claim.rank > 0 && claim.incarnation >= incarnation) || claim.incarnation > incarnation else { return }
        // Saturates: a forged claim at UInt64.max cannot be outbid, but must not wrap to 0.
        let next = claim.incarnation.rawValue == .max ? .max : claim.incarnation.rawValue + 1
        guard next > incarnation.rawValue else { return }
        incarnation = Incarnation(next)
        broadcasts.enqueue(myself, .alive(incarnation))
    }

    /// A message for `to`, with piggybacked updates; `to`'s own status goes first when this
    /// view holds it suspect or dead (so it can refute at once).
    mutating func message(_ kind: GossipMessage.Kind, to: MemberID) -> GossipMessage {
        var updates = broadcasts.take(limit: config.maxPiggyback, maxTransmits: maxTransmits)
        if let s = members[to]?.status, s.rank > 0, !updates.contains(where: { $0.member == to }) {
            updates.insert(MemberUpdate(member: to, status: s), at: 0)
        }
        return GossipMessage(from: myself, incarnation: incarnation, kind: kind, updates: updates)
    }

    mutating func newSeq() -> UInt64 {
        nextSeq &+= 1
        return nextSeq
    }
}
