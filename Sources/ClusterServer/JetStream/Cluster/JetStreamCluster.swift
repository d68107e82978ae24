import Foundation
import Raft

/// JetStream across a cluster: the meta group (a Raft group over every node holding the stream
/// assignments) and one Raft group per stream (see docs/jetstream-cluster.md).
///
/// Who answers what: every node subscribes `$JS.API.>` with cluster-wide interest, so each
/// request reaches each node once. Meta requests (stream create/update/delete, meta stepdown)
/// are answered by the meta leader after the change commits; stream and consumer requests by
/// the stream's leader; account info and stream names/lists by the node the client is on.
/// All of it runs on JetStream's serial queue.
final class JetStreamCluster: RaftGroupDelegate {
    static let metaGroup = GroupID(1)
    /// Entries a stream's Raft log may hold before its leader proposes a compaction.
    static var compactionThreshold = 10_000
    /// How many entries a lagging (or down) member may hold a file stream's compaction back;
    /// past that it catches up by copying the stream. Default: 10 × the threshold.
    static var compactionMaxLag: Int?
    /// Cluster ticks between two rounds of `RaftHost.releaseIdleSpares` (60 s): a spare log
    /// segment untaken for a whole round is removed.
    static var idleSpareTicks = 600
    /// Cluster ticks between scrubs of every replica's sealed segments (`StreamReplica+Scrub`):
    /// a day, or `CLUSTERD_SCRUB_SECONDS` (a setting for tests and operators; at least 1 s).
    static let scrubEveryTicks: Int = {
        if let v = ProcessInfo.processInfo.environment["CLUSTERD_SCRUB_SECONDS"], let n = Int(v), n > 0 {
            return min(n, 365 * 86_400) * 10
        }
        return 86_400 * 10
    }()

    /// The service owns this cluster and stops it before it goes (unchecked: see `Stream.service`).
    unowned(unsafe) let js: JetStreamService
    let host: RaftHost
    /// Stream copies for replicas that need a snapshot (both sides).
    private(set) var catchup: CatchupService!
    /// The meta state: every stream's assignment (indexed for creates, see `AssignmentTable`).
    let assignments = AssignmentTable()
    private(set) var isMetaLeader = false
    var replicas: [String: StreamReplica] = [:]
    /// Replicas stopped because their store ran out of space: failures in a row, and the tick
    /// of the next reopen (`StreamReplica+StoreFailure.swift`).
    var storeFailures: [String: (count: Int, due: Int)] = [:]
    /// The meta group stopped here because its log ran out of space: failures in a row, and
    /// the tick of the next reopen (`+MetaStorageFailure`).
    var metaFailure: (count: Int, due: Int)?
    /// The last meta entry applied here: a reopened meta group resumes after it.
    var metaApplied = LogIndex.zero
    /// Replicas whose files are being opened off this queue (`+ReplicaOpening`).
    var openingReplicas: [String: PendingReplicaOpen] = [:]
    /// Where replica files are opened: a stream always uses the same one (see `openQueue`).
    let openQueues = (0..<4).map { DispatchQueue(label: "clusterd.replica-open.\($0)") }
    private var nextGroup: UInt64 = 100
    /// Meta leader: the next group id to hand out (ahead of `nextGroup` while creates are in flight).
    private var proposedGroup: UInt64 = 100
    /// Meta leader only: API replies waiting for their entry to commit.
    private var pendingMeta: [LogIndex: (reply: String, type: String)] = [:]
    /// Meta leader only: creates proposed and not applied yet (their stream's first leader
    /// answers them; the meta leader only if it loses its leadership first).
    private var inflightCreates: [LogIndex: (reply: String, type: String)] = [:]
    /// Meta leader only: answers given by a closure on commit (a `SERVER.REMOVE` asked in
    /// another account than this one, see `JetStreamAccounts+ServerRemove`).
    var metaCallbacks: [LogIndex: ([String: Any]) -> Void] = [:]
    /// Called (on this queue) when a committed `SERVER.REMOVE` names the server's ids in other
    /// accounts' meta groups: account name -> id.
    var onServerRemoved: (([String: NodeID]) -> Void)?
    /// Meta leader only: update/delete answers it sends at their due tick unless the stream's
    /// leader answered meanwhile (see `+ChangeAnswers`).
    var fallbackReplies: [FallbackReply] = []
    private var metaStarted = false
    /// This account's JetStream store directory (identity, bootstrap promise, `_meta`).
    let root: String
    let metaDirectory: String
    /// Membership bookkeeping (hellos, replicated member names, removals): see `+Membership`.
    var membership = MembershipState()
    /// Remove a meta voter unreachable this many ticks (`jetstream.auto_remove_after`; nil: never).
    let autoRemoveAfterTicks: Int?
    /// The other nodes' stored bytes of this account, from their reports (`+Usage`).
    var remoteUsage = RemoteAccountUsage()
    /// What this node last reported, and at which tick (`+Usage`).
    var usageSent: (memory: UInt64, file: UInt64, room: AccountUsageReport.Limits?, tick: Int)?
    /// Replicas the per-tick passes visit (`+TickWork`); the others are settled.
    var tickWork = AttentionSet<StreamReplica>()
    /// Replicas with held publishes or lingering ingest subscriptions (`releaseHeldPublishes`).
    var handoverWork = AttentionSet<StreamReplica>()
    /// Leaders whose group may not have exactly its assigned voters: the per-second membership
    /// step visits only these (they enter on leadership, group activity, assignment changes).
    var membershipWork = AttentionSet<StreamReplica>()

