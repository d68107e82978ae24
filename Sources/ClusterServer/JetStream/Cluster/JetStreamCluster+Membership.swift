import Foundation
import NIOCore
import Raft

/// What the meta layer tracks about membership (held by `JetStreamCluster`, driven here).
struct MembershipState {
    /// The latest hello of each connected server (by name).
    var hellos: [String: PeerHello] = [:]
    /// The tick each server's latest hello arrived (by name; hellos come every second): how
    /// long ago a peer was last heard, stream info's `active`.
    var heardAtTick: [String: Int] = [:]
    /// Replicated: the server name of every Raft id the meta group ever named.
    var names: [NodeID: String] = [:]
    /// Replicated: identities removed by `SERVER.REMOVE`; never added back.
    var removed: Set<NodeID> = []
    /// The bootstrap voters of this node's meta log (empty when it joined as a new member).
    var bootIDs: [NodeID] = []
    /// Meta leader: name records and replica moves proposed but not applied yet.
    var pendingNames: Set<NodeID> = []
    var pendingMoves: Set<String> = []
    /// Meta members not reachable, since which tick.
    var unreachableSince: [NodeID: Int] = [:]
    /// Stream leader: the index each learner must hold before it is promoted (see
    /// `StreamMembershipView.catchUpIndex`).
    var catchUp: [GroupID: [NodeID: LogIndex]] = [:]
    /// Stream leader: replicas removed from a group, told to their server until the tick given.
    var removalNotices: [(server: String, group: UInt64, id: NodeID, until: Int)] = []
    /// This store learned it was removed from the meta group for good (`SERVER.REMOVE`): since
    /// which tick it hands off its leaderships before it retires (see `+Retire`).
    var retiringSinceTick: Int?
    /// Retired: it stopped taking part; where its meta log and replicas were archived.
    var retiredArchive: String?
    /// Removals the first account's meta group decided for this account's group (a cross-account
    /// `SERVER.REMOVE`, see `JetStreamAccounts+ServerRemove`); the meta leader proposes each.
    var adopted: Set<NodeID> = []
    /// Meta leader: adopted removals proposed but not applied yet.
    var pendingAdoptions: Set<NodeID> = []
    /// The bootstrap configuration this store promised (persisted; see `MetaBootstrapPlanner`).
    var promise: [NodeID]?
    /// Since which tick a majority of the seeds, but not all, is up (first start only).
    var majoritySinceTick: Int?
    /// Storing the promise failed (logged once; retried every tick).
    var promiseSaveFailed = false
}

/// A server's identity as it announces it on each route (route frame `XMSG jsid`), once at
/// connect and then every second.
struct PeerHello: Equatable {
    var id: NodeID
    /// The server hosts a meta group (it bootstrapped one or joined one).
    var meta: Bool
    /// The voters its meta log was bootstrapped with (empty if it joined later).
    var boot: [NodeID]
    /// Their server names where the sender knows them ("" where not), so a bootstrap member
    /// that dies before the meta leader heard from it can still be matched to its replacement.
    var bootNames: [String] = []
    /// Stream groups whose leader (the sender) removed the receiver's replica.
    var removed: [(group: UInt64, id: NodeID)] = []
    /// The bootstrap configuration the sender's store promised (empty: none; see
    /// `MetaBootstrapPlanner`).
    var promise: [NodeID] = []

    static func == (a: PeerHello, b: PeerHello) -> Bool {
        a.id == b.id && a.meta == b.meta && a.boot == b.boot && a.promise == b.promise
    }

    func encoded(name: String) -> [UInt8] {
        let removedJSON: [[String: Any]] = removed.map { ["group": $0.group, "id": StreamAssignment.hex($0.id)] }
        let bootJSON: [String] = boot.map { StreamAssignment.hex($0) }
        return JSJSON.encode(["name": name, "id": StreamAssignment.hex(id), "meta": meta, "boot": bootJSON,
                              "boot_names": bootNames, "removed": removedJSON, "promise": promise.map { StreamAssignment.hex($0) }])
    }

