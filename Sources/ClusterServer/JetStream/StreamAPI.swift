import Foundation
import NIOCore

/// `$JS.API.*` dispatch and the account and stream endpoints.
extension JetStreamService {
    func handleAPI(subject: String, reply: String?, headers: [UInt8]?, body: [UInt8], fromRoute: Bool = false) {
        guard let reply, !stopped else { return }
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.count >= 3 else { return }
        let op = Array(tokens.dropFirst(2))
        if let cluster {
            // Direct gets are answered by the replicas' own subscriptions; with none (no such
            // stream, or no allow_direct) the client's node answers as core no-responders.
            if op.first == "DIRECT" {
                if !fromRoute, op.count >= 3, cluster.metaAvailable, cluster.assignments[op[2]]?.config.allowDirect != true {
                    bus.sendStatus("503", to: reply, fields: [("Nats-Subject", subject)])
                }
                return
            }
            guard clusterDispatch(cluster, op: op, fromRoute: fromRoute, reply: reply,
                                  type: JetStreamService.responseType(op), body: body) else { return }
            if op.count == 3 && op[0] == "STREAM" && op[1] == "RESTORE" {
                // Whether the name is free is read from this node's meta state once it holds
                // everything the meta leader committed (a stream just deleted may not be
                // applied here yet).
                return cluster.host.readIndex(JetStreamCluster.metaGroup) { [weak self] ok in
                    guard let self else { return }
                    if ok {
                        self.serveAPI(subject: subject, op: op, reply: reply, headers: headers, body: body)
                    } else {
                        self.fail(reply, JetStreamService.responseType(op), .unavailable(.noMetaLeader))
                    }
                }
            }
            if let r = linearizableGet(cluster, op: op, headers: headers) {
                // Answered once a ReadIndex round confirmed the leader and the index applied here.
                return cluster.host.readIndex(r.group) { [weak self] ok in
                    guard let self else { return }
                    if ok {
                        self.serveAPI(subject: subject, op: op, reply: reply, headers: headers, body: body)
                    } else {
                        self.fail(reply, JetStreamService.responseType(op), .unavailable(.streamLeader(r.name)))
                    }
                }
            }
        }
        serveAPI(subject: subject, op: op, reply: reply, headers: headers, body: body)
    }

    /// Answers a request this node is to answer (the cluster dispatch already chose it).
    func serveAPI(subject: String, op: [String], reply: String, headers: [UInt8]?, body: [UInt8]) {
        apiRequest = cluster == nil ? nil : (reply, JetStreamService.responseType(op))
        defer { apiRequest = nil }
        if op.first == "DIRECT" {
            // Served by the per-stream direct-get subscriptions; without one (no stream, or no
            // allow_direct) nats-server has no responder, so answer like core no-responders.
            if op.count >= 3, streams[op[2]]?.config.allowDirect != true {
                bus.sendStatus("503", to: reply, fields: [("Nats-Subject", subject)])
            }
            return
        }
        apiTotal += 1
        let type = JetStreamService.responseType(op)
        if let level = NATSHeaderBlock.value("Nats-Required-Api-Level", in: headers), (Int(level) ?? Int.max) > JetStreamService.apiLevel {
            return fail(reply, type, .apiLevel(JetStreamService.apiLevel))
        }
        if op.count == 5 && op[0] == "CONSUMER" && op[1] == "MSG" && op[2] == "NEXT" {
            return handleNext(stream: op[3], consumer: op[4], reply: reply, body: body)
        }
        do {
            var response = try route(op, body: body)
            response["type"] = type
            self.reply(reply, response)
        } catch let e as JSAPIError {
            fail(reply, type, e)
        } catch is DeferredReply {
            // Answered when the replicated operation applies.
        } catch {
            fail(reply, type, .badRequest())
        }
    }

    func fail(_ reply: String, _ type: String, _ e: JSAPIError) {
        apiErrors += 1
        self.reply(reply, Self.errorResponse(type: type, e))
    }