    init(js: JetStreamService, root: String) throws {
        self.js = js
        var cfg = RaftConfig()
        cfg.electionTimeoutTicks = 10 // ticks of 100 ms: elections after 1-2 s of silence
        cfg.heartbeatTicks = 1
        cfg.maxInflightMsgs = 256
        // A follower far behind gets at most this much per round trip (a catch-up burst of 256
        // appends of 1 MiB each overran the route's 64 MiB send buffer), not a limit under load:
        // 256 appends of a round's publishes are far smaller.
        cfg.maxInflightBytes = 16 << 20
        let identity = try NodeIdentity.load(root: root, name: js.server.serverName)
        host = RaftHost(server: js.server, queue: js.queue, config: cfg, me: identity.nodeID,
                        namespace: Self.routeNamespace("raft", account: js.account))
        autoRemoveAfterTicks = js.server.options.jetStreamAutoRemoveAfterSeconds.map { max(1, Int($0 * 10)) }
        // Opt-in `sync_interval`: stream groups (never the meta group) ack on a quorum's write.
        host.ackOnWriteSyncTicks = js.syncIntervalSeconds.map { UInt64(JetStreamService.ticks($0, of: 2 * JetStreamService.tickSeconds)) }
        // A follower's 10 ticks span at least 0.95 s of its 50 ms timer (ticks never come
        // early); 0.8 s leaves room for the heartbeat's trip.
        host.leaseNanos = 800_000_000
        // Tuning knob (documented in docs/jetstream-cluster.md); tests use a small value.
        if let v = ProcessInfo.processInfo.environment["CLUSTERD_RAFT_COMPACT_ENTRIES"], let n = Int(v), n > 0 {
            Self.compactionThreshold = n
        }
        if let v = ProcessInfo.processInfo.environment["CLUSTERD_RAFT_COMPACT_MAX_LAG"], let n = Int(v), n > 0 {
            Self.compactionMaxLag = n
        }
        self.root = root
        metaDirectory = root + "/_meta"
        membership.promise = try BootstrapPromise.load(root: root)
        catchup = CatchupService(cluster: self)
    }

    var myName: String { host.myName }

    /// A route frame namespace of `account`'s JetStream: `base` for `$G` (unchanged on the
    /// wire), `base.<encoded name>` for another account. Each account runs its own meta group
    /// and stream groups, so their Raft messages and hellos must not mix.
    static func routeNamespace(_ base: String, account: Account) -> String {
        account.isGlobal ? base : base + "." + AccountDirectoryName.encode(account.name)
    }

    /// Where this account's membership hellos travel.
    var accountHelloNamespace: String { Self.routeNamespace(Self.helloNamespace, account: js.account) }