    static func decode(_ bytes: [UInt8]) -> (name: String, hello: PeerHello)? {
        guard let o = try? JSONObject.parse(bytes, typeName: "Hello"), let name = try? o.string("name"),
              let idText = try? o.string("id"), let id = StreamAssignment.parseID(idText) else { return nil }
        let boot = ((try? o.stringArray("boot")) ?? nil)?.compactMap(StreamAssignment.parseID) ?? []
        var removed: [(UInt64, NodeID)] = []
        for r in (o.fields["removed"] as? [[String: Any]] ?? []).prefix(10_000) {
            if let g = (r["group"] as? NSNumber)?.uint64Value, let t = r["id"] as? String, let i = StreamAssignment.parseID(t) { removed.append((g, i)) }
        }
        let bootNames = ((try? o.stringArray("boot_names")) ?? nil) ?? []
        // A promise is a whole configuration: one unreadable id voids it (never a subset).
        let promiseText = ((try? o.stringArray("promise")) ?? nil) ?? []
        let promise = promiseText.compactMap(StreamAssignment.parseID)
        return (name, PeerHello(id: id, meta: (try? o.bool("meta")) ?? false, boot: boot,
                                bootNames: bootNames.count == boot.count ? bootNames : [],
                                removed: removed.map { (group: $0.0, id: $0.1) },
                                promise: promise.count == promiseText.count && promise.count <= 1000 ? promise : []))
    }
}

extension JetStreamCluster {
    static let helloNamespace = "jsid"
    /// Membership decisions run every 10 ticks (1 s).
    static let membershipEveryTicks = 10

    // MARK: - hellos

    func registerHellos() {
        js.server.routeManager?.registerExtension(accountHelloNamespace) { [weak self] from, payload in
            guard let self else { return }
            let bytes = Array(payload.readableBytesView)
            self.js.queue.async { self.receiveHello(from: from, bytes) }
        }
    }

    func sendHellos() {
        guard let routes = js.server.routeManager else { return }
        let meta = host.node(Self.metaGroup) != nil
        membership.removalNotices.removeAll { $0.until < ticks }
        // A peer whose store was removed for good is told so while it stays connected, once the
        // configuration change that removed it has committed here (everything appended applied).
        let metaNode = host.node(Self.metaGroup)
        let settled = metaNode.map { $0.appliedIndex >= $0.lastIndex } ?? false
        for (name, serverID) in routes.peerServerIDs() {
            var removed = membership.removalNotices.filter { $0.server == name }.map { (group: $0.group, id: $0.id) }
            if let h = membership.hellos[name], membership.removed.contains(h.id), settled,
               let metaNode, !metaNode.conf.contains(h.id) {
                removed.append((group: Self.metaGroup.rawValue, id: h.id))
            }
            let bootNames = membership.bootIDs.map { serverName($0) ?? "" }
            let bytes = PeerHello(id: host.me, meta: meta, boot: membership.bootIDs, bootNames: bootNames, removed: removed,
                                  promise: membership.promise ?? []).encoded(name: myName)
            var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
            buf.writeBytes(bytes)
            routes.sendExtension(accountHelloNamespace, payload: buf, to: serverID)
        }
    }

    private func receiveHello(from serverID: String, _ bytes: [UInt8]) {
        guard let (name, hello) = PeerHello.decode(bytes) else {
            js.server.logger.warning("JetStream cluster: dropping a malformed hello from \(serverID)")
            return
        }
        // The claimed name must be the route's own peer: a route cannot speak for another server.
        guard js.server.routeManager?.peerServerIDs()[name] == serverID, name != myName else { return }
        let previous = membership.hellos[name]
        membership.hellos[name] = hello
        membership.heardAtTick[name] = ticks
        host.learn(name: name, id: hello.id)
        for (id, n) in zip(hello.boot, hello.bootNames) where !n.isEmpty && serverName(id) == nil { host.learn(name: n, id: id) }
        for r in hello.removed where r.id == host.me {
            if r.group == Self.metaGroup.rawValue {
                // Raft never tells a removed member; the members' hellos do.
                beginRetirement("\(name) says its removal committed")
            } else {
                leaveStreamGroup(r.group)
            }
        }
        if previous != hello { topologyChanged() }
    }

