import Dispatch
import StreamLog
import Foundation
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
    let queue = DispatchQueue(label: "clusterd.jetstream")
    /// `<store_dir>/jetstream`, or nil when running without a store directory (memory only).
    let root: String?
    var streams: [String: Stream] = [:]
    private var subscriptions: [Subscription] = []
    private var timer: DispatchSourceTimer?
    private var flushScheduled = false
    /// PubAcks waiting for the next flush; `stream` is set when the message was stored (its
    /// ack turns into an error if that stream's sync fails).
    private var pendingReplies: [(subject: String, body: [UInt8], stream: String?)] = []
    private var pumpScheduled = Set<ObjectIdentifier>()
    private var lastConsumerPersist: Int64 = 0
    var apiTotal = 0
    var apiErrors = 0
    var deliveredMessages = 0
    var deliveredBytes = 0
    var stopped = false
    /// Test seam: the file system new file-stream logs use (nil = POSIX).
    var fileSystemOverride: FileSystem?
    /// Set when the server is part of a cluster: meta group and per-stream Raft groups.
    var cluster: JetStreamCluster?
    /// The API request being handled (clustered operations answer it after they commit).
    var apiRequest: (reply: String, type: String)?
    private var ticks = 0

    public init(server: NATSServer) {
        self.server = server
        let base = server.options.storeDirectory ?? (NSTemporaryDirectory() + "/clusterd-js-\(getpid())")
        root = base + "/jetstream"
    }

    /// Loads persisted streams and consumers, subscribes to the API, ack and flow-control
    /// subjects, starts the housekeeping timer and registers `/jsz`.
    public func start() throws {
        if let root { try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) }
        let clustered = server.routeManager != nil
        if clustered, let root {
            let c = JetStreamCluster(js: self, root: root)
            cluster = c
            try queue.sync { try c.start() }
        } else {
            try queue.sync { try recover() }
        }
        // In a cluster every node hears every API request and ack once (the answering node is
        // the meta or stream leader, see JetStreamCluster).
        subscriptions.append(server.subscribeInternal("$JS.API.>", propagates: clustered) { [weak self] msg in self?.receiveAPI(msg) })
        subscriptions.append(server.subscribeInternal("$JS.ACK.>", propagates: clustered) { [weak self] msg in self?.receiveAck(msg) })
        subscriptions.append(server.subscribeInternal("$JS.FC.>", propagates: clustered) { [weak self] msg in self?.receiveFlowControl(msg) })
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .milliseconds(50), repeating: .milliseconds(50))
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
        timer = t
        server.monitoringHandlers["/jsz"] = { [weak self] query in self?.jsz(query) ?? [:] }
        server.shutdownHooks.append { [weak self] in self?.stop() }
        server.logger.info("Starting JetStream")
        server.logger.info("  Store Directory: \"\(root ?? "")\"")
        server.logger.info("  API Level: \(JetStreamService.apiLevel)")
    }

    /// Flushes and closes every store; pending pulls get `409 Server Shutdown`.
    public func stop() {
        handOffLeaderships()
        queue.sync {
            guard !stopped else { return }
            stopped = true
            timer?.cancel()
            for sub in subscriptions { server.unsubscribeInternal(sub) }
            flush()
            cluster?.stop()
            for s in streams.values {
                for sub in s.subscriptions { server.unsubscribeInternal(sub) }
                for c in s.consumers.values {
                    c.cancelPulls("409 Server Shutdown")
                    persist(c)
                }
                s.store.close()
            }
            server.logger.info("JetStream Shutdown")
        }
    }

    /// Graceful stop in a cluster: every Raft group led here (meta and streams) hands its
    /// leadership to its most caught-up follower before the routes close, so writes move on
    /// within a round trip instead of waiting out an election. Bounded by 2 s.
    public func handOffLeaderships() {
        guard let cluster else { return }
        let started = queue.sync { stopped ? 0 : cluster.handOffLeaderships() }
        guard started > 0 else { return }
        let deadline = DispatchTime.now() + .seconds(2)
        var left = started
        while DispatchTime.now() < deadline {
            left = queue.sync { cluster.ledGroupCount }
            if left == 0 { break }
            usleep(20_000)
        }
        server.logger.info("JetStream cluster: handed off \(started - left) of \(started) leaderships")
    }

    // MARK: - inbound hops

    private func copy(_ msg: RoutedMessage) -> (String, String?, [UInt8]?, [UInt8]) {
        let h = msg.headers.map { Array($0.readableBytesView) }
        return (msg.subject, msg.reply, h, Array(msg.payload.readableBytesView))
    }

    private func receiveAPI(_ msg: RoutedMessage) {
        let (subject, reply, headers, payload) = copy(msg)
        let fromRoute = msg.fromRoute
        queue.async { self.handleAPI(subject: subject, reply: reply, headers: headers, body: payload, fromRoute: fromRoute) }
    }

    private func receiveAck(_ msg: RoutedMessage) {
        let (subject, reply, _, payload) = copy(msg)
        queue.async { self.handleAck(subject: subject, reply: reply, body: payload) }
    }

    private func receiveFlowControl(_ msg: RoutedMessage) {
        let subject = msg.subject
        queue.async {
            let t = subject.split(separator: ".", omittingEmptySubsequences: false)
            guard t.count >= 5, let s = self.streams[String(t[2])], let c = s.consumers[String(t[3])] else { return }
            c.flowControlAnswered(subject, now: JSTime.nowNanos())
        }
    }

    /// Subscribes a stream's subjects for ingest.
    func subscribeIngest(_ stream: Stream) {
        for sub in stream.subscriptions { server.unsubscribeInternal(sub) }
        let name = stream.name
        let clustered = cluster != nil
        stream.subscriptions = stream.config.subjects.map { subject in
            server.subscribeInternal(subject, propagates: clustered) { [weak self] msg in
                guard let self else { return }
                let (subj, reply, headers, payload) = self.copy(msg)
                self.queue.async { self.ingest(stream: name, subject: subj, reply: reply, headers: headers, payload: payload) }
            }
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
            server.subscribeInternal(pattern, queue: "_sys_", propagates: cluster != nil, prefersLocal: prefersLocal) { [weak self] msg in
                guard let self else { return }
                let (subj, reply, headers, payload) = self.copy(msg)
                self.queue.async { handler(subj, reply, headers, payload) }
            }
        }
    }

    // MARK: - publish path (group commit)

    private func ingest(stream name: String, subject: String, reply: String?, headers: [UInt8]?, payload: [UInt8]) {
        if let cluster, !stopped {
            return clusterIngest(cluster, stream: name, subject: subject, reply: reply, headers: headers, payload: payload)
        }
        guard let stream = streams[name], !stopped else { return }
        if subject.hasPrefix("$JS.API.") && !stream.config.noAck { return }
        let outcome = stream.ingest(subject: subject, headers: headers, payload: payload, now: JSTime.nowNanos())
        if outcome.stored {
            for c in stream.consumers.values { c.newMessageStored(subject: subject) }
        }
        if let reply, !stream.config.noAck {
            pendingReplies.append((reply, outcome.response, outcome.stored ? stream.name : nil))
        }
        scheduleFlush()
    }

    func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        queue.async { self.flush() }
    }

    /// Syncs dirty stores, then answers publishers and wakes consumers. A store whose sync
    /// failed gets error PubAcks: nothing is acknowledged that is not durable.
    func flush() {
        flushScheduled = false
        let now = JSTime.nowNanos()
        var synced: [Stream] = []
        var failed: [String: String] = [:]
        for s in streams.values where s.dirty {
            s.dirty = false
            do {
                try s.store.sync()
                synced.append(s)
            } catch {
                failed[s.name] = "\(error)"
                server.logger.error("JetStream store sync failed for stream '\(s.name)': \(error)")
            }
        }
        let replies = pendingReplies
        pendingReplies.removeAll()
        for r in replies {
            var body = r.body
            if let name = r.stream, failed[name] != nil {
                let e = JSAPIError.storageResources("insufficient storage resources available")
                body = Array("{\"error\":\(e.jsonText),\"stream\":\(JSJSON.string(name)),\"seq\":0}".utf8)
            }
            server.publishInternal(subject: r.subject, payload: ByteBuffer(bytes: body))
        }
        for s in synced {
            for c in s.consumers.values { c.pump(now: now) }
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
        if let cluster, ticks % 2 == 0 { cluster.tick() }
        let now = JSTime.nowNanos()
        for s in streams.values {
            let aged = s.expireAged(now: now)
            if s.expireTTL(now: now) || aged {
                s.consumersPurged()
            }
            if cluster == nil { s.expireDedup(now: now) } // clustered: at apply, with the entry's time
            for c in Array(s.consumers.values) {
                if c.checkAckDeadlines(now: now) { c.pump(now: now) }
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
        if now - lastConsumerPersist >= 100_000_000 {
            lastConsumerPersist = now
            persistDirtyConsumers()
        }
        if streams.values.contains(where: { $0.dirty }) { scheduleFlush() }
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
        if let r = cluster?.replicas[s.name] {
            try? r.proposeOp(["op": "consumer_delete", "name": c.name], reply: nil, type: "")
        } else if let dir = s.directory {
            unlink(dir + "/consumers/\(c.name).json")
            AtomicFile.syncDirectory(dir + "/consumers")
        }
        s.sweepInterest()
        if s.dirty { scheduleFlush() }
    }

    func advisory(_ suffix: String, _ body: [String: Any]) {
        var b = body
        b["timestamp"] = JSTime.format(JSTime.nowNanos())
        server.publishInternal(subject: "$JS.EVENT.ADVISORY.\(suffix)", payload: ByteBuffer(bytes: JSJSON.encode(b)))
    }

    func reply(_ subject: String?, _ body: [String: Any]) {
        guard let subject else { return }
        server.publishInternal(subject: subject, payload: ByteBuffer(bytes: JSJSON.encode(body)))
    }

    // MARK: - monitoring

    var usage: (memory: UInt64, storage: UInt64, consumers: Int, messages: UInt64, bytes: UInt64) {
        var mem: UInt64 = 0, disk: UInt64 = 0, cons = 0, msgs: UInt64 = 0
        for s in streams.values {
            let st = s.store.state
            if s.config.storage == .memory { mem += st.bytes } else { disk += st.bytes }
            cons += s.consumers.count
            msgs += st.messages
        }
        return (mem, disk, cons, msgs, mem + disk)
    }

    private func jsz(_ query: [String: String]) -> [String: Any] {
        queue.sync {
            let u = usage
            var o: [String: Any] = [
                "server_id": server.serverID, "now": JSTime.format(JSTime.nowNanos()),
                "config": ["max_memory": server.options.maxMemoryStore, "max_storage": server.options.maxFileStore,
                           "store_dir": root ?? "", "sync_interval": 0, "compress_ok": true],
                "memory": u.memory, "storage": u.storage, "reserved_memory": 0, "reserved_storage": 0,
                "accounts": streams.isEmpty ? 0 : 1, "ha_assets": 0, "api": ["level": JetStreamService.apiLevel, "total": apiTotal, "errors": apiErrors],
                "streams": streams.count, "consumers": u.consumers, "messages": u.messages, "bytes": u.bytes,
            ]
            if let cluster, let meta = cluster.host.node(JetStreamCluster.metaGroup) {
                var mc: [String: Any] = ["name": server.routeManager?.clusterName ?? "", "cluster_size": meta.conf.voters.count,
                                         "raft_groups": cluster.host.groupCount, "leader_term": meta.term.rawValue]
                if let l = meta.leader, let name = cluster.host.name(of: l) { mc["leader"] = name }
                o["meta_cluster"] = mc
            }
            if query["streams"] == "true" || query["streams"] == "1" || query["consumers"] == "true" || query["accounts"] == "true" {
                let details: [[String: Any]] = streams.keys.sorted().compactMap { name in
                    guard let s = streams[name] else { return nil }
                    var d: [String: Any] = ["name": name, "created": JSTime.format(s.created),
                                            "state": s.stateJSON(subjectsFilter: nil, deletedDetails: false)]
                    if query["config"] == "true" { d["config"] = s.config.json }
                    if query["consumers"] == "true" || query["consumers"] == "1" {
                        d["consumer_detail"] = s.consumers.keys.sorted().compactMap { s.consumers[$0]?.infoJSON(now: JSTime.nowNanos()) }
                    }
                    return d
                }
                o["account_details"] = [["name": "$G", "id": "$G", "stream_detail": details]]
            }
            return o
        }
    }

    /// Prometheus text for `/metrics`: per-consumer pending counts and per-stream sizes, to be
    /// appended to the server's own exposition.
    public func prometheusText() -> String {
        struct Row { var stream: String; var consumer: String; var values: [UInt64] }
        func esc(_ v: String) -> String {
            v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        }
        let rows: [Row] = queue.sync {
            var out: [Row] = []
            for s in streams.values {
                for c in s.consumers.values {
                    out.append(Row(stream: s.name, consumer: c.name,
                                   values: [c.numPending, UInt64(c.pending.count), UInt64(c.numRedelivered)]))
                }
                let st = s.store.state
                out.append(Row(stream: s.name, consumer: "", values: [st.messages, st.bytes]))
            }
            return out.sorted { ($0.stream, $0.consumer) < ($1.stream, $1.consumer) }
        }
        let consumerFamilies = [
            ("clusterd_jetstream_consumer_num_pending", "Messages not yet delivered to the consumer"),
            ("clusterd_jetstream_consumer_num_ack_pending", "Delivered messages awaiting ack"),
            ("clusterd_jetstream_consumer_num_redelivered", "Pending messages delivered more than once"),
        ]
        let streamFamilies = [
            ("clusterd_jetstream_stream_messages", "Messages stored in the stream"),
            ("clusterd_jetstream_stream_bytes", "Bytes stored in the stream"),
        ]
        var out = ""
        for (i, family) in consumerFamilies.enumerated() {
            out += "# HELP \(family.0) \(family.1)\n# TYPE \(family.0) gauge\n"
            for r in rows where !r.consumer.isEmpty {
                out += "\(family.0){stream=\"\(esc(r.stream))\",consumer=\"\(esc(r.consumer))\"} \(r.values[i])\n"
            }
        }
        for (i, family) in streamFamilies.enumerated() {
            out += "# HELP \(family.0) \(family.1)\n# TYPE \(family.0) gauge\n"
            for r in rows where r.consumer.isEmpty {
                out += "\(family.0){stream=\"\(esc(r.stream))\"} \(r.values[i])\n"
            }
        }
        return out
    }

    /// Per-consumer pending counts for `/metrics` (stream, consumer, num_pending, num_ack_pending).
    public func consumerPendingCounts() -> [(stream: String, consumer: String, pending: UInt64, ackPending: Int)] {
        queue.sync {
            streams.values.flatMap { s in
                s.consumers.values.map { (s.name, $0.name, $0.numPending, $0.pending.count) }
            }
        }
    }
}
