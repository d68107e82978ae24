import Dispatch
import StreamLog
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// JetStream on one node (R1): the `$JS.API` surface, stream ingest, consumers and acks.
///
/// Threading: every piece of JetStream state lives on one serial `queue`. Internal
/// subscription handlers run on publisher threads; they copy the message and hop onto the
/// queue. Publishes are group-committed: appends queue up, one `flush` job syncs every dirty
/// store, then sends the PubAcks and wakes consumers — a positive PubAck always follows fsync.
public final class JetStreamService: @unchecked Sendable {
    /// `$JS.API.INFO` `api.level`: 1 (2.11: per-message TTL). Level-2+ features (counters,
    /// atomic batches, schedules) are refused at stream create.
    public static let apiLevel = 1

    let server: NATSServer
    /// The account this JetStream serves (`$G` unless per-account JetStream).
    public let account: Account
    /// The account's `jetstream { ... }` limits; nil: none (the global account).
    let limits: AccountJetStreamLimits?
    /// Where this JetStream subscribes, publishes and delivers: its account's namespace.
    let bus: AccountBus
    let queue = DispatchQueue(label: "clusterd.jetstream")
    /// Publishes on stream subjects waiting for `queue` (one hop per block, not per message),
    /// bounded (`enqueueIngest`). A `var` for tests.
    var ingestMailbox = IngestMailbox(maxItems: JetStreamService.maxQueuedPublishes, maxBytes: JetStreamService.maxQueuedPublishBytes)
    let ingestWarnings = NIOLockedValueBox(LogThrottle(interval: 10))
    /// Acks on their way to the queue (`receiveAck`), bounded like the publishes.
    private let ackMailbox = Mailbox<AckItem>(maxItems: JetStreamService.maxQueuedPublishes)
    let ackWarnings = NIOLockedValueBox(LogThrottle(interval: 10))
    /// `<store_dir>/jetstream` for `$G` (where it always was), `<store_dir>/jetstream/.accounts/<name>`
    /// for another account (stream names cannot contain '.', so no stream directory collides).
    let root: String?
    var streams: [String: Stream] = [:]
    /// Messages one direct-get batch or `multi_last` request sends at most: it runs on this
    /// queue, so a hostile `batch` must not hold it for long. The `204 EOB` still counts the
    /// rest in `Nats-Num-Pending`, which is how a client knows to ask again. Tests lower it.
    var directBatchLimit = 10_000
    /// Streams appended to since the last flush (`Stream.dirty` puts them here).
    var dirtyStreams = AttentionSet<Stream>()
    /// Streams whose newest message was removed since the last tick: its id is written down
    /// then (`Stream.keepRemovedLastID`).
    var removedLastPending = AttentionSet<Stream>()
    /// Streams with retention removals not yet proposed (`Stream.retentionRemoved`).
    var retentionRemovedPending = AttentionSet<Stream>()
    /// Streams with subject delete markers due (`Stream.markersDue`, `emitMarkers`).
    var markersPending = AttentionSet<Stream>()
    /// Clustered: the streams with timed work (`Stream.isIdleForTick` false), the only ones a
    /// housekeeping tick visits. A stream enters when it gets some (`Stream.noteTimedWork`).
    var timedStreams = AttentionSet<Stream>()
    /// Streams configured with `sources` (by name), and those whose sources run here
    /// (`StreamSources.swift`).
    var streamsWithSources = Set<String>()
    var sourcing: [String: Stream] = [:]
    /// Snapshots being sent (`StreamSnapshotSender`) and restores being staged, by stream.
    var snapshotSenders: [StreamSnapshotSender] = []
    var restoreSessions: [String: StreamRestoreSession] = [:]
    var restoreFeeds: [String: ClusteredRestoreFeed] = [:]
    /// Set while a source's or mirror's consumer is created (`createInternalConsumer`).
    var creatingInternalConsumer = false
    private var subscriptions: [Subscription] = []
    private var timer: DispatchSourceTimer?
    /// A `flush` is queued (`JetStreamService+GroupCommit.swift`).
    var flushScheduled = false
    /// PubAcks waiting for the next flush; `stream` is set when the message was stored (its
    /// ack turns into an error if that stream's sync fails).
    var pendingReplies: [(subject: String, body: [UInt8], stream: String?)] = []
    /// Acks of messages a source or mirror took from a work-queue stream, sent once `stream`
    /// synced (never when its sync failed: the origin keeps the message).
    var pendingSourceAcks: [(subject: String, stream: String)] = []
    private var pumpScheduled = Set<ObjectIdentifier>()
    /// Connections that got consumer deliveries during one `Consumer.pump`, flushed at its end
    /// (used on the JetStream queue only).
    let deliveryFlush = FlushBatch()
    private var lastConsumerPersist: Int64 = 0
    var apiTotal = 0
    var apiErrors = 0
    /// API requests on their way to the queue, bounded (`APIBacklog`). A `var` for tests.
    var apiBacklog = APIBacklog()
    var deliveredMessages = 0
    var deliveredBytes = 0
    var stopped = false
    /// Test seam: the file system new file-stream logs use (nil = POSIX).
    var fileSystemOverride: FileSystem?
    /// Test seam: every clustered consumer record write on this node fails with this (a full disk).
    var consumerRecordFault: StoreError?
    /// Set when the server is part of a cluster: meta group and per-stream Raft groups.
    var cluster: JetStreamCluster?
    /// `$JS.API.SERVER.REMOVE` in this account is the operator's (answered by
    /// `JetStreamAccounts`): the system account, or `$G` when no accounts are configured.
    var isOperatorAccount = false
    /// The API request being handled (clustered operations answer it after they commit).
    var apiRequest: (reply: String, type: String)?
    private var ticks = 0
    /// Opt-in `sync_interval` (seconds; nil: `always`), fixed at start (a reload keeps it): on
    /// one node stores are acknowledged unsynced and fsync'd every interval, in a cluster stream
    /// groups count a write as persisted (`JetStreamCluster`).
    let syncIntervalSeconds: Double?
    /// Opt-in `sync_interval`: single-node stores written since the last periodic sync.
    var periodicSyncs: [String: Stream] = [:]
    /// Bytes stored here per storage kind, for the account's limits, the server's limits
    /// (`nodeUsage`) and, in a cluster, the usage reports to the other nodes (not kept on a
    /// single node without limits).
    var storedBytes = AccountUsageLedger([])
    /// The server's `max_memory_store` / `max_file_store`, shared by every account here.
    var nodeUsage: NodeStoreUsage { server.jetStreamNodeUsage }
    var lastNodeReport = NodeStoreUsage.Report()
    /// The housekeeping timer's period; the cluster's tick runs every second one (100 ms).
    static let tickSeconds = 0.05