    /// Live servers (self included) with the Raft id of their current store.
    var liveIdentities: [String: NodeID] {
        var out: [String: NodeID] = [myName: host.me]
        let connected = js.server.routeManager?.peerServerIDs() ?? [:]
        for (name, h) in membership.hellos where connected[name] != nil { out[name] = h.id }
        return out
    }

    // MARK: - the meta leader's membership work (every second)

    func membershipTick() {
        sendHellos()
        if membership.retiringSinceTick != nil {
            retirementTick()
            return
        }
        let live = liveIdentities
        guard let node = host.node(Self.metaGroup) else { return }
        // This store's own removal committed (it got the configuration change before it left).
        if membership.removed.contains(host.me), !node.conf.contains(host.me), node.appliedIndex >= node.lastIndex {
            beginRetirement("its removal committed")
            return
        }
        for id in node.conf.allMembers {
            if let name = serverName(id), live[name] == id {
                membership.unreachableSince[id] = nil
            } else if membership.unreachableSince[id] == nil {
                membership.unreachableSince[id] = ticks
            }
        }
        if isMetaLeader { proposeAdoptedRemovals() }
        if isMetaLeader { metaMembershipStep(node, live: live) }
        if isMetaLeader { moveReplicasOffGoneMembers(node, live: live) }
        // Only leaders whose group may be unsettled (`membershipWork`), not every one led here.
        for r in membershipWork.takeAll() where !r.closed && replicas[r.name] === r && r.isLeader {
            if !streamMembershipStep(r, live: live) { membershipWork.insert(r) }
        }
    }

    private func metaMembershipStep(_ node: RaftNode, live: [String: NodeID]) {
        var match: [NodeID: LogIndex] = [:]
        for id in node.conf.allMembers { match[id] = node.progress(of: id)?.match }
        // Replicate every name known here but not yet in the meta state, all at once (they are
        // plain entries, not configuration changes): a member that goes away before it was
        // named would otherwise stay anonymous, and its replacement could not be matched to it.
        var known = membership.names
        for id in node.conf.allMembers where membership.names[id] == nil {
            guard let name = serverName(id) else { continue }
            known[id] = name
            execute(.recordName(id, name), group: Self.metaGroup)
        }
        let view = MetaMembershipView(
            conf: node.conf, changePending: false, leader: host.me, names: known, live: live, match: match,
            commit: node.commitIndex, removed: membership.removed,
            unreachableTicks: membership.unreachableSince.mapValues { ticks - $0 },
            autoRemoveAfterTicks: autoRemoveAfterTicks)
        guard let step = MetaMembershipPlanner.next(view) else { return }
        execute(step, group: Self.metaGroup)
    }

    private func execute(_ step: MembershipStep, group: GroupID) {
        switch step {
        case let .recordName(id, name):
            guard !membership.pendingNames.contains(id) else { return }
            if (try? proposeMetaIndex(["op": "member", "id": StreamAssignment.hex(id), "name": name])) != nil {
                membership.pendingNames.insert(id)
            }
        case let .change(change):
            do {
                try host.proposeConfChange(group, change)
                js.server.logger.info("JetStream cluster: group \(group): \(change.kind) \(describe(change.node))")
                // Stream groups: the removed replica's server stops hosting it. A store removed
                // from the meta group is told once the change committed (see `sendHellos`).
                if change.kind == .remove, group != Self.metaGroup, let server = host.name(of: change.node) {
                    membership.removalNotices.append((server, group.rawValue, change.node, ticks + 600))
                }
            } catch RaftError.confChangeInProgress {
                // The previous change has not committed yet: next second.
            } catch {
                js.server.logger.warning("JetStream cluster: group \(group): \(change.kind) \(describe(change.node)) refused: \(error)")
            }
        case let .transferLeadership(to):
            try? host.transferLeadership(group, to: to)
        }
    }