    /// An error answer of response type `type`.
    static func errorResponse(type: String, _ e: JSAPIError) -> [String: Any] {
        var body: [String: Any] = ["type": type, "error": e.json]
        addErrorFields(&body, type: type)
        return body
    }

    /// The fields nats-server's response types carry even in an error (they are not
    /// `omitempty` there): paging, a purge's count, a pause's state.
    static func addErrorFields(_ body: inout [String: Any], type: String) {
        if type.hasSuffix(".stream_info_response") || type.hasSuffix("_names_response") || type.hasSuffix("_list_response") {
            body["total"] = 0
            body["offset"] = 0
            body["limit"] = 0
            if type.hasSuffix(".consumer_names_response") || type.hasSuffix(".consumer_list_response") {
                body["consumers"] = [Any]()
            } else if type.hasSuffix(".stream_names_response") {
                body["streams"] = NSNull() // nats-server 2.15.1: null here, [] in the other three
            } else if type.hasSuffix(".stream_list_response") {
                body["streams"] = [Any]()
            }
        } else if type.hasSuffix(".stream_purge_response") {
            body["purged"] = 0
        } else if type.hasSuffix(".consumer_pause_response") {
            body["paused"] = false
        }
    }

    /// A stream's or consumer's metadata as nats-server shows it: the user's keys plus the API
    /// level the config needs and, unless `levelOnly`, this server's level and version.
    static func serverMetadata(_ user: [String: String]?, requiredLevel: Int, levelOnly: Bool = false) -> [String: String] {
        var md = user ?? [:]
        md["_nats.req.level"] = "\(requiredLevel)"
        if !levelOnly {
            md["_nats.ver"] = ServerVersion.nats
            md["_nats.level"] = "\(apiLevel)"
        }
        return md
    }

    static func responseType(_ op: [String]) -> String {
        let name: String
        switch (op.first ?? "", op.count > 1 ? op[1] : "") {
        case ("INFO", _): name = "account_info_response"
        case ("STREAM", "MSG"): name = op.count > 2 && op[2] == "DELETE" ? "stream_msg_delete_response" : "stream_msg_get_response"
        case ("STREAM", "PEER"): name = "stream_remove_peer_response"
        case ("SERVER", "REMOVE"): name = "meta_server_remove_response"
        case ("STREAM", "LEADER"): name = "stream_leader_stepdown_response"
        case ("CONSUMER", "LEADER"): name = "consumer_leader_stepdown_response"
        case ("META", "LEADER"): name = "meta_leader_stepdown_response"
        case ("STREAM", let v): name = "stream_\(v.lowercased())_response"
        case ("CONSUMER", "DURABLE"): name = "consumer_create_response"
        case ("CONSUMER", let v): name = "consumer_\(v.lowercased())_response"
        default: name = "error_response"
        }
        return "io.nats.jetstream.api.v1.\(name)"
    }

    private func route(_ op: [String], body: [UInt8]) throws -> [String: Any] {
        switch (op.first ?? "", op.count) {
        case ("INFO", 1): return accountInfo()
        case ("STREAM", _): return try routeStream(op, body: body)
        case ("CONSUMER", _): return try routeConsumer(op, body: body)
        default: throw JSAPIError.badRequest("unknown JetStream API request")
        }
    }

    private func routeStream(_ op: [String], body: [UInt8]) throws -> [String: Any] {
        switch (op.count > 1 ? op[1] : "", op.count) {
        case ("CREATE", 3): return try createStream(op[2], body: body, isUpdate: false)
        case ("UPDATE", 3): return try createStream(op[2], body: body, isUpdate: true)
        case ("DELETE", 3): return try deleteStream(op[2])
        case ("INFO", 3): return try streamInfo(op[2], body: body)
        case ("NAMES", 2): return try streamNames(body: body, detailed: false)
        case ("LIST", 2): return try streamNames(body: body, detailed: true)
        case ("PURGE", 3): return try purgeStream(op[2], body: body)
        case ("SNAPSHOT", 3): return try snapshotStream(op[2], body: body)
        case ("RESTORE", 3): return try restoreStream(op[2], body: body)
        case ("MSG", 4) where op[2] == "GET": return try getMessage(op[3], body: body)
        case ("MSG", 4) where op[2] == "DELETE": return try deleteMessage(op[3], body: body)
        default: throw JSAPIError.badRequest("unknown stream API request")
        }
    }