    /// `seconds` as a whole number of ticks of `tickSeconds` (at least one).
    static func ticks(_ seconds: Double, of tickSeconds: Double = JetStreamService.tickSeconds) -> Int {
        max(1, Int((seconds / tickSeconds).rounded()))
    }

    /// The `nodeUsage.generation` (limit changes by reload) this service last counted for.
    var nodeLimitsSeen: UInt64 = 0
    /// A clustered copy was opened or removed here: its reservation is reported at the next
    /// tick (once for all of them: 10,000 copies opening at start would each count every stream).
    var reservationsChanged = false

    /// JetStream for the global account `$G`.
    public convenience init(server: NATSServer) {
        self.init(server: server, account: server.globalAccount, limits: nil)
    }

    /// JetStream for `account`, enforcing `limits` (nil: unlimited).
    public init(server: NATSServer, account: Account, limits: AccountJetStreamLimits?) {
        self.server = server
        self.account = account
        self.limits = limits
        self.syncIntervalSeconds = server.options.jetStreamSyncIntervalSeconds
        self.bus = AccountBus(server: server, account: account)
        let base = server.options.storeDirectory ?? (NSTemporaryDirectory() + "/clusterd-js-\(getpid())")
        root = base + "/jetstream" + (account.isGlobal ? "" : "/.accounts/" + AccountDirectoryName.encode(account.name))
    }