    func describe(_ id: NodeID) -> String { "\(serverName(id) ?? "?")/\(StreamAssignment.hex(id))" }

    /// The server name of a Raft id: replicated names first, then what hellos taught.
    func serverName(_ id: NodeID) -> String? {
        id == host.me ? myName : (membership.names[id] ?? host.name(of: id))
    }

    /// Meta leader: a stream replica whose store left the meta group (the server was removed,
    /// or came back with a new store) moves: to the same server's new store when it is a voter
    /// again, otherwise to another server.
    private func moveReplicasOffGoneMembers(_ node: RaftNode, live: [String: NodeID]) {
        let conf = node.conf
        // Every assigned store still a member (the usual case): nothing to move, no scan.
        guard assignments.nodeIDs.contains(where: { !conf.contains($0) }) else { return }
        var voterIDByName: [String: NodeID] = [:]
        for id in conf.voters { if let n = serverName(id) { voterIDByName[n] = id } }
        for name in assignments.keys.sorted() where !membership.pendingMoves.contains(name) {
            guard let a = assignments[name], a.ids.contains(where: { !conf.contains($0) }) else { continue }
            var peers = a.peers, ids = a.ids
            var excluded = Set<String>()
            for (i, id) in a.ids.enumerated() where !conf.contains(id) {
                // The same server's current store, even while it is still a learner (it is about
                // to be promoted: moving the replica to another server would be a wasted copy).
                let name = a.peers[i]
                if let cur = live[name], cur != id, conf.contains(cur), !membership.removed.contains(cur) {
                    ids[i] = cur
                } else if let newID = voterIDByName[name], !membership.removed.contains(newID) {
                    ids[i] = newID
                } else {
                    excluded.insert(name)
                }
            }
            if !excluded.isEmpty {
                guard let resized = Placement.resize(peers, replicas: a.peers.count, among: Array(voterIDByName.keys),
                                                     excluding: excluded, load: assignments.load) else { continue }
                peers = resized
                ids = resized.map { n in a.peers.firstIndex(of: n).map { ids[$0] } ?? voterIDByName[n]! }
            }
            if (try? proposeMetaIndex(["op": "peers", "name": name, "peers": peers, "ids": ids.map(StreamAssignment.hex)])) != nil {
                membership.pendingMoves.insert(name)
                js.server.logger.info("JetStream cluster: moving stream '\(name)' replicas \(a.peers) -> \(peers)")
            }
        }
    }

    // MARK: - stream groups (their leaders)

    /// Returns true when the group is settled (exactly its assigned voters): it needs no
    /// further step until its configuration or its assignment changes (`membershipWork`).
    @discardableResult
    func streamMembershipStep(_ r: StreamReplica, live: [String: NodeID]) -> Bool {
        guard let a = assignments[r.name], let node = host.node(r.group) else { return true }
        // Settled (the usual case): the planner would return nothing; skip building its view.
        if node.conf.learners.isEmpty, node.conf.voters.count == a.ids.count, a.ids.allSatisfy(node.conf.isVoter) {
            if membership.catchUp[r.group] != nil { membership.catchUp[r.group] = nil }
            return true
        }
        var match: [NodeID: LogIndex] = [:]
        for id in node.conf.allMembers { match[id] = node.progress(of: id)?.match }
        var targets = membership.catchUp[r.group] ?? [:]
        targets = targets.filter { node.conf.isLearner($0.key) }
        for l in node.conf.learners where targets[l] == nil { targets[l] = node.commitIndex }
        membership.catchUp[r.group] = targets.isEmpty ? nil : targets
        // A member whose server is up with another store is gone for good (a replaced disk).
        let gone = Set(node.conf.voters.filter { id in serverName(id).flatMap { live[$0] }.map { $0 != id } ?? false })
        let view = StreamMembershipView(conf: node.conf, changePending: false, leader: host.me, target: a.ids,
                                        match: match, commit: node.commitIndex, catchUpIndex: targets, gone: gone)
        guard let step = StreamMembershipPlanner.next(view) else { return false }
        if case let .change(c) = step, c.kind == ConfChangeKind.addLearner, node.firstIndex > LogIndex(1) {
            // A replica that starts after a compaction is offered a snapshot: a file stream's
            // copies the stream from this leader (`CatchupSession`) while it is a learner; a
            // memory stream's cannot, stays a learner, and the replica it replaces stays.
            js.server.logger.info("Stream '\(r.name)': adding replica \(describe(c.node)) to a log compacted up to \(node.firstIndex); it will copy the stream")
        }
        execute(step, group: r.group)
        return false
    }