    func lookup(_ name: String) throws -> Stream {
        guard let s = streams[name] else { throw JSAPIError.streamNotFound }
        return s
    }

    /// This account's usage and limits: its own `jetstream { ... }` limits, or for `$G` the
    /// server's store limits.
    private func accountInfo() -> [String: Any] {
        let u = usage
        let own = limits ?? AccountJetStreamLimits()
        let limitsJSON: [String: Any] = [
            "max_memory": limits == nil ? server.options.maxMemoryStore : own.maxMemory,
            "max_storage": limits == nil ? server.options.maxFileStore : own.maxStorage,
            "max_streams": own.maxStreams, "max_consumers": own.maxConsumers, "max_ack_pending": -1,
            "memory_max_stream_bytes": -1, "storage_max_stream_bytes": -1, "max_bytes_required": false,
        ]
        // In a cluster: the bytes of every replica (this node's and the others' last reports, as
        // nats-server counts them) and the max_bytes of every assigned stream.
        let remote = cluster?.remoteUsage
        let configs = cluster.map { $0.assignments.values.map(\.config) } ?? streams.values.map(\.config)
        return [
            "memory": saturatingAdd(u.memory, remote?.total(.memory) ?? 0),
            "storage": saturatingAdd(u.storage, remote?.total(.file) ?? 0),
            "reserved_memory": AccountJetStreamLimits.reserved(by: configs, .memory),
            "reserved_storage": AccountJetStreamLimits.reserved(by: configs, .file),
            // In a cluster the account's streams are its assignments (not only replicas held here).
            "streams": cluster?.assignments.count ?? streams.count, "consumers": u.consumers, "limits": limitsJSON,
            "api": ["level": JetStreamService.apiLevel, "total": apiTotal, "errors": apiErrors],
        ]
    }

    /// The `max_bytes` of the streams held here in `storage` (`/jsz`'s `reserved_*`).
    func reserved(_ storage: StreamConfig.Storage) -> Int64 {
        AccountJetStreamLimits.reserved(by: streams.values.map(\.config), storage)
    }

    /// What the streams held here (all but `except`) reserve against the account's limits.
    func reservation(_ storage: StreamConfig.Storage, except: String?) -> Int64 {
        AccountJetStreamLimits.reservation(by: streams.values.map(\.config), storage, except: except)
    }

    // MARK: - create / update / delete

    func createStream(_ name: String, body: [UInt8], isUpdate: Bool) throws -> [String: Any] {
        let cfg = try validatedStreamConfig(name, body: body, isUpdate: isUpdate)
        if isUpdate { return try updateStream(name, cfg) }
        if let existing = streams[name] {
            guard existing.config == cfg else { throw JSAPIError.streamNameExists }
            var info = existing.infoJSON()
            info["did_create"] = true // nats-server sets it on every successful create
            return info
        }
        if let e = limits?.refusal(forStream: cfg, isUpdate: false, streamCount: streams.count,
                                   reservedByOthers: reservation(cfg.storage, except: nil)) { throw e }
        if let e = serverLimitRefusal(cfg, except: nil) { throw e }
        let store = try makeStoreChecked(cfg)
        let s = Stream(service: self, config: cfg, store: store, created: JSTime.nowNanos(),
                       directory: cfg.storage == .file ? streamDirectory(name) : nil)
        if cfg.firstSeq > 0 { try? store.skip(toNext: cfg.firstSeq) }
        do {
            try persistMeta(s)
            try store.sync()
        } catch {
            store.destroy()
            throw JSAPIError.storageResources("insufficient storage resources available")
        }
        streams[name] = s
        if nodeUsage.isLimited { reportNodeUsage(withReservations: true) }
        s.noteTimedWork()
        subscribeIngest(s)
        streamAdvisory(name, action: "create")
        var info = s.infoJSON()
        info["did_create"] = true
        return info
    }

