import Raft

/// Leadership handover: on a graceful stop every group led here goes to its best successor, and
/// `STREAM.LEADER.STEPDOWN` / `META.LEADER.STEPDOWN` pick their target with the same rules.
extension JetStreamCluster {
    /// Starts a leadership transfer for every group led here that has a successor
    /// (`bestFollower`); returns those groups.
    func handOffLeaderships() -> [GroupID] {
        let staying = stayingPeers
        return host.ledGroups().filter { gid in
            guard let node = host.node(gid), let target = bestFollower(node, among: staying) else { return false }
            return (try? host.transferLeadership(gid, to: target)) != nil
        }
    }

    /// How many of `groups` this node still leads with a successor to hand them to: a stop
    /// waits for these only.
    func stillToHandOver(_ groups: [GroupID]) -> Int {
        let staying = stayingPeers
        return groups.filter { host.node($0).map { $0.role == .leader && bestFollower($0, among: staying) != nil } ?? false }.count
    }

    /// How many of `groups` this node still leads.
    func stillLed(_ groups: [GroupID]) -> Int {
        groups.filter { host.node($0)?.role == .leader }.count
    }

    /// `$JS.API.META.LEADER.STEPDOWN`: hand the meta leadership to the voter `body`'s placement
    /// names, else to the most caught-up one.
    func metaStepDown(body: [UInt8], reply: String, type: String) throws {
        guard let node = host.node(Self.metaGroup) else { throw JSAPIError.unavailable(.noMetaLeader) }
        try host.transferLeadership(Self.metaGroup, to: try stepdownTarget(node, body: body))
        js.reply(reply, ["type": type, "success": true])
    }

    /// Whom a leader stepdown of `node`'s group hands over to: the voter the request's placement
    /// picks (`StepdownPlacement`), or without one the most caught-up voter still reachable.
    func stepdownTarget(_ node: RaftNode, body: [UInt8]) throws -> NodeID {
        guard let placement = try StepdownPlacement.parse(body) else {
            guard let target = bestFollower(node) else { throw JSAPIError(400, 10118, "no replicas available for leader election") }
            return target
        }
        return try placement.target(voters: handoverVoters(node, staying: stayingPeers), me: host.me,
                                    clusterName: js.server.routeManager?.clusterName ?? "")
    }

    /// `node`'s voters as a handover chooses among them: reachable when this node has a route
    /// to them and they are not stopping (`staying`).
    private func handoverVoters(_ node: RaftNode, staying: Set<String>) -> [StepdownPlacement.Voter] {
        node.conf.voters.map { id in
            StepdownPlacement.Voter(id: id, name: serverName(id), match: node.progress(of: id)?.match ?? .zero,
                                    reachable: host.name(of: id).map(staying.contains) == true)
        }
    }

    /// The voter to hand `node`'s leadership to: the most caught-up of those this node has a
    /// route to and that are not stopping themselves (route INFO `ldm`); nil when none is left.
    /// A transfer to a peer that is gone or stopping cannot complete: with every node of a
    /// cluster stopping at once, each waited out the 2 s handover bound twice.
    /// `staying`: `stayingPeers`, read once by a caller that asks for many groups.
    func bestFollower(_ node: RaftNode, among staying: Set<String>? = nil) -> NodeID? {
        StepdownPlacement.mostCaughtUp(handoverVoters(node, staying: staying ?? stayingPeers), except: host.me)
    }

    /// Server names of the peers with a route to this node that are not stopping.
    var stayingPeers: Set<String> {
        guard let routes = js.server.routeManager else { return [] }
        return Set(routes.peerServerIDs().keys).subtracting(routes.peers(announcing: \.isLeaving))
    }
}