    /// This node's replica was removed from a stream's group by its leader: stop hosting it
    /// once the meta assignment agrees (the files stay until the stream is deleted, so a later
    /// return of this store to the group is a restart, never a member that forgot its votes).
    func leaveStreamGroup(_ group: UInt64) {
        // A retiring store follows no meta log any more: the stream leader's word is enough.
        guard let r = replicas.values.first(where: { $0.group.rawValue == group }), !r.isLeader,
              let a = assignments[r.name], !a.ids.contains(host.me) || membership.retiringSinceTick != nil else { return }
        js.server.logger.info("JetStream cluster: replica of stream '\(r.name)' moved off this server")
        r.close()
        replicas[r.name] = nil
        if js.streams[r.name] === r.stream { js.streams[r.name] = nil }
    }

    // MARK: - applying membership entries (every node)

    /// Applies the membership ops of the meta log; returns the response for a waiting caller.
    func applyMembershipOp(_ op: String, _ o: JSONObject) throws -> [String: Any]? {
        switch op {
        case "member":
            guard let t = try o.string("id"), let id = StreamAssignment.parseID(t), let name = try o.string("name") else { return nil }
            membership.names[id] = name
            membership.pendingNames.remove(id)
            host.learn(name: name, id: id)
            return ["success": true]
        case "server_remove":
            // `accounts`: the same server's ids in the other accounts' meta groups (written by
            // the first account's meta leader); `id` may be absent when it is not a member here.
            var others: [String: NodeID] = [:]
            for (account, v) in o.fields["accounts"] as? [String: Any] ?? [:] {
                if let t = v as? String, let id = StreamAssignment.parseID(t) { others[account] = id }
            }
            if let t = try o.string("id"), let id = StreamAssignment.parseID(t) {
                membership.removed.insert(id)
                membership.adopted.remove(id)
                membership.pendingAdoptions.remove(id)
                js.server.logger.info("JetStream cluster: server \(describe(id)) removed from the cluster")
            } else if others.isEmpty {
                return nil
            }
            if !others.isEmpty { onServerRemoved?(others) }
            return ["success": true]
        case "peers":
            guard let name = try o.string("name") else { return nil }
            membership.pendingMoves.remove(name)
            guard var a = assignments[name] else { return JSAPIError.streamNotFound.responseBody }
            try setPeers(&a, o)
            return ["success": true]
        default:
            return nil
        }
    }

    /// Sets an assignment's replicas from an op's `peers`/`ids` and starts or marks the local replica.
    func setPeers(_ a: inout StreamAssignment, _ o: JSONObject) throws {
        guard let peers = try o.stringArray("peers"), let idTexts = try o.stringArray("ids"), peers.count == idTexts.count,
              !peers.isEmpty else { throw JSAPIError.badRequest("malformed replica set") }
        let ids = idTexts.compactMap(StreamAssignment.parseID)
        guard ids.count == peers.count else { throw JSAPIError.badRequest("malformed replica set") }
        a.peers = peers
        a.ids = ids
        assignments[a.config.name] = a
        if let r = replicas[a.config.name] { membershipWork.insert(r) }
        for (n, id) in zip(peers, ids) { host.learn(name: n, id: id) }
        if ids.contains(host.me), !hostsReplica(a.config.name) { openReplica(a) }
    }