    /// Parses and checks a create/update request; the same rules on one node and in a cluster
    /// (where subjects are checked against every assigned stream, not only local replicas).
    func validatedStreamConfig(_ name: String, body: [UInt8], isUpdate: Bool) throws -> StreamConfig {
        let o = try JSONObject.parse(body, typeName: "StreamConfig")
        var cfg = try StreamConfig.decode(o)
        if !isUpdate {
            if cfg.name != name { throw JSAPIError.streamNameMismatch }
            if name.contains("/") || name.contains("\\") { throw JSAPIError.invalidStreamName }
            if cfg.sealed { throw JSAPIError.streamConfig("stream configuration for create can not be sealed") }
        }
        try cfg.normalize(clustered: cluster != nil)
        if isUpdate && cfg.name != name { throw JSAPIError.streamNameMismatch }
        if !cfg.sources.isEmpty || cfg.mirror != nil {
            try Self.checkSourceCycle(cfg) { self.streamConfig(named: $0)?.upstreams }
            // A mirror stores its origin's messages as they are (nats-server 2.15.1, probed).
            if let m = cfg.mirror, let origin = streamConfig(named: m.name), cfg.maxMsgSize > 0, origin.maxMsgSize > 0,
               cfg.maxMsgSize < origin.maxMsgSize {
                throw JSAPIError(400, 10030, "stream mirror must have max message size >= source")
            }
        }
        if let cluster {
            // Indexed: a scan of every stream per create grew with the stream count.
            if !cluster.assignments.streams(overlapping: cfg.subjects, except: name).isEmpty { throw JSAPIError.subjectsOverlap }
            return cfg
        }
        for other in streams.values.map(\.config) where other.name != name {
            for a in cfg.subjects {
                for b in other.subjects where Subject.overlaps(a, b) { throw JSAPIError.subjectsOverlap }
            }
        }
        return cfg
    }

    /// Refuses sources or a mirror that lead back to the stream through other streams' sources
    /// and mirrors (nats-server 2.15.1: 500/10052 "detected cycle"): its messages would be
    /// copied round forever. `upstreamsOf`: the streams another one copies from (nil: no such stream).
    static func checkSourceCycle(_ cfg: StreamConfig, upstreamsOf: (String) -> [String]?) throws {
        var seen = Set<String>()
        var next = cfg.upstreams
        while let n = next.popLast() {
            if n == cfg.name { throw JSAPIError.streamConfig("detected cycle") }
            guard seen.insert(n).inserted else { continue }
            next += upstreamsOf(n) ?? []
        }
    }

    private func makeStoreChecked(_ cfg: StreamConfig) throws -> MessageStore {
        do {
            if cfg.storage == .file, let dir = streamDirectory(cfg.name) {
                // A leftover directory of a deleted stream must not resurrect old messages.
                AtomicFile.removeTree(dir)
            }
            return try makeStore(for: cfg)
        } catch {
            throw JSAPIError.storageResources("insufficient storage resources available")
        }
    }

    private func updateStream(_ name: String, _ cfg: StreamConfig) throws -> [String: Any] {
        let s = try lookup(name)
        try s.config.checkUpdate(to: cfg)
        if let e = limits?.refusal(forStream: cfg, isUpdate: true, streamCount: streams.count,
                                   reservedByOthers: reservation(cfg.storage, except: name)) { throw e }
        if let e = serverLimitRefusal(cfg, except: name) { throw e }
        if cfg.maxConsumers > 0 && s.publicConsumerCount > cfg.maxConsumers {
            throw JSAPIError.streamUpdate("stream configuration update can not lower max consumers below current")
        }
        applyConfig(s, cfg)
        if nodeUsage.isLimited { reportNodeUsage(withReservations: true) }
        streamAdvisory(name, action: "modify")
        return s.infoJSON()
    }

