import Raft

/// Reads served by a stream's replicas (docs/jetstream-cluster.md, "Reads").
///
/// Direct gets (`allow_direct`): as in nats-server, every replica that is caught up joins the
/// `_sys_` queue group on `$JS.API.DIRECT.GET.<stream>`, and the replica on the client's own
/// node answers first. A follower joins only after a ReadIndex round proved it has applied
/// everything its leader had committed, re-proves it every couple of seconds while the group
/// is busy, and leaves the group when a proof fails (it lags by more than the read timeout)
/// or it has known no leader for longer than two election timeouts; a replica whose store is
/// being copied from the leader (snapshot install) or repaired does not answer.
///
/// Linearizable reads (opt-in, `clusterd.read: linearizable` in the stream's metadata, or the
/// `Clusterd-Read: linearizable` header on one request): the answering replica first makes a
/// ReadIndex round through the leader and answers only once it applied that index, so the
/// read sees every write acknowledged before it was asked. A deposed leader cannot confirm a
/// round (its followers moved to a newer term), so it never answers one.
extension StreamReplica {
    /// The stream metadata key and the request header that select linearizable reads.
    static let readModeKey = "clusterd.read"
    static let readHeader = "Clusterd-Read"
    static let linearizable = "linearizable"

    /// Where this replica stands as a direct-get responder.
    struct DirectAccess {
        var subscriptions: [Subscription] = []
        /// A currency proof (ReadIndex round) is in flight.
        var probing = false
        /// `cluster.ticks` of the last successful proof; and before which no new one starts.
        var provenAt = 0
        var nextProbe = 0
        /// Consecutive cluster ticks without a known leader.
        var leaderlessTicks = 0
    }

    /// Proofs are renewed this often (cluster ticks of 100 ms) while the group is active.
    private static let reproveTicks = 20

    /// True when every read of this stream goes through a ReadIndex round.
    var linearizableReads: Bool { stream.config.metadata?[Self.readModeKey] == Self.linearizable }

    /// Called every cluster tick and on leadership changes: joins or leaves the direct-get
    /// queue group as the replica's state allows.
    func updateDirectAccess() {
        guard stream.allowsDirect, !closed, let node = cluster.host.node(group) else {
            setDirect(false)
            return
        }
        direct.leaderlessTicks = node.leader == nil ? direct.leaderlessTicks + 1 : 0
        if !isLeader && (catchup != nil || needsRepair) {
            // Its store is being copied from the leader or has a corrupt range: not a source.
            setDirect(false)
            return
        }
        if isLeader {
            setDirect(true)
            return
        }
        let now = cluster.ticks
        if !direct.subscriptions.isEmpty {
            if direct.leaderlessTicks > 2 * cluster.host.config.electionTimeoutTicks {
                setDirect(false)
            } else if !node.isQuiesced && now - direct.provenAt >= Self.reproveTicks {
                // A quiesced follower holds everything committed; a busy one proves it again.
                prove()
            }
        } else if node.leader != nil && now >= direct.nextProbe {
            prove()
        }
    }

    private func prove() {
        guard !direct.probing else { return }
        direct.probing = true
        cluster.host.readIndex(group) { [weak self] ok in
            guard let self else { return }
            self.direct.probing = false
            self.cluster.needsTick(self) // its direct access may settle or need another proof
            if ok {
                self.direct.provenAt = self.cluster.ticks
                self.setDirect(self.stream.config.allowDirect && !self.closed)
            } else {
                self.direct.nextProbe = self.cluster.ticks + 10
                if !self.isLeader { self.setDirect(false) }
            }
        }
    }

    private func setDirect(_ on: Bool) {
        if on == !direct.subscriptions.isEmpty { return }
        if on {
            let name = name
            direct.subscriptions = js.subscribeDirectGets(name, prefersLocal: true) { [weak cluster] subject, reply, headers, body in
                cluster?.replicas[name]?.serveDirectGet(subject: subject, reply: reply, headers: headers, body: body)
            }
        } else {
            for sub in direct.subscriptions { js.bus.unsubscribeInternal(sub) }
            direct.subscriptions = []
        }
    }

    /// Unsubscribes for good (the replica closes).
    func stopDirectAccess() { setDirect(false) }

    /// True when `headers` ask for a linearizable read.
    static func requestsLinearizable(_ headers: [UInt8]?) -> Bool {
        NATSHeaderBlock.value(readHeader, in: headers)?.lowercased() == linearizable
    }

    /// A direct get that reached this replica (on the JetStream queue).
    func serveDirectGet(subject: String, reply: String?, headers: [UInt8]?, body: [UInt8]) {
        guard let reply else { return }
        guard linearizableReads || Self.requestsLinearizable(headers) else {
            return js.handleDirectGet(subject: subject, reply: reply, body: body)
        }
        cluster.host.readIndex(group) { [weak self] ok in
            guard let self else { return }
            if ok {
                self.js.handleDirectGet(subject: subject, reply: reply, body: body)
            } else {
                // No leader could confirm the read in time: say so rather than risk a stale answer.
                self.js.bus.sendStatus("503", to: reply, fields: [("Nats-Subject", subject)])
            }
        }
    }
}