    // MARK: - API: SERVER.REMOVE, STREAM.PEER.REMOVE (meta leader)

    /// The meta member a `SERVER.REMOVE` names here: by server name (its current store when
    /// the server runs) or by Raft id (hex). Nil: not a member of this account's meta group.
    func metaMember(peer: String, peerID: String) -> NodeID? {
        guard let node = host.node(Self.metaGroup) else { return nil }
        return node.conf.allMembers.first { id in
            peerID.isEmpty ? serverName(id) == peer && (liveIdentities[peer] ?? id) == id : StreamAssignment.hex(id) == peerID.lowercased()
        }
    }

    /// Meta leader: proposes removing `id` here (if a member) and, through this entry, the same
    /// server's ids in the other accounts' groups (`others`); `done` gets the answer on commit.
    func proposeServerRemoval(_ id: NodeID?, others: [String: NodeID], done: @escaping ([String: Any]) -> Void) throws {
        var entry: [String: Any] = ["op": "server_remove"]
        if let id { entry["id"] = StreamAssignment.hex(id) }
        if !others.isEmpty { entry["accounts"] = others.mapValues(StreamAssignment.hex) }
        let index = try proposeMetaIndex(entry)
        metaCallbacks[index] = done
    }

    /// Another account's meta group removed this server for good: remove its store here too.
    func adoptRemoval(_ id: NodeID) {
        guard !membership.removed.contains(id), membership.retiredArchive == nil else { return }
        membership.adopted.insert(id)
    }

    /// Meta leader: proposes each adopted removal once per leadership (an entry of its own, so
    /// it is replicated here and survives restarts like an operator's).
    private func proposeAdoptedRemovals() {
        for id in membership.adopted.subtracting(membership.removed).subtracting(membership.pendingAdoptions).sorted() {
            if (try? proposeMetaIndex(["op": "server_remove", "id": StreamAssignment.hex(id)])) != nil {
                membership.pendingAdoptions.insert(id)
                js.server.logger.info("JetStream cluster: removing \(describe(id)) as the cluster-wide SERVER.REMOVE decided")
            }
        }
    }

    /// `$JS.API.STREAM.PEER.REMOVE.<stream>` `{"peer": "<server name>"}`: the stream's replica on
    /// that server moves to another server (added and caught up before the old one leaves).
    func streamPeerRemove(_ stream: String, body: [UInt8], reply: String, type: String) throws {
        let o = try JSONObject.parse(body, typeName: "JSApiStreamRemovePeerRequest")
        guard let peer = try o.string("peer"), !peer.isEmpty else { throw JSAPIError.badRequest() }
        guard let a = assignments[stream] else { throw JSAPIError.streamNotFound }
        guard a.peers.contains(peer) else { throw JSAPIError(400, 10040, "peer not a member") }
        let (servers, idByName) = voterServers()
        guard let peers = Placement.resize(a.peers, replicas: a.peers.count, among: servers, excluding: [peer],
                                           load: assignments.load) else {
            throw JSAPIError(503, 10075, "peer remap failed")
        }
        let ids = peers.map { n in a.peers.firstIndex(of: n).map { a.ids[$0] } ?? idByName[n]! }
        try proposeMeta(["op": "peers", "name": stream, "peers": peers, "ids": ids.map(StreamAssignment.hex)], reply: reply, type: type)
    }

    /// Meta voters by server name (the servers placement may use).
    func voterServers() -> (names: [String], ids: [String: NodeID]) {
        var ids: [String: NodeID] = [:]
        for id in host.node(Self.metaGroup)?.conf.voters ?? [] where !membership.removed.contains(id) {
            if let n = serverName(id) { ids[n] = id }
        }
        return (ids.keys.sorted(), ids)
    }

