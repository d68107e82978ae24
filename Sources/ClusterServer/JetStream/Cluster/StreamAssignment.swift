import Foundation

/// One stream as the meta group placed it: its config, the servers holding a replica, and the
/// Raft group id of its log. Every node holds the same assignments (they are the meta state).
struct StreamAssignment {
    var config: StreamConfig
    var peers: [String]
    var group: UInt64
    var created: Int64

    var json: [String: Any] {
        ["config": config.json, "peers": peers, "group": group, "created": created]
    }

    static func decode(_ o: JSONObject) throws -> StreamAssignment {
        guard let cfgObj = try o.object("config", typeName: "StreamConfig"),
              let peers = o.fields["peers"] as? [String], let group = try o.uint64("group") else {
            throw JSAPIError.badRequest("malformed stream assignment")
        }
        var cfg = try StreamConfig.decode(cfgObj)
        try cfg.normalize(clustered: true)
        return StreamAssignment(config: cfg, peers: peers, group: group, created: try o.int64("created") ?? 0)
    }
}

/// Placement: the `replicas` least-loaded servers (fewest replicas held, then name), so
/// streams spread evenly; the first one is asked to campaign, which spreads leaders too.
enum Placement {
    static func choose(replicas: Int, among servers: [String], assignments: [StreamAssignment]) -> [String]? {
        guard replicas >= 1, replicas <= servers.count else { return nil }
        var load: [String: Int] = [:]
        var leads: [String: Int] = [:]
        for a in assignments {
            for p in a.peers { load[p, default: 0] += 1 }
            if let first = a.peers.first { leads[first, default: 0] += 1 }
        }
        let byLoad = servers.sorted { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }
        var chosen = Array(byLoad.prefix(replicas))
        // The preferred leader: the chosen server leading the fewest streams.
        if let best = chosen.min(by: { (leads[$0] ?? 0, $0) < (leads[$1] ?? 0, $1) }), let i = chosen.firstIndex(of: best) {
            chosen.swapAt(0, i)
        }
        return chosen
    }
}