    /// Starts the transport and the meta group (now if this store has a meta log, else once the
    /// seeds agreed on a bootstrap or a peer runs one: see `decideMetaStart`).
    func start() throws {
        host.start()
        registerHellos()
        catchup.start()
        registerRestoreFrames()
        registerInternalConsumerFrames()
        startForwarding()
        js.startTakingUnrouted(self)
        startUsageReports()
        if let storage = try RaftStorageFactory.open(directory: metaDirectory, ids: nil) {
            startMeta(storage)
        }
        js.server.addTopologyObserver { [weak self] in
            guard let self else { return }
            self.js.queue.async { self.topologyChanged() }
        }
        js.queue.async { self.topologyChanged() }
    }

    /// `campaign`: elect at once instead of after an election timeout (1-2 s); asked of one voter
    /// of a new bootstrap, so a fresh cluster has its meta leader in milliseconds.
    func startMeta(_ storage: DurableRaftStorage, campaign: Bool = false) {
        metaStarted = true
        let boot = storage.snapshot().metadata
        if boot.index == .zero { membership.bootIDs = boot.conf.voters }
        host.addGroup(Self.metaGroup, storage: storage, delegate: self, delegateOwnsHost: true, applied: nil, quiesce: false,
                      campaign: campaign)
        js.server.logger.info("JetStream cluster: meta group started as \(StreamAssignment.hex(host.me)) with \(boot.conf.voters.count) bootstrap voter(s)")
        sendHellos()
    }

    func topologyChanged() {
        guard let routes = js.server.routeManager else { return }
        // One snapshot: the seeds' state and the peer list must agree (see `seedSnapshot`).
        learnRouteFeatures()
        let seeds = routes.seedSnapshot()
        let connected = Set(seeds.peers.keys)
        // A peer that just connected hears this node's hello now rather than at the next
        // membership tick (up to a second later): a first boot's bootstrap waits for the hellos.
        let newPeer = !connected.isSubset(of: host.knownPeers)
        host.peersChanged(connected)
        if newPeer { sendHellos() }
        guard !metaStarted else { return }
        decideMetaStart(seeds)
    }

    /// Raft ticks (100 ms) since start.
    private(set) var ticks = 0
    /// Server names seen (since start) to read stream entries with dedup times; kept when a
    /// route drops, so a peer that is down does not turn its groups' dedup times off.
    private(set) var dedupTimeReaders: Set<String> = []
    /// The same for entries whose dedup the leader decided (route INFO `js_dedup_decided`).
    private(set) var decidedDedupReaders: Set<String> = []
    /// The same for subject delete marker entries (route INFO `js_markers`).
    private(set) var markerReaders: Set<String> = []
    /// The same for sourced message entries (route INFO `js_sourced`).
    private(set) var sourcedReaders: Set<String> = []
    /// The same for mirrored message entries (route INFO `js_mirrored`).
    private(set) var mirroredReaders: Set<String> = []
    /// The same for `jsinternal` route frames (route INFO `js_internal_frames`).
    private(set) var internalFrameReaders: Set<String> = []

    /// Notes the entry forms connected peers announce they read (route INFO): at each tick and
    /// as soon as a route comes up, since a cluster can take its first publishes within
    /// milliseconds of forming.
    private func learnRouteFeatures() {
        guard let routes = js.server.routeManager else { return }
        dedupTimeReaders.formUnion(routes.peers(announcing: \.dedupTimes))
        decidedDedupReaders.formUnion(routes.peers(announcing: \.decidedDedup))
        markerReaders.formUnion(routes.peers(announcing: \.markers))
        sourcedReaders.formUnion(routes.peers(announcing: \.sourced))
        mirroredReaders.formUnion(routes.peers(announcing: \.mirrored))
        internalFrameReaders.formUnion(routes.peers(announcing: \.internalFrames))
    }