    // MARK: - monitoring

    /// `/jsz` `meta_cluster.replicas` (as nats-server: every member but this one) plus clusterd's
    /// `members`: every member with its role, reachability and lag behind the leader.
    func metaMembersJSON() -> (replicas: [[String: Any]], members: [[String: Any]]) {
        guard let node = host.node(Self.metaGroup) else { return ([], []) }
        let live = liveIdentities
        var reps: [[String: Any]] = [], members: [[String: Any]] = []
        for id in node.conf.allMembers {
            let name = serverName(id) ?? "?"
            let lag = node.progress(of: id).map { node.lastIndex - $0.match }
            var m: [String: Any] = ["name": name, "peer": StreamAssignment.hex(id), "voter": node.conf.isVoter(id),
                                    "online": live[name] == id, "leader": node.leader == id]
            if let lag { m["lag"] = lag }
            if let since = membership.unreachableSince[id] { m["unreachable_ms"] = (ticks - since) * 100 }
            members.append(m)
            if id != host.me {
                // As for stream replicas: an idle meta log's lag stays 0 when a member dies.
                let heard = heardRecently(name, id, live: live)
                var r: [String: Any] = ["name": name, "peer": StreamAssignment.hex(id), "current": heard && lag.map { $0 == 0 } ?? true,
                                        "offline": live[name] != id, "active": activeNanos(name)]
                if let lag { r["lag"] = lag }
                reps.append(r)
            }
        }
        return (reps, members)
    }

    /// `/healthz`: not ready until the meta group runs here with a known leader, this store is
    /// a voter (a new member is a learner until it caught up) and everything committed is
    /// applied; then (unless `js-meta-only`) every replicated stream with a replica here must be
    /// current (`streamHealthError`), so a restarted node turns ready only once it caught up
    /// (as nats-server's full `/healthz`). `js-enabled-only` and `js-server-only` skip every
    /// check (as nats-server 2.11+), which is what a liveness probe wants: a node without a
    /// meta quorum is not broken.
    func healthError(_ query: [String: String]) -> String? {
        if query["js-enabled-only"] == "true" || query["js-server-only"] == "true" { return nil }
        if membership.retiringSinceTick != nil { return Self.removedHealthError }
        guard let node = host.node(Self.metaGroup), node.leader != nil else {
            return "JetStream has not established contact with a meta leader"
        }
        guard node.conf.isVoter(host.me), node.appliedIndex >= node.commitIndex else {
            return "JetStream is not current with the meta leader"
        }
        if query["js-meta-only"] == "true" { return nil }
        // The first by name, without sorting every name: a probe must stay cheap with 10,000
        // streams (it runs on the JetStream queue).
        var first: (name: String, why: String)?
        for (name, r) in replicas {
            guard let why = streamHealthError(r), first.map({ name < $0.name }) ?? true else { continue }
            first = (name, why)
        }
        return first.map { "JetStream stream '\(js.account.name) > \($0.name)' is not current: \($0.why)" }
    }

    /// Why this node's replica of a replicated stream is not current (nats-server's reasons),
    /// or nil: a copy or range re-fetch from the leader is pending or running ("stream catching
    /// up"), or its Raft group knows no leader, diverged, or has not committed what its leader
    /// announced ("group node unhealthy", `RaftNode.isCaughtUp`). A single replica is current.
    func streamHealthError(_ r: StreamReplica) -> String? {
        guard let node = host.node(r.group) else {
            return (assignments[r.name]?.peers.count ?? 1) > 1 ? "group node missing" : nil
        }
        let conf = node.conf
        guard conf.voters.count + conf.learners.count > 1 else { return nil }
        if r.catchup != nil || r.needsRepair || r.rangeRepair != nil || !r.damagedSegments.isEmpty {
            return "stream catching up"
        }
        return node.isCaughtUp ? nil : "group node unhealthy"
    }
}
