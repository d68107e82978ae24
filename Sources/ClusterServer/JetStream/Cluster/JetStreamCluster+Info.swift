import Foundation
import Raft

/// The `cluster` block of stream and consumer info: who leads, since when, and how each other
/// replica is doing as this node sees it.
extension JetStreamCluster {
    /// Stream info as seen from here: the local replica's state when there is one.
    func info(for a: StreamAssignment) -> [String: Any] {
        var info: [String: Any]
        if let s = js.streams[a.config.name] {
            info = s.infoJSON()
        } else {
            info = ["config": a.config.json, "created": JSTime.format(a.created), "ts": JSTime.format(JSTime.nowNanos()),
                    "state": ["messages": 0, "bytes": 0, "first_seq": 0, "first_ts": JSTime.format(0), "last_seq": 0,
                              "last_ts": JSTime.format(0), "consumer_count": 0]]
        }
        info["cluster"] = clusterInfo(a)
        return info
    }

    /// The `cluster` block of stream info: leader and each other replica's lag behind it.
    func clusterInfo(_ a: StreamAssignment) -> [String: Any] {
        var o: [String: Any] = ["name": js.server.routeManager?.clusterName ?? ""]
        guard let r = replicas[a.config.name], let node = host.node(GroupID(a.group)) else {
            o["replicas"] = a.peers.map { ["name": $0, "current": false, "active": 0] as [String: Any] }
            return o
        }
        if let l = node.leader, let name = host.name(of: l) { o["leader"] = name }
        if r.isLeader { o["leader_since"] = JSTime.format(r.leaderSinceNanos) }
        o["raft_group"] = "S-\(a.group)"
        let live = liveIdentities
        o["replicas"] = zip(a.peers, a.ids).filter { $0.0 != (o["leader"] as? String) }
            .map { replicaEntry($0.0, $0.1, node: node, leading: r.isLeader, live: live) }
        return o
    }

    /// One peer of a stream as stream info and leader advisories list it: `current` and `lag`
    /// from the leader's progress, else only whether it is this node; `active`, the time since
    /// that server was last heard from (nanoseconds, as nats-server). A peer silent for
    /// `silentAfterTicks` or whose route is down is not current however small its lag (an idle
    /// stream's lag stays 0 when a replica dies) and is `offline`. `live`: `liveIdentities`.
    func replicaEntry(_ peer: String, _ id: NodeID, node: RaftNode, leading: Bool, live: [String: NodeID]) -> [String: Any] {
        var d: [String: Any] = ["name": peer, "peer": StreamAssignment.hex(id), "active": peer == myName ? 0 : activeNanos(peer)]
        let reachable = peer == myName || heardRecently(peer, id, live: live)
        if !reachable { d["offline"] = true }
        if leading, peer != myName, let pr = node.progress(of: id) {
            let lag = node.lastIndex - pr.match
            d["current"] = lag == 0 && reachable
            d["lag"] = lag
        } else {
            d["current"] = peer == myName
        }
        return d
    }

    /// Ten hellos missed (nats-server's `lostQuorumInterval` is ten heartbeats, 10 s).
    static let silentAfterTicks = 100

    /// `server` runs store `id` over a connected route and was heard within `silentAfterTicks`.
    func heardRecently(_ server: String, _ id: NodeID, live: [String: NodeID]) -> Bool {
        live[server] == id && membership.heardAtTick[server].map { ticks - $0 < Self.silentAfterTicks } == true
    }

    /// Nanoseconds since `server`'s latest hello arrived; 0 when none has (as nats-server for a
    /// peer never heard from).
    func activeNanos(_ server: String) -> Int {
        guard let at = membership.heardAtTick[server] else { return 0 }
        return (ticks - at) * 100_000_000
    }
}
