import Raft

/// One step a group's leader takes toward the membership it should have.
enum MembershipStep: Equatable {
    /// Replicate (in the meta group) which server name a Raft id belongs to, before adding it.
    case recordName(NodeID, String)
    /// A single-server configuration change (Raft refuses a second one while one is uncommitted).
    case change(ConfChange)
    /// Hand leadership to `NodeID` first: this leader is about to be removed.
    case transferLeadership(NodeID)
}

/// What the meta leader knows when it decides the next membership step. Pure data: the driver
/// (`JetStreamCluster+Membership`) fills it from the Raft node, the hellos and the meta state.
struct MetaMembershipView {
    /// The active configuration (latest configuration entry, committed or not).
    var conf: ConfState
    /// A configuration change is appended but not committed yet.
    var changePending: Bool
    /// This node (the leader).
    var leader: NodeID
    /// Replicated: the server name of each Raft id.
    var names: [NodeID: String]
    /// Servers reachable now (self included), each with the Raft id of its current store.
    var live: [String: NodeID]
    /// Leader's view of each member's log (match index).
    var match: [NodeID: LogIndex]
    /// The leader's commit index: a learner holding it is caught up.
    var commit: LogIndex
    /// Replicated: identities removed by an operator (`SERVER.REMOVE`), never re-added.
    var removed: Set<NodeID>
    /// Members not reachable, with how long (in ticks) they have been unreachable.
    var unreachableTicks: [NodeID: Int] = [:]
    /// Remove a voter unreachable this long (nil: never remove by itself).
    var autoRemoveAfterTicks: Int?
}

/// Decides how the meta group follows the route mesh, one change at a time:
///
/// 1. an operator-removed identity still in the configuration is removed;
/// 2. a caught-up learner first displaces an older identity of the same server name (a store
///    that was replaced), then becomes a voter — so two voters never share one name, and the
///    replacement is a learner until it holds the log;
/// 3. a learner whose server now runs with another store (replaced again) is dropped;
/// 4. a reachable server whose current identity is not a member joins as a learner (its name is
///    replicated first, so every node can route to it and show it);
/// 5. optionally, a voter unreachable for longer than the configured time is removed.
enum MetaMembershipPlanner {
    static func next(_ v: MetaMembershipView) -> MembershipStep? {
        guard !v.changePending else { return nil }
        // 1. Operator removals (a leader removing itself steps down once it commits).
        if let id = v.conf.allMembers.first(where: { v.removed.contains($0) }) {
            if v.conf.voters == [id] { return nil }
            if id == v.leader, let to = bestOther(v.conf.voters, except: id, match: v.match) { return .transferLeadership(to) }
            return .change(ConfChange(.remove, id))
        }
        // 2. Caught-up learners of a live server.
        for l in v.conf.learners {
            guard let name = v.names[l], v.live[name] == l, (v.match[l] ?? .zero) >= v.commit else { continue }
            if let old = v.conf.voters.first(where: { $0 != l && v.names[$0] == name }) {
                if old == v.leader { continue } // cannot be: the leader runs the live store
                return .change(ConfChange(.remove, old))
            }
            return .change(ConfChange(.addVoter, l))
        }
        // 3. Learners of a store that is gone (the server came back with another one).
        for l in v.conf.learners {
            if let name = v.names[l], let current = v.live[name], current != l { return .change(ConfChange(.remove, l)) }
        }
        // 4. Reachable servers that are not members with their current store.
        for name in v.live.keys.sorted() {
            guard let id = v.live[name], !v.conf.contains(id), !v.removed.contains(id) else { continue }
            if v.names[id] != name { return .recordName(id, name) }
            return .change(ConfChange(.addLearner, id))
        }
        // Names of bootstrap members (they joined without a name entry).
        for id in v.conf.allMembers where v.names[id] == nil {
            if let name = v.live.first(where: { $0.value == id })?.key { return .recordName(id, name) }
        }
        // 5. Auto-removal of long-unreachable voters, never below one voter.
        if let after = v.autoRemoveAfterTicks, v.conf.voters.count > 1 {
            for id in v.conf.voters where id != v.leader && (v.unreachableTicks[id] ?? 0) >= after {
                return .change(ConfChange(.remove, id))
            }
        }
        return nil
    }

    static func bestOther(_ voters: [NodeID], except: NodeID, match: [NodeID: LogIndex]) -> NodeID? {
        voters.filter { $0 != except }.max { (match[$0] ?? .zero, $1) < (match[$1] ?? .zero, $0) }
    }
}

/// What a stream's leader knows when it moves its group toward the replicas the meta group
/// assigned (a replaced server, a removed peer, a new `num_replicas`).
struct StreamMembershipView {
    var conf: ConfState
    var changePending: Bool
    var leader: NodeID
    /// The Raft ids the assignment wants as voters.
    var target: [NodeID]
    var match: [NodeID: LogIndex]
    var commit: LogIndex
    /// The index each learner must hold to be promoted: the commit index when the leader first
    /// saw it as a learner (default: the commit index now). Under a steady publish rate a
    /// learner's match trails the moving commit index by what is in flight, so "equal to the
    /// commit index now" may never be sampled; holding everything committed before it joined
    /// means it streams the rest. A learner that cannot get the log (compacted past it) never
    /// reaches it, so it is never promoted.
    var catchUpIndex: [NodeID: LogIndex] = [:]
    /// Members whose server runs another store now (a replaced disk): they can never vote again.
    var gone: Set<NodeID> = []
}

/// Moves a stream's group to its target one change at a time, always adding before removing:
/// a new replica is a learner until it holds the committed log, then a voter; only when every
/// target is a voter are the others removed (the leader hands over first if it is one of them).
/// So a replacement never lowers the replication below what it was, and a learner that cannot
/// catch up (a log compacted past it) holds the old replica in place rather than losing it.
/// The exception is a voter that is gone for good (its server came back with another store): it
/// is removed first, before any learner is promoted. Kept, it only raises the quorum — with it
/// and the promoted replacement the group has four voters of which it is one, so one more lost
/// member stops the group for good (chaos: a replaced store wiped again in that window left two
/// of four voters).
enum StreamMembershipPlanner {
    static func next(_ v: StreamMembershipView) -> MembershipStep? {
        guard !v.changePending, !v.target.isEmpty else { return nil }
        let target = Set(v.target)
        for l in v.conf.learners where !target.contains(l) { return .change(ConfChange(.remove, l)) }
        if v.conf.voters.count > 1, let dead = v.conf.voters.first(where: { v.gone.contains($0) && !target.contains($0) && $0 != v.leader }) {
            return .change(ConfChange(.remove, dead))
        }
        for l in v.conf.learners where (v.match[l] ?? .zero) >= (v.catchUpIndex[l] ?? v.commit) {
            return .change(ConfChange(.addVoter, l))
        }
        if let add = v.target.first(where: { !v.conf.contains($0) }) { return .change(ConfChange(.addLearner, add)) }
        guard target.allSatisfy(v.conf.isVoter) else { return nil } // a learner still catching up
        let extra = v.conf.voters.filter { !target.contains($0) }
        guard let first = extra.first else { return nil }
        if extra.contains(v.leader) {
            // Any target voter that holds entries: the transfer itself catches it up first.
            let to = v.target.filter { v.conf.isVoter($0) && (v.match[$0] ?? .zero) > .zero }.max { (v.match[$0] ?? .zero, $1) < (v.match[$1] ?? .zero, $0) }
            return to.map { .transferLeadership($0) }
        }
        return .change(ConfChange(.remove, first))
    }
}
