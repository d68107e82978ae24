import Foundation
import Raft

/// One stream as the meta group placed it: its config, the servers that should hold a replica
/// (names and the Raft ids of their stores), and the Raft group id of its log. Every node holds
/// the same assignments (they are the meta state).
struct StreamAssignment {
    /// The account whose stream this is. Each account's JetStream has its own meta log, so
    /// this names the log's own account; logs written before accounts were clustered have
    /// no such field and mean `$G`.
    var account: String
    var config: StreamConfig
    /// Server names, parallel to `ids`; the first is the preferred leader.
    var peers: [String]
    var group: UInt64
    var created: Int64
    /// The Raft ids the stream's group should have as voters (its leader moves it there).
    var ids: [NodeID]
    /// The voters the group was created with: only these start it from a bootstrap
    /// configuration; any other replica starts empty and waits to be added by the leader.
    var initial: [NodeID]

    init(account: String = globalAccountName, config: StreamConfig, peers: [String], ids: [NodeID], group: UInt64,
         created: Int64, initial: [NodeID]? = nil) {
        self.account = account
        self.config = config
        self.peers = peers
        self.ids = ids
        self.group = group
        self.created = created
        self.initial = initial ?? ids
    }

    var json: [String: Any] {
        ["account": account, "config": config.json, "peers": peers, "group": group, "created": created,
         "ids": ids.map(Self.hex), "initial": initial.map(Self.hex)]
    }

    /// Raft ids travel as hex strings: JSON numbers lose precision above 2^53.
    static func hex(_ id: NodeID) -> String { String(id.rawValue, radix: 16) }
    static func parseID(_ s: String) -> NodeID? { UInt64(s, radix: 16).map(NodeID.init) }

    static func decode(_ o: JSONObject) throws -> StreamAssignment {
        guard let cfgObj = try o.object("config", typeName: "StreamConfig"),
              let peers = o.fields["peers"] as? [String], let group = try o.uint64("group") else {
            throw JSAPIError.badRequest("malformed stream assignment")
        }
        let cfg = try StreamConfig.decodeNormalized(cfgObj, clustered: true)
        // Assignments written before storage ids carry names only: their ids are the legacy ones.
        let ids = try (o.stringArray("ids")).map { try $0.map(Self.id) } ?? peers.map { NodeIdentity.nodeID(name: $0, storageID: "") }
        let initial = try (o.stringArray("initial")).map { try $0.map(Self.id) } ?? ids
        guard ids.count == peers.count else { throw JSAPIError.badRequest("malformed stream assignment") }
        let account = try o.string("account") ?? globalAccountName
        return StreamAssignment(account: account, config: cfg, peers: peers, ids: ids, group: group, created: try o.int64("created") ?? 0, initial: initial)
    }

    private static func id(_ s: String) throws -> NodeID {
        guard let id = parseID(s) else { throw JSAPIError.badRequest("malformed stream assignment") }
        return id
    }
}

/// Placement: the `replicas` least-loaded servers (fewest replicas held, then name), so
/// streams spread evenly; the first one is asked to campaign, which spreads leaders too.
enum Placement {
    /// Replicas held per server, and how many streams prefer each server as leader.
    static func counts(_ assignments: [StreamAssignment]) -> (load: [String: Int], leads: [String: Int]) {
        var load: [String: Int] = [:]
        var leads: [String: Int] = [:]
        for a in assignments {
            for p in a.peers { load[p, default: 0] += 1 }
            if let first = a.peers.first { leads[first, default: 0] += 1 }
        }
        return (load, leads)
    }

    static func choose(replicas: Int, among servers: [String], assignments: [StreamAssignment]) -> [String]? {
        let c = counts(assignments)
        return choose(replicas: replicas, among: servers, load: c.load, leads: c.leads)
    }

    /// `load` and `leads` as `counts` gives them (kept up to date by `AssignmentTable`, so a
    /// create does not recount every stream).
    static func choose(replicas: Int, among servers: [String], load: [String: Int], leads: [String: Int]) -> [String]? {
        guard replicas >= 1, replicas <= servers.count else { return nil }
        let byLoad = servers.sorted { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }
        var chosen = Array(byLoad.prefix(replicas))
        // The preferred leader: the chosen server leading the fewest streams.
        if let best = chosen.min(by: { (leads[$0] ?? 0, $0) < (leads[$1] ?? 0, $1) }), let i = chosen.firstIndex(of: best) {
            chosen.swapAt(0, i)
        }
        return chosen
    }

    /// What the streams of `kind` with a replica on `server` reserve there (their `max_bytes`,
    /// saturating): the meta leader's view of a server's reservations, for its `max_*_store`.
    static func reserved<S: Sequence>(on server: String, _ kind: StreamConfig.Storage, in assignments: S) -> Int64
        where S.Element == StreamAssignment {
        var total: Int64 = 0
        for a in assignments where a.config.storage == kind && a.config.maxBytes > 0 && a.peers.contains(server) {
            total = saturatingAdd(total, a.config.maxBytes)
        }
        return total
    }

    /// The new replica set of a stream whose replicas change (a server removed, a peer
    /// removed, a new `num_replicas`): the current peers that may stay keep their order (the
    /// preferred leader stays first), shrinking drops from the end, and growing adds the
    /// least-loaded other servers. nil when there are not enough servers.
    static func resize(_ current: [String], replicas: Int, among servers: [String], excluding: Set<String>,
                       assignments: [StreamAssignment]) -> [String]? {
        resize(current, replicas: replicas, among: servers, excluding: excluding, load: counts(assignments).load)
    }

    static func resize(_ current: [String], replicas: Int, among servers: [String], excluding: Set<String>,
                       load: [String: Int]) -> [String]? {
        let allowed = Set(servers).subtracting(excluding)
        var kept = current.filter(allowed.contains)
        if kept.count >= replicas { return replicas >= 1 ? Array(kept.prefix(replicas)) : nil }
        let candidates = allowed.subtracting(kept).sorted { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }
        guard kept.count + candidates.count >= replicas else { return nil }
        kept += candidates.prefix(replicas - kept.count)
        return kept
    }
}
