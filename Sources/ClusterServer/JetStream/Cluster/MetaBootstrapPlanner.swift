import Raft

/// What a node whose store has no meta log yet knows when it decides how to start its meta
/// group. Pure data: `JetStreamCluster+Bootstrap` fills it from the route snapshot, the hellos
/// and this store's promise.
struct MetaBootstrapView {
    /// A connected peer: its hello (nil until it said one) and whether it is a configured seed.
    struct Peer {
        var hello: PeerHello?
        var isSeed: Bool
    }

    /// This node's Raft id.
    var me: NodeID
    /// The electorate: distinct configured seed servers, plus this node when it is not one.
    var electorate: Int
    /// This node is one of the configured seeds (else it counts as an extra electorate member).
    var selfIsSeed: Bool
    /// Every configured seed is up (connected, or this node).
    var allSeedsUp: Bool
    /// Every connected peer, by server name.
    var peers: [String: Peer]
    /// The bootstrap configuration this store promised (durably), if any.
    var promise: [NodeID]?
    /// How long (ticks) a majority of the electorate, but not all seeds, has been up; nil while not.
    var majorityUpTicks: Int?
    /// How long a majority waits for the missing seeds before it bootstraps without them.
    var graceTicks: Int
}

/// How a node without a meta log starts its meta group.
enum MetaBootstrapDecision: Equatable {
    /// Not yet (a hello missing, too few seeds, no majority for the promise yet).
    case wait
    /// Start from a peer's bootstrap configuration that lists this node.
    case adopt([NodeID])
    /// A meta group exists without this node: start empty and wait to be added.
    case join
    /// Promise (durably, then announce in hellos) to bootstrap with exactly this configuration.
    case promise([NodeID])
    /// A majority of the electorate promised this configuration, which lists this node: start it.
    case bootstrap([NodeID])
}

/// Decides the first start of the meta group so that at most one bootstrap configuration ever
/// starts, even when some seeds are down:
///
/// 1. a peer runs a meta group whose bootstrap lists this node: *adopt* it (this store never
///    voted, so it is exactly a voter that was offline since then);
/// 2. a peer runs a meta group without this node: *join* empty, to be added by its leader;
/// 3. this store promised a configuration: *bootstrap* it once a majority of the electorate
///    (the configured seeds) promised the same one;
/// 4. a peer promised one: *promise* the same (the one most peers promised; ties: smallest);
/// 5. every seed is up, or a majority has been up for the grace period: the node with the
///    smallest Raft id among itself and its peers *promises* itself plus every connected peer.
///
/// Each store promises at most once and durably, and two majorities of one electorate share a
/// member, so two different configurations can never both gather a majority: no two disjoint
/// meta groups. Every seed must list the same seeds (as etcd's initial cluster).
enum MetaBootstrapPlanner {
    static func next(_ v: MetaBootstrapView) -> MetaBootstrapDecision {
        // Every connected peer's Raft id is needed (the voters, and who is smallest).
        var hellos: [(name: String, hello: PeerHello, isSeed: Bool)] = []
        for (name, p) in v.peers {
            guard let h = p.hello else { return .wait }
            hellos.append((name, h, p.isSeed))
        }
        hellos.sort { $0.name < $1.name }
        // 1. and 2.: a meta group already runs.
        if let boot = hellos.first(where: { $0.hello.meta && $0.hello.boot.contains(v.me) })?.hello.boot { return .adopt(boot) }
        if hellos.contains(where: { $0.hello.meta }) { return .join }
        // 3. Our promise: start once a majority of the electorate holds it.
        if let mine = v.promise {
            let holders = 1 + hellos.filter { $0.isSeed && $0.hello.promise == mine }.count
            return holders * 2 > v.electorate && mine.contains(v.me) ? .bootstrap(mine) : .wait
        }
        // 4. Follow a peer's promise.
        var offered: [[NodeID]: Int] = [:]
        for h in hellos where !h.hello.promise.isEmpty { offered[h.hello.promise, default: 0] += 1 }
        let best = offered.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.lexicographicallyPrecedes($1.key) }
        if let first = best.first { return .promise(first.key) }
        // 5. Propose: the smallest id only, so concurrent proposals are rare (they stay safe).
        // This node is always in the electorate (a seed, or counted extra).
        let seedsUp = 1 + hellos.filter(\.isSeed).count
        let majorityLongEnough = seedsUp * 2 > v.electorate && (v.majorityUpTicks ?? 0) >= v.graceTicks
        guard v.allSeedsUp || majorityLongEnough else { return .wait }
        let ids = ([v.me] + hellos.map(\.hello.id)).sorted()
        return ids.first == v.me ? .promise(ids) : .wait
    }
}