    func tick() {
        // A seed can resolve without a route event (a duplicate dial learns its peer): retry.
        if !metaStarted { topologyChanged() }
        host.tick()
        ticks += 1
        learnRouteFeatures()
        sendDueFallbackReplies()
        tickReplicaAccess()
        if ticks % Self.membershipEveryTicks == 0 { membershipTick() }
        usageTick()
        if ticks % 50 == 0 { rebalance() }
        tickReplicaRepairs()
        if !storeFailures.isEmpty { reopenAfterStoreFailures() }
        if let f = metaFailure, ticks >= f.due { reopenMeta(after: f) }
        if ticks % Self.scrubEveryTicks == 0 {
            for r in replicas.values where r.catchup == nil { r.startScrub() }
        }
        // Every 2 s (it was 10 s): a busy log then drops one or two segments per compaction, which
        // its spares (`StreamLogConfig.spareSegments`) cover; 10 s at 70,000 msgs/s fill about
        // ten (16 MiB holds ~71,600 entries of 128 B publishes), and past four spares the next
        // tails had to grow new files again.
        if ticks % 20 == 0 {
            for r in replicas.values where r.isLeader { r.proposeCompaction(threshold: Self.compactionThreshold,
                                                                     maxLag: Self.compactionMaxLag ?? 10 * Self.compactionThreshold) }
        }
        // Every 60 s: spares a log did not take over since the last round go (a log idle after a
        // burst held up to four segments of disk until it closed).
        if ticks % Self.idleSpareTicks == 0 { host.releaseIdleSpares() }
    }

    /// Every 5 s: a stream led here whose preferred leader (the first peer placement chose, the
    /// least-loaded server) is connected and fully caught up hands leadership back to it, so
    /// leaders spread out again after nodes come back. A preferred peer that is stopping gets none.
    private func rebalance() {
        let staying = stayingPeers
        for r in replicas.values where r.isLeader && ticks - r.leaderSinceTick >= 300 {
            // Only a leadership that lasted 30 s moves: not right after an election or stepdown.
            guard let a = assignments[r.name], let preferred = a.peers.first, let id = a.ids.first, id != host.me,
                  staying.contains(preferred), let node = host.node(r.group), node.conf.isVoter(id),
                  let p = node.progress(of: id), p.match == node.lastIndex else { continue }
            try? host.transferLeadership(r.group, to: id)
        }
    }

    func stop() {
        js.account.setUnroutedTaker(nil)
        cancelReplicaOpens()
        for r in replicas.values { r.close() }
        host.removeGroup(Self.metaGroup)
    }

    // MARK: - who answers

    func leads(_ stream: String) -> Bool { replicas[stream]?.isLeader ?? false }

    /// A meta leader is known here (followers learn it from its messages).
    var metaAvailable: Bool { host.node(Self.metaGroup)?.leader != nil }

    // MARK: - meta requests (meta leader)