    /// Loads persisted streams and consumers, subscribes to the API, ack and flow-control
    /// subjects, starts the housekeeping timer and registers `/jsz`.
    /// `registerMonitoring: false` when several accounts' JetStreams share `/jsz` (see
    /// `JetStreamAccounts`).
    public func start(registerMonitoring: Bool = true) throws {
        if let root {
            try AtomicFile.makeDirectory(root)
            // Archives staged by restores that a stop interrupted (nothing was created from them).
            AtomicFile.removeTree(root + "/.restore")
        }
        // Every account's JetStream is clustered: its own meta group and stream groups, on
        // Raft route frames of its own (`JetStreamCluster.routeNamespace`).
        let clustered = server.routeManager != nil
        if clustered, let root {
            let c = try JetStreamCluster(js: self, root: root)
            cluster = c
            server.healthChecks.append { [weak self, weak c] query in
                guard let self, let c else { return nil }
                return self.queue.sync { c.healthError(query) }
            }
            try queue.sync { try c.start() }
        } else {
            try queue.sync {
                try recover()
                rebuildUsageLedger()
                if nodeUsage.isLimited { reportNodeUsage(withReservations: true) }
            }
        }
        // In a cluster every node hears every API request once (the answering node is the meta
        // or stream leader, see JetStreamCluster). Acks and flow-control replies go to the
        // consumer, which runs on its stream's leader: in a cluster only that leader subscribes
        // them (`subscribeIngest`), so they cross one route hop instead of reaching every node.
        subscriptions.append(bus.subscribeInternal("$JS.API.>", propagates: clustered) { [weak self] msg in self?.receiveAPI(msg) })
        if !clustered {
            subscriptions.append(bus.subscribeInternal("$JS.ACK.>") { [weak self] msg in self?.receiveAck(msg) })
            subscriptions.append(bus.subscribeInternal("$JS.FC.>") { [weak self] msg in self?.receiveFlowControl(msg) })
        }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .milliseconds(Int(Self.tickSeconds * 1000)), repeating: .milliseconds(Int(Self.tickSeconds * 1000)))
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
        timer = t
        if registerMonitoring { server.monitoringHandlers["/jsz"] = { [weak self] query in self?.jsz(query) ?? [:] } }
        // Leaderships move while clients are still served; stores close once they left.
        server.handoffHooks.append { [weak self] in self?.handOffLeaderships() }
        server.shutdownHooks.append { [weak self] in self?.stop() }
        if account.isGlobal {
            server.logger.info("Starting JetStream")
        } else {
            server.logger.info("Starting JetStream for account \"\(account.name)\"")
        }
        server.logger.info("  Store Directory: \"\(root ?? "")\"")
        server.logger.info("  API Level: \(JetStreamService.apiLevel)")
    }

    /// Flushes and closes every store; pending pulls get `409 Server Shutdown`. Hands off
    /// again first: a leadership this node regained since the handoff hook ran.
    public func stop() {
        // No more publishes here; those already queued run first and are forwarded (or refused).
        queue.sync {
            guard !stopped, let cluster else { return }
            for r in cluster.replicas.values { r.unsubscribeIngest() }
        }
        handOffLeaderships()
        queue.sync {
            guard !stopped else { return }
            stopped = true
            timer?.cancel()
            for sub in subscriptions { bus.unsubscribeInternal(sub) }
            for s in sourcing.values { s.stopSources() }
            sourcing = [:]
            for s in streams.values { s.persistSourceSeqs(now: SourceSession.monoNanos()) }
            flush()
            persistRemovedLastIDs()
            cluster?.stop()
            nodeUsage.remove(ObjectIdentifier(self))
            for s in streams.values {
                for sub in s.subscriptions { bus.unsubscribeInternal(sub) }
                for c in s.consumers.values {
                    c.cancelPulls("409 Server Shutdown")
                    persist(c)
                }
                s.store.close()
            }
            server.logger.info(account.isGlobal ? "JetStream Shutdown" : "JetStream Shutdown for account \"\(account.name)\"")
        }
    }

    /// Graceful stop in a cluster: every Raft group led here (meta and streams) hands its
    /// leadership to its most caught-up follower before the routes close, so writes move on
    /// within a round trip instead of waiting out an election. Bounded by 2 s. Then publishes
    /// that met a handover here are let go to the new leaders (`StreamReplica+Handover`) and
    /// those proposed here are answered once applied, which needs the routes still up: bounded
    /// by the 1 s a publish may be held. Last, once each new leader listens, this node stops
    /// announcing its own ingest interest (bounded by 1 s; see `withdrawIngestInterest`).
    public func handOffLeaderships() {
        guard let cluster else { return }
        let started = queue.sync { stopped ? [] : cluster.handOffLeaderships() }
        if !started.isEmpty {
            let deadline = DispatchTime.now() + .seconds(2)
            // Done when every transfer completed or lost its target (gone, or stopping too).
            while DispatchTime.now() < deadline, queue.sync(execute: { cluster.stillToHandOver(started) }) > 0 {
                usleep(20_000)
            }
            let left = queue.sync { cluster.stillLed(started) }
            server.logger.info("JetStream cluster: handed off \(started.count - left) of \(started.count) leaderships")
        }
        // Held publishes go to the new leaders as they are elected; not the full hold limit
        // (a crashed leader's election), which would stretch every stop by seconds.
        let heldDeadline = DispatchTime.now() + .milliseconds(1_100)
        while DispatchTime.now() < heldDeadline, queue.sync(execute: { stopped ? 0 : cluster.heldPublishCount }) > 0 {
            usleep(10_000)
        }
        let withdrawBy = DispatchTime.now() + .seconds(1)
        // No peer staying: no new leader will listen, so nothing to wait for.
        while queue.sync(execute: {
            stopped ? 0 : cluster.withdrawIngestInterest(force: DispatchTime.now() >= withdrawBy || cluster.stayingPeers.isEmpty)
        }) > 0 {
            usleep(10_000)
        }
    }

    // MARK: - inbound hops

    func copy(_ msg: RoutedMessage) -> (String, String?, [UInt8]?, [UInt8]) {
        let h = msg.headers.map { Array($0.readableBytesView) }
        return (msg.subject, msg.reply, h, Array(msg.payload.readableBytesView))
    }

    private func receiveAPI(_ msg: RoutedMessage) {
        let backlog = apiBacklog
        guard backlog.admit() else { return refuseOverLimit(msg, backlog) }
        let (subject, reply, headers, payload) = copy(msg)
        let fromRoute = msg.fromRoute
        queue.async {
            backlog.done()
            self.handleAPI(subject: subject, reply: reply, headers: headers, body: payload, fromRoute: fromRoute)
        }
    }

    /// Acks reach the queue in blocks (`ackMailbox`): a pull consumer's client acks a whole
    /// batch at once, and one queue hop per ack was a thread wake-up per ack.
    private func receiveAck(_ msg: RoutedMessage) {
        let (subject, reply, _, payload) = copy(msg)
        switch ackMailbox.add(AckItem(subject: subject, reply: reply, body: payload)) {
        case .scheduleDrain: queue.async { self.drainAcks() }
        case .queued: break
        case .full: dropAckOverBound(ackMailbox.maxItems)
        }
    }

    private func drainAcks() {
        for a in ackMailbox.take() { handleAck(subject: a.subject, reply: a.reply, body: a.body) }
    }

    private func receiveFlowControl(_ msg: RoutedMessage) {
        let subject = msg.subject
        queue.async {
            // `$JS.FC.<stream>.<consumer>.<id>`, split by bytes as every subject is (`Sublist.tokens`).
            let t = Sublist.tokens(subject)
            guard t.count >= 5, let s = self.streams[t[2]], let c = s.consumers[t[3]] else { return }
            c.flowControlAnswered(subject, now: JSTime.nowNanos())
        }
    }

    /// The queue group a clustered stream's replicas subscribe its subjects in: a publish
    /// reaches exactly one of them, also while a former leader still listens during a handover
    /// (it forwards to the new leader, which would otherwise store a second copy).
    static let ingestQueue = "_sys_js_ingest"

    /// Subscribes the stream's subjects for ingest (clustered: its committed config's, which
    /// the replica may not have applied yet).
    func subscribeIngest(_ stream: Stream) {
        for sub in stream.subscriptions { bus.unsubscribeInternal(sub) }
        let name = stream.name
        let clustered = cluster != nil
        stream.subscriptions = stream.committedConfig.subjects.map { subject in
            bus.subscribeInternal(subject, queue: clustered ? Self.ingestQueue : nil, propagates: clustered) { [weak self] msg in
                guard let self else { return }
                let (subj, reply, headers, payload) = self.copy(msg)
                self.enqueueIngest(.init(stream: name, subject: subj, reply: reply, headers: headers, payload: payload))
            }
        }
        if clustered {
            // The stream's consumers run here (the leader): their acks and flow-control replies
            // (`Consumer.recordDelivery` hands out only this `$JS.ACK.<stream>.…` form).
            stream.subscriptions.append(bus.subscribeInternal("$JS.ACK.\(name).>", propagates: true) { [weak self] msg in
                self?.receiveAck(msg)
            })
            stream.subscriptions.append(bus.subscribeInternal("$JS.FC.\(name).>", propagates: true) { [weak self] msg in
                self?.receiveFlowControl(msg)
            })
        }
        // Clustered: every caught-up replica subscribes direct gets (StreamReplica+Reads).
        if stream.config.allowDirect && !clustered {
            stream.subscriptions += subscribeDirectGets(name, prefersLocal: false) { [weak self] subject, reply, _, body in
                self?.handleDirectGet(subject: subject, reply: reply, body: body)
            }
        }
    }

    /// Joins the `_sys_` queue group of a stream's direct-get subjects (as nats-server);
    /// `handler` runs on the JetStream queue.
    func subscribeDirectGets(_ name: String, prefersLocal: Bool,
                             handler: @escaping (_ subject: String, _ reply: String?, _ headers: [UInt8]?, _ body: [UInt8]) -> Void) -> [Subscription] {
        ["$JS.API.DIRECT.GET.\(name)", "$JS.API.DIRECT.GET.\(name).>"].map { pattern in
            bus.subscribeInternal(pattern, queue: "_sys_", propagates: cluster != nil, prefersLocal: prefersLocal) { [weak self] msg in
                guard let self else { return }
                let (subj, reply, headers, payload) = self.copy(msg)
                self.queue.async { handler(subj, reply, headers, payload) }
            }
        }
    }

    /// Pumps `c` again after a delay (replay original, pause end).
    func schedulePump(_ c: Consumer, afterNanos delay: Int64) {
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(min(delay, 3_600_000_000_000)))) { [weak self, weak c] in
            guard self != nil, let c, !c.deleted else { return }
            c.pump(now: JSTime.nowNanos())
        }
    }

    func schedulePump(_ c: Consumer) {
        let id = ObjectIdentifier(c)
        guard pumpScheduled.insert(id).inserted else { return }
        queue.async {
            self.pumpScheduled.remove(id)
            if !c.deleted { c.pump(now: JSTime.nowNanos()) }
        }
    }

    func noteDelivered(bytes: Int) {
        deliveredMessages += 1
        deliveredBytes += bytes
    }

    // MARK: - housekeeping

    private func tick() {
        guard !stopped else { return }
        ticks += 1
        if let cluster {
            if ticks % 2 == 0 { cluster.tick() }
            cluster.releaseHeldPublishes()
        }
        let now = JSTime.nowNanos()
        if cluster != nil {
            // Clustered streams dedup at apply; an idle one has nothing else timed (most of a
            // node's streams, when it holds thousands): only the others are visited.
            for s in timedStreams.takeAll() where streams[s.name] === s && !s.isIdleForTick {
                tickStream(s, now: now)
                s.noteTimedWork()
            }
        } else {
            for s in streams.values { tickStream(s, now: now) }
        }
        if now - lastConsumerPersist >= 100_000_000 {
            lastConsumerPersist = now
            if cluster != nil {
                // Consumers run on leaders' streams, which have timed work (their consumers).
                for s in timedStreams.elements where streams[s.name] === s {
                    for c in s.consumers.values where c.dirty { persist(c) }
                }
            } else {
                persistDirtyConsumers()
            }
        }
        persistRemovedLastIDs()
        if !streamsWithSources.isEmpty || !sourcing.isEmpty { tickSources() }
        if !dirtyStreams.isEmpty { scheduleFlush() }
        if let every = syncIntervalSeconds, ticks % Self.ticks(every) == 0 {
            syncPeriodically()
        }
        // Removals (expiry, purges, acks, deletes) reach the account's usage here, within a tick.
        // Without limits (`$G` when no accounts are configured) only the cluster's usage
        // reports read it: every 1.5 s is enough there (nats-server's report interval) and
        // spares an O(streams) count each tick.
        // The server's limits alone: recounted as often as the cluster's reports (between two
        // counts only removals and followers' applies go unseen).
        if limits != nil || ((cluster != nil || nodeUsage.isLimited) && ticks % 30 == 0) { rebuildUsageLedger() }
        noteNodeLimitsChange()
    }

    /// Proposes every stream's pending retention removals (end of a queue round).
    func proposeRetentionRemovals() {
        guard cluster != nil else { return }
        for s in retentionRemovedPending.takeAll() where streams[s.name] === s { proposeRetentionRemovals(s) }
    }

    /// Proposes the messages `s`'s leader found removable for retention to its group; every
    /// replica, the leader included, removes them when the entry applies
    /// (`StreamEntry.retentionRemoved`). Also called before any record of `s`'s consumers is
    /// proposed: a record claiming an ack never commits ahead of the removal it caused, so a
    /// new leader does not hold an acknowledged message no consumer will deliver. Removals
    /// not yet committed when a leader is lost are lost with it, like the acks in its
    /// unflushed records: the new leader delivers those messages again (at least once).
    func proposeRetentionRemovals(_ s: Stream) {
        guard !s.retentionRemoved.isEmpty else { return }
        let seqs = s.retentionRemoved.sorted()
        s.retentionRemoved.removeAll()
        guard let r = cluster?.replicas[s.name] else { return }
        for entry in StreamEntry.encodeRetentionRemoved(seqs) { try? r.proposeEntry(entry, answer: nil) }
    }

    /// Writes down the ids of removed last messages (`Stream.keepRemovedLastID`).
    func persistRemovedLastIDs() {
        for s in removedLastPending.takeAll() where streams[s.name] === s { s.persistRemovedLastID() }
    }

    /// One stream's timed work of a housekeeping tick: expiries, consumers' deadlines.
    private func tickStream(_ s: Stream, now: Int64) {
        if let r = cluster?.replicas[s.name] {
            // Clustered: the leader's clock decides, every replica applies it in log order.
            r.proposeExpiryIfDue(now: now)
        } else {
            let aged = s.expireAged(now: now)
            if s.expireTTL(now: now) || aged {
                s.consumersPurged()
            }
        }
        // Clustered: at apply, with the entry's dedup time. Single node: on the stream's own
        // dedup clock, never on the wall clock (a jump would empty the window).
        if cluster == nil { s.expireDedup(now: s.stampDedupTime(wall: now)) }
        for c in Array(s.consumers.values) {
            if c.checkAckDeadlines() { c.pump(now: now) }
            if c.config.isPush { c.tickPush(now: now) } else {
                c.tickPull(now: now)
                if !c.waiting.isEmpty {
                    c.lastActive = now
                    c.pump(now: now) // resumes after a pause or a full max_ack_pending
                }
            }
            if c.config.inactiveThresholdNanos > 0 && now - c.lastActive > c.config.inactiveThresholdNanos {
                deleteConsumer(c)
            }
        }
    }

    func persistDirtyConsumers() {
        for s in streams.values {
            for c in s.consumers.values where c.dirty { persist(c) }
        }
    }

    func deleteConsumer(_ c: Consumer) {
        let s = c.stream
        c.deleted = true
        c.cancelPulls("409 Consumer Deleted")
        s.consumers[c.name] = nil
        consumerAdvisory(s.name, c.name, action: "delete")
        if let r = cluster?.replicas[s.name] {
            try? r.proposeOp(["op": "consumer_delete", "name": c.name], reply: nil, type: "")
        } else if let dir = s.directory {
            AtomicFile.remove(dir + "/consumers/\(c.name).json")
        }
        s.sweepInterest()
        if s.dirty { scheduleFlush() }
    }

    func reply(_ subject: String?, _ body: [String: Any]) {
        guard let subject else { return }
        bus.publishInternal(subject: subject, payload: ByteBuffer(bytes: JSJSON.encode(body)))
    }
}
