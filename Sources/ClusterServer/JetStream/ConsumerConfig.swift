/// A consumer's configuration (`consumer.go: ConsumerConfig`), decoded strictly and defaulted
/// like nats-server (`setConsumerConfigDefaults`).
struct ConsumerConfig: Equatable {
    enum DeliverPolicy: String { case all, last, new, byStartSequence = "by_start_sequence", byStartTime = "by_start_time", lastPerSubject = "last_per_subject" }
    enum AckPolicy: String { case none, all, explicit }
    enum ReplayPolicy: String { case instant, original }

    var durableName: String?
    var name: String?
    var description: String?
    var deliverPolicy: DeliverPolicy = .all
    var optStartSeq: UInt64 = 0
    var optStartTime: Int64?
    var ackPolicy: AckPolicy = .none
    var ackWaitNanos: Int64 = 0
    var maxDeliver = -1
    var backoffNanos: [Int64] = []
    var filterSubject: String?
    var filterSubjects: [String] = []
    var replayPolicy: ReplayPolicy = .instant
    var rateLimitBps: UInt64 = 0
    var sampleFreq: String?
    var maxWaiting = 0
    var maxAckPending = 0
    var flowControl = false
    var headersOnly = false
    var maxBatch = 0
    var maxExpiresNanos: Int64 = 0
    var maxBytes = 0
    var deliverSubject: String?
    var deliverGroup: String?
    var idleHeartbeatNanos: Int64 = 0
    var inactiveThresholdNanos: Int64 = 0
    var numReplicas = 0
    var memStorage = false
    var metadata: [String: String]?
    /// 2.11 consumer pause: no deliveries before this time (ns).
    var pauseUntil: Int64?

    static let knownFields: Set<String> = [
        "durable_name", "name", "description", "deliver_policy", "opt_start_seq", "opt_start_time", "ack_policy",
        "ack_wait", "max_deliver", "backoff", "filter_subject", "filter_subjects", "replay_policy", "rate_limit_bps",
        "sample_freq", "max_waiting", "max_ack_pending", "flow_control", "headers_only", "max_batch", "max_expires",
        "max_bytes", "deliver_subject", "deliver_group", "idle_heartbeat", "inactive_threshold", "num_replicas",
        "mem_storage", "direct", "metadata", "pause_until", "priority_groups", "priority_policy", "priority_timeout",
        "sourcing",
    ]

    var isPush: Bool { !(deliverSubject ?? "").isEmpty }
    var isDurable: Bool { !(durableName ?? "").isEmpty }
    /// The effective filters (filter_subject or filter_subjects), empty for "everything".
    var filters: [String] {
        if let f = filterSubject, !f.isEmpty { return [f] }
        return filterSubjects
    }

    static func decode(_ o: JSONObject) throws -> ConsumerConfig {
        try o.rejectUnknown(knownFields)
        var c = ConsumerConfig()
        c.durableName = try o.string("durable_name")
        c.name = try o.string("name")
        c.description = try o.string("description")
        if let d = try o.string("deliver_policy") {
            guard let v = DeliverPolicy(rawValue: d) else { throw JSAPIError.cannotUnmarshal(d) }
            c.deliverPolicy = v
        }
        c.optStartSeq = try o.uint64("opt_start_seq") ?? 0
        c.optStartTime = try o.time("opt_start_time")
        if let a = try o.string("ack_policy") {
            guard let v = AckPolicy(rawValue: a) else { throw JSAPIError.cannotUnmarshal(a) }
            c.ackPolicy = v
        } else {
            c.ackPolicy = .none
        }
        c.ackWaitNanos = try o.int64("ack_wait", goType: "time.Duration") ?? 0
        c.maxDeliver = try o.int("max_deliver") ?? 0
        c.backoffNanos = try o.int64Array("backoff") ?? []
        c.filterSubject = try o.string("filter_subject")
        c.filterSubjects = try o.stringArray("filter_subjects") ?? []
        if let r = try o.string("replay_policy") {
            guard let v = ReplayPolicy(rawValue: r) else { throw JSAPIError.cannotUnmarshal(r) }
            c.replayPolicy = v
        }
        c.rateLimitBps = try o.uint64("rate_limit_bps") ?? 0
        c.sampleFreq = try o.string("sample_freq")
        c.maxWaiting = try o.int("max_waiting") ?? 0
        c.maxAckPending = try o.int("max_ack_pending") ?? 0
        c.flowControl = try o.bool("flow_control") ?? false
        c.headersOnly = try o.bool("headers_only") ?? false
        c.maxBatch = try o.int("max_batch") ?? 0
        c.maxExpiresNanos = try o.int64("max_expires", goType: "time.Duration") ?? 0
        c.maxBytes = try o.int("max_bytes") ?? 0
        c.deliverSubject = try o.string("deliver_subject")
        c.deliverGroup = try o.string("deliver_group")
        c.idleHeartbeatNanos = try o.int64("idle_heartbeat", goType: "time.Duration") ?? 0
        c.inactiveThresholdNanos = try o.int64("inactive_threshold", goType: "time.Duration") ?? 0
        c.numReplicas = try o.int("num_replicas") ?? 0
        c.memStorage = try o.bool("mem_storage") ?? false
        _ = try o.bool("direct")
        // Server-added `_nats.*` keys come back from clients that echo a config (as for streams).
        c.metadata = try o.stringMap("metadata")?.filter { !$0.key.hasPrefix("_nats.") }
        if c.metadata?.isEmpty == true { c.metadata = nil }
        c.pauseUntil = try o.time("pause_until")
        if let groups = try o.stringArray("priority_groups"), !groups.isEmpty {
            throw JSAPIError.consumerCreate("consumer priority groups are not supported by clusterd yet")
        }
        return c
    }

