import Raft

/// The `placement` of a leader stepdown request (`$JS.API.STREAM.LEADER.STEPDOWN.<stream>`,
/// `$JS.API.META.LEADER.STEPDOWN`; nats-server 2.11's `JSApiLeaderStepdownRequest`): which
/// voter should lead next. Pure: the caller passes the group's voters.
///
/// As nats-server: `preferred` names one server and wins over the filters; it must be a voter
/// and not the leader. Otherwise `cluster` and `tags` filter the voters this leader can reach
/// (clusterd nodes carry no tags, so any tag leaves none). Where nats-server then picks at
/// random, clusterd takes the most caught-up voter left, as a stepdown without placement does.
struct StepdownPlacement: Equatable {
    var preferred: String?
    var cluster: String?
    var tags: [String] = []

    static let requestType = "JSApiLeaderStepdownRequest"

    /// A voter of the group as the choice needs it.
    struct Voter {
        var id: NodeID
        var name: String?
        /// Its log position as the leader knows it (higher is more caught up).
        var match: LogIndex
        /// This leader has a route to it and it is not stopping.
        var reachable: Bool
    }

    /// The placement in a request body; nil for an empty body, no `placement`, or a `placement`
    /// that sets nothing (a plain stepdown). Unknown fields are refused, as nats-server does.
    static func parse(_ body: [UInt8]) throws -> StepdownPlacement? {
        let o = try JSONObject.parse(body, typeName: requestType)
        try o.rejectUnknown(["placement"])
        guard o.has("placement"), let raw = o.fields["placement"] else { return nil }
        guard let fields = raw as? [String: Any] else {
            throw JSAPIError.invalidJSON("json: cannot unmarshal \(JSONObject.kind(of: raw)) into Go struct field "
                                         + "\(requestType).placement of type server.Placement")
        }
        let p = JSONObject(fields, typeName: requestType + ".placement")
        try p.rejectUnknown(["cluster", "tags", "preferred"])
        let placement = StepdownPlacement(preferred: try p.string("preferred").flatMap { $0.isEmpty ? nil : $0 },
                                          cluster: try p.string("cluster").flatMap { $0.isEmpty ? nil : $0 },
                                          tags: try p.stringArray("tags") ?? [])
        return placement == StepdownPlacement() ? nil : placement
    }

    /// The voter to hand leadership to, or the API error nats-server gives (10005).
    /// `me`: the leader; `clusterName`: this cluster's name.
    func target(voters: [Voter], me: NodeID, clusterName: String) throws -> NodeID {
        if let preferred {
            guard let v = voters.first(where: { $0.name == preferred }) else {
                throw JSAPIError.noPeers("preferred server \"\(preferred)\" not known")
            }
            if v.id == me { throw JSAPIError.noPeers("preferred server \"\(preferred)\" is already leader") }
            return v.id
        }
        let fits = (cluster.map { $0 == clusterName } ?? true) && tags.isEmpty
        guard fits, let best = Self.mostCaughtUp(voters, except: me) else {
            throw JSAPIError.noPeers("no replacement peer connected")
        }
        return best
    }

    /// The reachable voter other than `me` with the highest match (ties: the lowest id); nil
    /// when there is none. Every handover picks with this: a stepdown without placement, the
    /// handover of a stopping node (`JetStreamCluster.bestFollower`).
    static func mostCaughtUp(_ voters: [Voter], except me: NodeID) -> NodeID? {
        voters.filter { $0.id != me && $0.reachable }.max { ($0.match, $1.id) < ($1.match, $0.id) }?.id
    }
}

extension JSAPIError {
    /// 10005, nats-server's `JSClusterNoPeersErrF`: no server fits a placement.
    static func noPeers(_ why: String) -> JSAPIError { JSAPIError(400, 10005, why) }
}