    /// A single node's check of a stream's `max_bytes` against the server's storage limits
    /// (`NodeStoreUsage`). In a cluster the meta leader places a stream only on servers where
    /// it fits (`JetStreamCluster.maxBytesFits`).
    private func serverLimitRefusal(_ cfg: StreamConfig, except: String?) -> JSAPIError? {
        guard cluster == nil, nodeUsage.limit(cfg.storage) >= 0 else { return nil }
        return nodeUsage.streamRefusal(cfg.storage, maxBytes: cfg.maxBytes, for: ObjectIdentifier(self),
                                       ownOthers: nodeReservation(cfg.storage, except: except))
    }

    /// Applies a checked config update to a local stream: on one node, or on each replica of a
    /// clustered stream where the update is in the stream's log (`StreamReplica+Config`), with
    /// the leader's `now`. A clustered leader switched its subscriptions when the update
    /// committed in the meta group, so only a single node subscribes here.
    func applyConfig(_ s: Stream, _ cfg: StreamConfig, now: Int64 = JSTime.nowNanos()) {
        let subjectsChanged = cfg.subjects != s.config.subjects || cfg.allowDirect != s.config.allowDirect
        s.updateConfig(Self.keepingFirstSeq(cfg, of: s), now: now)
        if subjectsChanged && cluster == nil { subscribeIngest(s) }
        try? persistMeta(s)
        s.consumersPurged()
        if s.dirty { scheduleFlush() }
    }

    /// `cfg` with the stream's own first sequence (set at create, never updated).
    static func keepingFirstSeq(_ cfg: StreamConfig, of s: Stream) -> StreamConfig {
        var new = cfg
        new.firstSeq = s.config.firstSeq
        return new
    }

    func deleteStream(_ name: String) throws -> [String: Any] {
        let s = try lookup(name)
        for sub in s.subscriptions { bus.unsubscribeInternal(sub) }
        for c in s.consumers.values {
            c.deleted = true
            c.cancelPulls("409 Consumer Deleted")
        }
        streams[name] = nil
        s.store.destroy()
        if let dir = s.directory { AtomicFile.removeTree(dir) }
        if nodeUsage.isLimited {
            rebuildUsageLedger()
            reportNodeUsage(withReservations: true)
        }
        streamAdvisory(name, action: "delete")
        return ["success": true]
    }

    // MARK: - info / names / list