    /// Stream create / update / delete on the meta leader: checked here, answered on commit.
    func handleMetaRequest(_ op: [String], body: [UInt8], reply: String, type: String) throws {
        switch (op[1], op.count) {
        case ("CREATE", 3), ("UPDATE", 3):
            let isUpdate = op[1] == "UPDATE"
            let name = op[2]
            let cfg = try js.validatedStreamConfig(name, body: body, isUpdate: isUpdate)
            if isUpdate {
                guard let a = assignments[name] else { throw JSAPIError.streamNotFound }
                try a.config.checkUpdate(to: cfg)
                if let e = limitRefusal(cfg, isUpdate: true) { throw e }
                var new = cfg
                new.firstSeq = a.config.firstSeq
                var entry: [String: Any] = ["op": "update", "config": new.json]
                var peers = a.peers
                if cfg.numReplicas != a.config.numReplicas {
                    // The stream's leader moves its group to the new replica set (see +Membership);
                    // a server it grows onto must have room for its max_bytes.
                    let (servers, idByName) = voterServers()
                    let room = servers.filter { a.peers.contains($0) || maxBytesFits(cfg, on: $0, except: name) }
                    guard let resized = Placement.resize(a.peers, replicas: cfg.numReplicas, among: room, excluding: [],
                                                         load: assignments.load) else {
                        throw JSAPIError(500, 10074, "insufficient resources")
                    }
                    peers = resized
                    entry["peers"] = peers
                    entry["ids"] = peers.map { n in StreamAssignment.hex(a.peers.firstIndex(of: n).map { a.ids[$0] } ?? idByName[n]!) }
                }
                // A larger max_bytes must fit on every server that keeps a copy (nats-server: 10047).
                if cfg.maxBytes > a.config.maxBytes, !peers.allSatisfy({ maxBytesFits(cfg, on: $0, except: name) }) {
                    throw JSAPIError.storageResources("insufficient storage resources available")
                }
                entry["reply"] = reply
                entry["type"] = type
                try proposeMeta(entry, reply: reply, type: type)
                return
            }
            if let a = assignments[name] {
                guard a.config == cfg else { throw JSAPIError.streamNameExists }
                var info = info(for: a)
                info["did_create"] = true
                info["type"] = type
                js.reply(reply, info)
                return
            }
            // Checked again at apply (creates in flight together), here for a prompt answer.
            if let e = limitRefusal(cfg, isUpdate: false) { throw e }
            let (servers, idByName) = voterServers()
            let fitting = servers.filter { maxBytesFits(cfg, on: $0) }
            guard let peers = Placement.choose(replicas: cfg.numReplicas, among: fitting, load: assignments.load, leads: assignments.leads) else {
                if fitting.count < servers.count && cfg.numReplicas <= servers.count {
                    throw JSAPIError.noPeers("no suitable peers for placement, insufficient storage")
                }
                throw JSAPIError(500, 10074, "insufficient resources")
            }
            // Group ids are unique per proposal (several creates may be in flight before any applies).
            let group = max(nextGroup, proposedGroup)
            proposedGroup = group + 1
            let a = StreamAssignment(account: js.account.name, config: cfg, peers: peers, ids: peers.map { idByName[$0]! }, group: group, created: JSTime.nowNanos())
            // The stream's first leader answers (as nats-server does): by then it takes publishes.
            inflightCreates[try proposeMetaIndex(["op": "create", "assignment": a.json, "reply": reply, "type": type])] = (reply, type)
        case ("DELETE", 3):
            guard assignments[op[2]] != nil else { throw JSAPIError.streamNotFound }
            try proposeMeta(["op": "delete", "name": op[2], "reply": reply, "type": type], reply: reply, type: type)
        default:
            throw JSAPIError.badRequest("unknown stream API request")
        }
    }

    func proposeMeta(_ body: [String: Any], reply: String, type: String) throws {
        pendingMeta[try proposeMetaIndex(body)] = (reply, type)
    }

    func proposeMetaIndex(_ body: [String: Any]) throws -> LogIndex {
        do {
            return try host.propose(Self.metaGroup, JSJSON.encode(body))
        } catch {
            throw JSAPIError.unavailable(.metaLeaderChanged)
        }
    }

    // MARK: - meta state machine (every node)