    /// Applies defaults and validates against the stream (`checkConsumerCfg`).
    mutating func normalize(stream: StreamConfig, isCreate: Bool) throws {
        if let f = filterSubject, f.isEmpty { filterSubject = nil }
        if let d = deliverSubject, d.isEmpty { deliverSubject = nil }
        if let g = deliverGroup, g.isEmpty { deliverGroup = nil }
        if let d = description, d.utf8.count > 4096 { throw JSAPIError.consumerDescriptionTooLong }
        if ackWaitNanos < 0 { throw JSAPIError(400, 10183, "consumer ack wait needs to be positive") }
        if backoffNanos.contains(where: { $0 <= 0 }) { throw JSAPIError(400, 10012, "consumer backoff values need to be positive") }
        if idleHeartbeatNanos < 0 || maxExpiresNanos < 0 { throw JSAPIError(400, 10012, "consumer durations need to be positive") }
        if maxDeliver <= 0 { maxDeliver = -1 }
        if ackPolicy != .none && ackWaitNanos == 0 { ackWaitNanos = backoffNanos.first ?? 30_000_000_000 }
        if !backoffNanos.isEmpty {
            ackWaitNanos = backoffNanos[0]
            // nats-server 2.15.1 refuses only fewer deliveries than backoff values (its text says
            // "> length"; equal passes), and takes backoff with ack none (checked side by side).
            if maxDeliver != -1 && maxDeliver < backoffNanos.count {
                throw JSAPIError(400, 10116, "max deliver is required to be > length of backoff values")
            }
        }
        if ackPolicy == .none { ackWaitNanos = max(ackWaitNanos, 0) }
        if maxAckPending == 0 && ackPolicy != .none {
            maxAckPending = stream.consumerMaxAckPending > 0 ? stream.consumerMaxAckPending : 1000
        }
        if !isPush && maxWaiting == 0 { maxWaiting = 512 }
        if inactiveThresholdNanos < 0 { inactiveThresholdNanos = 0 } // as nats-server 2.15.1: dropped, not refused
        if inactiveThresholdNanos == 0 && !isDurable && stream.consumerInactiveThresholdNanos > 0 {
            inactiveThresholdNanos = stream.consumerInactiveThresholdNanos
        }
        if inactiveThresholdNanos == 0 && !isDurable { inactiveThresholdNanos = 5_000_000_000 }
        if isPush {
            if maxWaiting != 0 { throw JSAPIError(400, 10080, "consumer in push mode can not set max waiting") }
            if maxBatch != 0 { throw JSAPIError(400, 10082, "consumer in push mode can not set max batch") }
            if maxExpiresNanos != 0 { throw JSAPIError(400, 10081, "consumer in push mode can not set max expires") }
            if maxBytes != 0 { throw JSAPIError(400, 10083, "consumer in push mode can not set max bytes") }
            guard Subject.isValidLiteral(deliverSubject!) else {
                throw JSAPIError(400, 10088, "consumer deliver subject has wildcards")
            }
            if flowControl && idleHeartbeatNanos <= 0 {
                throw JSAPIError(400, 10089, "consumer with flow control also needs heartbeats")
            }
        } else {
            if idleHeartbeatNanos > 0 { throw JSAPIError(400, 10072, "consumer idle heartbeat requires a push based consumer") }
            if flowControl { throw JSAPIError(400, 10075, "consumer flow control requires a push based consumer") }
            if deliverGroup != nil { throw JSAPIError(400, 10078, "consumer deliver group requires a push based consumer") }
            if rateLimitBps > 0 { throw JSAPIError(400, 10079, "consumer rate limit requires a push based consumer") }
            if maxWaiting < 0 { throw JSAPIError(400, 10087, "consumer max waiting needs to be positive") }
        }
        if idleHeartbeatNanos > 0 && idleHeartbeatNanos < 100_000_000 {
            throw JSAPIError(400, 10012, "consumer idle heartbeat needs to be >= 100ms")
        }
        if filterSubject != nil && !filterSubjects.isEmpty {
            throw JSAPIError(400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified")
        }
        // A filter outside the stream's subjects is taken (it matches nothing), as nats-server
        // 2.15.1 does; only a malformed one is refused.
        for f in filters {
            guard Subject.isValidSubscription(f) else { throw JSAPIError(400, 10093, "consumer filter subject is not a valid subset of the interest subjects") }
        }
        for (i, a) in filterSubjects.enumerated() {
            for b in filterSubjects[(i + 1)...] where Subject.overlaps(a, b) {
                throw JSAPIError(400, 10138, "consumer subject filters cannot overlap")
            }
        }
        switch deliverPolicy {
        case .byStartSequence:
            if optStartSeq == 0 {
                throw JSAPIError(400, 10094, "consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
            }
        case .byStartTime:
            if optStartTime == nil {
                throw JSAPIError(400, 10094, "consumer delivery policy is deliver by start time, but optional start time is not set")
            }
        default:
            if optStartSeq != 0 || optStartTime != nil {
                throw JSAPIError(400, 10012, "consumer opt start sequence or time requires deliver policy by start sequence or time")
            }
        }
        if numReplicas > 1 { throw JSAPIError.replicasNotSupported }
        if stream.retention == .workqueue && ackPolicy != .explicit { throw JSAPIError.workQueueAckExplicit }
        if maxAckPending > 0 && stream.consumerMaxAckPending > 0 && maxAckPending > stream.consumerMaxAckPending {
            throw JSAPIError(400, 10121, "consumer max ack pending exceeds system limit of \(stream.consumerMaxAckPending)")
        }
    }

    /// Refusals of a consumer update (immutable fields), with nats-server 2.15.1's codes, texts
    /// and order (checked side by side).
    func checkUpdate(to n: ConsumerConfig) throws {
        func refuse(_ what: String) throws { throw JSAPIError(500, 10012, "\(what) can not be updated") }
        if n.deliverPolicy != deliverPolicy { try refuse("deliver policy") }
        if n.optStartSeq != optStartSeq { try refuse("start sequence") }
        if n.optStartTime != optStartTime { try refuse("start time") }
        if n.ackPolicy != ackPolicy { try refuse("ack policy") }
        if n.replayPolicy != replayPolicy { try refuse("replay policy") }
        if n.isPush != isPush {
            throw JSAPIError(500, 10012, isPush ? "can not update push consumer to pull based" : "can not update pull consumer to push based")
        }
        if n.idleHeartbeatNanos != idleHeartbeatNanos { try refuse("heart beats") }
        if n.flowControl != flowControl { try refuse("flow control") }
        if n.maxWaiting != maxWaiting { try refuse("max waiting") }
        if n.memStorage != memStorage { try refuse("storage type") }
        if n.isDurable != isDurable { try refuse("durable") }
    }

    var json: [String: Any] {
        var o: [String: Any] = [
            "deliver_policy": deliverPolicy.rawValue, "ack_policy": ackPolicy.rawValue, "max_deliver": maxDeliver,
            "replay_policy": replayPolicy.rawValue, "num_replicas": numReplicas,
        ]
        if ackPolicy != .none || ackWaitNanos > 0 { o["ack_wait"] = ackWaitNanos }
        if let durableName, !durableName.isEmpty { o["durable_name"] = durableName }
        if let name { o["name"] = name }
        if let description, !description.isEmpty { o["description"] = description }
        if optStartSeq > 0 { o["opt_start_seq"] = optStartSeq }
        if let t = optStartTime { o["opt_start_time"] = JSTime.format(t) }
        if !backoffNanos.isEmpty { o["backoff"] = backoffNanos }
        if let filterSubject { o["filter_subject"] = filterSubject }
        if !filterSubjects.isEmpty { o["filter_subjects"] = filterSubjects }
        if rateLimitBps > 0 { o["rate_limit_bps"] = rateLimitBps }
        if let sampleFreq, !sampleFreq.isEmpty { o["sample_freq"] = sampleFreq }
        if maxWaiting > 0 { o["max_waiting"] = maxWaiting }
        if maxAckPending != 0 { o["max_ack_pending"] = maxAckPending }
        if flowControl { o["flow_control"] = true }
        if headersOnly { o["headers_only"] = true }
        if maxBatch > 0 { o["max_batch"] = maxBatch }
        if maxExpiresNanos > 0 { o["max_expires"] = maxExpiresNanos }
        if maxBytes > 0 { o["max_bytes"] = maxBytes }
        if let deliverSubject { o["deliver_subject"] = deliverSubject }
        if let deliverGroup { o["deliver_group"] = deliverGroup }
        if idleHeartbeatNanos > 0 { o["idle_heartbeat"] = idleHeartbeatNanos }
        if inactiveThresholdNanos > 0 { o["inactive_threshold"] = inactiveThresholdNanos }
        if memStorage { o["mem_storage"] = true }
        if let metadata, !metadata.isEmpty { o["metadata"] = metadata }
        if let pauseUntil { o["pause_until"] = JSTime.format(pauseUntil) }
        return o
    }
}