    private func streamInfo(_ name: String, body: [UInt8]) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: "JSApiStreamInfoRequest")
        try o.rejectUnknown(["deleted_details", "subjects_filter", "offset"])
        let s = try lookup(name)
        let filter = try o.string("subjects_filter")
        var info = s.infoJSON(subjectsFilter: filter, deletedDetails: try o.bool("deleted_details") ?? false)
        if let cluster, let a = cluster.assignments[name] { info["cluster"] = cluster.clusterInfo(a) }
        // Paged like nats-server's answer: the subject counts when asked for, zeros otherwise.
        let paged = filter != nil
        info["total"] = paged ? (info["state"] as? [String: Any])?["num_subjects"] ?? 0 : 0
        info["offset"] = paged ? try o.int("offset") ?? 0 : 0
        info["limit"] = paged ? 100_000 : 0
        return info
    }

    private func streamNames(body: [UInt8], detailed: Bool) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: detailed ? "JSApiStreamListRequest" : "JSApiStreamNamesRequest")
        try o.rejectUnknown(["offset", "subject"])
        var offset = max(try o.int("offset") ?? 0, 0)
        let filter = try o.string("subject").flatMap { $0.isEmpty ? nil : $0 }
        let configs = cluster.map { $0.assignments.values.map(\.config) } ?? streams.values.map(\.config)
        let matching = configs.filter { c in
            guard let filter else { return true }
            return c.subjects.contains { Subject.overlaps(filter, $0) }
        }.sorted { $0.name < $1.name }
        offset = min(offset, matching.count)
        let limit = detailed ? 256 : 1024
        let page = matching[offset...].prefix(limit)
        var o2: [String: Any] = ["total": matching.count, "offset": offset, "limit": limit]
        if detailed {
            o2["streams"] = page.map { c -> [String: Any] in
                if let cluster, let a = cluster.assignments[c.name] { return cluster.info(for: a) }
                return streams[c.name]?.infoJSON() ?? [:]
            }
        } else {
            o2["streams"] = page.isEmpty ? NSNull() : page.map { $0.name } as Any
        }
        return o2
    }

    // MARK: - purge / messages

    private func purgeStream(_ name: String, body: [UInt8]) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: "JSApiStreamPurgeRequest")
        try o.rejectUnknown(["filter", "seq", "keep"])
        let s = try lookup(name)
        if s.config.sealed { throw JSAPIError.sealed }
        if s.config.denyPurge { throw JSAPIError.purgeDenied }
        let filter = try o.string("filter").flatMap { $0.isEmpty ? nil : $0 }
        let seq = try o.uint64("seq")
        let keep = try o.uint64("keep")
        if seq != nil && keep != nil { throw JSAPIError.badRequest() } // nats-server 2.15.1 says only "bad request"
        if let filter, !Subject.isValidSubscription(filter) { throw JSAPIError.badRequest("invalid subject filter") }
        if let r = cluster?.replicas[name], let req = apiRequest {
            var op: [String: Any] = ["op": "purge"]
            op["filter"] = filter
            op["seq"] = seq
            op["keep"] = keep
            try r.proposeOp(op, reply: req.reply, type: req.type)
            throw DeferredReply()
        }
        let n: UInt64
        do {
            n = try s.purge(subject: filter, upTo: seq, keep: keep)
            try s.syncStore()
        } catch {
            throw JSAPIError(500, 10110, "\(error)")
        }
        s.consumersPurged()
        return ["success": true, "purged": n]
    }

    private func getMessage(_ name: String, body: [UInt8]) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: "JSApiMsgGetRequest")
        try o.rejectUnknown(["seq", "last_by_subj", "next_by_subj", "batch", "max_bytes", "start_time", "multi_last", "up_to_seq", "up_to_time", "no_hdr"])
        let s = try lookup(name)
        let seq = try o.uint64("seq")
        let last = try o.string("last_by_subj")
        let next = try o.string("next_by_subj")
        let forms = [seq != nil && next == nil, last != nil, next != nil].filter { $0 }.count
        guard forms == 1, seq != 0 || next != nil else { throw JSAPIError.badRequest("bad request") }
        guard let m = s.message(seq: seq, last: last, next: next) else { throw JSAPIError.noMessage }
        var msg: [String: Any] = ["subject": m.subject, "seq": m.seq, "time": JSTime.format(m.time)]
        if let h = m.headers, !h.isEmpty { msg["hdrs"] = Data(h).base64EncodedString() }
        if !m.payload.isEmpty { msg["data"] = Data(m.payload).base64EncodedString() }
        return ["message": msg]
    }

    private func deleteMessage(_ name: String, body: [UInt8]) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: "JSApiMsgDeleteRequest")
        try o.rejectUnknown(["seq", "no_erase"])
        let s = try lookup(name)
        if s.config.sealed { throw JSAPIError.sealed }
        if s.config.denyDelete { throw JSAPIError.deleteDenied }
        guard let seq = try o.uint64("seq") else { throw JSAPIError.badRequest("bad request") }
        if let r = cluster?.replicas[name], let req = apiRequest {
            try r.proposeOp(["op": "delete", "seq": seq], reply: req.reply, type: req.type)
            throw DeferredReply()
        }
        let removed: Bool
        do {
            removed = try s.remove(seq)
            try s.syncStore()
        } catch {
            throw JSAPIError(500, 10057, "\(error)")
        }
        guard removed else { throw JSAPIError.messageNotDeleted(seq, lastSeq: s.store.state.lastSeq) }
        s.consumersPurged()
        return ["success": true]
    }
}