    func raftApply(_ entry: Entry) {
        metaApplied = entry.index
        let pending = pendingMeta.removeValue(forKey: entry.index)
        inflightCreates[entry.index] = nil
        let callback = metaCallbacks.removeValue(forKey: entry.index)
        var response: [String: Any]?
        /// A create of a stream that exists with the same config (a client's retry that
        /// committed after its first attempt): no new stream leader answers it, the meta leader does.
        var existingAnswer = false
        /// The stream an update or delete changes: its leader answers (see `answerStreamChange`).
        var changed: ChangedStream?
        /// The API request's reply subject and response type, carried in the entry (every node).
        var requester: (reply: String, type: String)?
        do {
            let o = try JSONObject.parse(entry.data, typeName: "MetaEntry")
            if let r = try? o.string("reply"), let t = try? o.string("type") { requester = (r, t) }
            switch try o.string("op") ?? "" {
            case "create":
                guard let ao = try o.object("assignment", typeName: "StreamAssignment") else { break }
                let a = try StreamAssignment.decode(ao)
                nextGroup = max(nextGroup, a.group + 1)
                if let existing = assignments[a.config.name] {
                    if existing.config == a.config {
                        var info = info(for: existing)
                        info["did_create"] = true
                        response = info
                        existingAnswer = true
                    } else {
                        response = JSAPIError.streamNameExists.responseBody
                    }
                    break
                }
                if assignments.usesGroup(a.group) {
                    // Two creates raced under different meta leaders: the first one wins.
                    response = JSAPIError.unavailable(.metaLeaderChanged).responseBody
                    break
                }
                if a.account != js.account.name {
                    // Another account's assignment in this account's log: never written by this
                    // version; refused rather than served in the wrong namespace.
                    js.server.logger.error("JetStream cluster: meta entry \(entry.index) assigns stream '\(a.config.name)' of account '\(a.account)' in account '\(js.account.name)'; ignored")
                    response = JSAPIError.badRequest("stream assignment of another account").responseBody
                    break
                }
                if let e = limitRefusal(a.config, isUpdate: false) {
                    response = e.responseBody
                    break
                }
                if !assignments.streams(overlapping: a.config.subjects).isEmpty {
                    // Overlapping creates in flight together: the first to commit wins.
                    response = JSAPIError.subjectsOverlap.responseBody
                    break
                }
                assignments[a.config.name] = a
                for (n, id) in zip(a.peers, a.ids) { host.learn(name: n, id: id) }
                if a.ids.contains(host.me) { openReplica(a, createReply: requester) }
                var info = info(for: a)
                info["did_create"] = true
                response = info
                // Every node applies this; the meta leader alone tells (once per change).
                if isMetaLeader { js.streamAdvisory(a.config.name, action: "create") }
            case "update":
                guard let co = try o.object("config", typeName: "StreamConfig") else { break }
                let cfg = try StreamConfig.decodeNormalized(co, clustered: true)
                guard var a = assignments[cfg.name] else { response = JSAPIError.streamNotFound.responseBody; break }
                changed = ChangedStream(ledHere: leads(cfg.name), group: GroupID(a.group), subjects: a.config.subjects + cfg.subjects)
                if let e = limitRefusal(cfg, isUpdate: true) { response = e.responseBody; break }
                a.config = cfg
                assignments[cfg.name] = a
                if o.has("peers") { try setPeers(&a, o) }
                if let r = replicas[cfg.name] {
                    // Applied where the stream's leader puts it in the stream's log.
                    r.configAssigned(cfg, metaIndex: entry.index.rawValue)
                    membershipWork.insert(r)
                } else if let s = js.streams[cfg.name] {
                    js.applyConfig(s, cfg)
                }
                response = info(for: a)
                if isMetaLeader { js.streamAdvisory(cfg.name, action: "modify") }
            case "delete":
                guard let name = try o.string("name"), let a = assignments.removeValue(forKey: name) else {
                    response = JSAPIError.streamNotFound.responseBody
                    break
                }
                changed = ChangedStream(ledHere: leads(name), group: GroupID(a.group), subjects: a.config.subjects)
                if let r = replicas.removeValue(forKey: name) {
                    r.destroy()
                } else if cancelReplicaOpen(name) {
                    // Its files are closed and removed once the open finishes.
                } else if let d = js.streamDirectory(name), FileManager.default.fileExists(atPath: d + "/cluster.json") {
                    AtomicFile.removeTree(d) // a replica that moved off this server earlier
                }
                response = ["success": true]
                if isMetaLeader { js.streamAdvisory(name, action: "delete") }
            case let op:
                if let r = try applyMembershipOp(op, o) {
                    response = r
                } else {
                    js.server.logger.warning("JetStream cluster: unknown meta entry at \(entry.index)")
                }
            }
        } catch {
            js.server.logger.error("JetStream cluster: cannot apply meta entry \(entry.index): \(error)")
            response = (error as? JSAPIError)?.responseBody
        }
        if let callback { callback(response ?? JSAPIError.badRequest().responseBody) }
        if let changed, var body = response, body["error"] == nil {
            answerStreamChange(changed, requester: requester, pending: pending, body: &body)
        } else if let pending, var body = response {
            body["type"] = pending.type
            js.reply(pending.reply, body)
        } else if isMetaLeader, var body = response, body["error"] != nil || existingAnswer, let requester {
            // A refused create, or one the first attempt already made: no new stream leader
            // answers it, so the meta leader does.
            body["type"] = requester.type
            js.reply(requester.reply, body)
        }
    }

    func raftApplySnapshot(_ snapshot: Snapshot) {
        js.server.logger.warning("JetStream cluster: meta snapshots are not produced by this version; ignoring one")
    }

    func raftLeadershipChanged(isLeader: Bool, leader: NodeID?) {
        isMetaLeader = isLeader
        if !isLeader { answerUnavailable() }
        membership.pendingAdoptions.removeAll()
        // Proposals of an earlier term may never commit: decide them again from the state.
        membership.pendingNames.removeAll()
        membership.pendingMoves.removeAll()
        js.server.logger.info(isLeader ? "JetStream cluster: this server is the meta leader" : "JetStream cluster: meta leadership moved")
    }

    /// Leadership lost: requests proposed here are answered "temporarily unavailable" now, so
    /// their clients retry at once instead of waiting out their timeout. An entry may still
    /// commit under the new leader; a retry then finds the change made (a create of the same
    /// config answers with the stream's info) and a later second answer is dropped by clients.
    private func answerUnavailable(_ why: JSAPIError.Unavailable = .metaLeaderChanged) {
        let waiting = Array(pendingMeta.values) + Array(inflightCreates.values)
        let callbacks = Array(metaCallbacks.values)
        pendingMeta.removeAll()
        inflightCreates.removeAll()
        metaCallbacks.removeAll()
        let unavailable = JSAPIError.unavailable(why).responseBody
        for w in waiting {
            var body = unavailable
            body["type"] = w.type
            js.reply(w.reply, body)
        }
        for done in callbacks { done(unavailable) }
    }

    /// This store left the meta group (retired): what waited on it is answered unavailable.
    func dropMetaLeadership() {
        isMetaLeader = false
        answerUnavailable(.removedFromCluster)
        fallbackReplies.removeAll()
    }

    /// Whether `cfg`'s `max_bytes` fits on `server` beside what the account's streams with a
    /// replica there reserve, under what that server's `max_*_store` leaves for this account
    /// beside the other accounts' reservations there (`roomHere`; another server's as its usage
    /// reports announce it, so those lag by up to a report interval; unknown: no limit).
    /// Checked by the meta leader when it places a new stream (10005) or grows or enlarges one
    /// (10047), as nats-server's placement does; not at apply, since the limits are not in the log.
    /// `except`: a stream being updated, whose own reservation the new one replaces.
    func maxBytesFits(_ cfg: StreamConfig, on server: String, except: String? = nil) -> Bool {
        guard cfg.maxBytes > 0 else { return true }
        let limit = server == myName ? js.nodeUsage.room(cfg.storage, for: ObjectIdentifier(js)) : remoteUsage.limit(of: server, cfg.storage)
        guard limit >= 0 else { return true }
        let others = assignments.values.lazy.filter { $0.config.name != except }
        return NodeStoreUsage.fits(maxBytes: cfg.maxBytes, reserved: Placement.reserved(on: server, cfg.storage, in: others), limit: limit)
    }

    /// The account's `jetstream { ... }` limits against the replicated assignments: the same
    /// on every node, so the check at apply decides alike everywhere. Each stream reserves its
    /// `max_bytes` once per replica, as nats-server counts a clustered account.
    func limitRefusal(_ cfg: StreamConfig, isUpdate: Bool) -> JSAPIError? {
        js.limits?.refusal(forStream: cfg, isUpdate: isUpdate, streamCount: assignments.count,
                           reservedByOthers: AccountJetStreamLimits.reservation(by: assignments.values.map(\.config), cfg.storage,
                                                                               except: cfg.name))
    }

    // MARK: - replicas

    func createReplica(_ a: StreamAssignment, memoryInstall: StreamReplica.MemoryInstall? = nil) {
        do {
            let r = try StreamReplica.open(cluster: self, assignment: a, memoryInstall: memoryInstall)
            replicas[a.config.name] = r
        } catch {
            js.server.logger.error("JetStream cluster: cannot create replica of stream '\(a.config.name)': \(error)")
        }
    }

    /// Reopens a replica whose stream copy finished: opening switches the copy in. A memory
    /// stream's copy (`memoryCopy`) replaces its store, and its Raft log (kept: it holds the
    /// term and vote) continues after the copied index.
    func reinstall(_ r: StreamReplica, memoryCopy: (store: MemoryStore, meta: SnapshotMetadata, skews: DedupSkews, config: StreamConfig?)? = nil) {
        guard replicas[r.name] === r, let a = assignments[r.name] else { return }
        let storage = host.storage(of: r.group)
        r.close()
        replicas[r.name] = nil
        createReplica(a, memoryInstall: memoryCopy.flatMap { c in storage.map { (c.store, c.meta, $0, c.skews, c.config) } })
    }
}
