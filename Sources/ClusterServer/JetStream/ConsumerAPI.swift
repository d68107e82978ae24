import Foundation
import NIOCore

/// The consumer endpoints, pull requests, and acks.
extension JetStreamService {
    func routeConsumer(_ op: [String], body: [UInt8]) throws -> [String: Any] {
        let kind = op.count > 1 ? op[1] : ""
        switch kind {
        case "CREATE" where op.count >= 3:
            return try createConsumer(stream: op[2], nameToken: op.count >= 4 ? op[3] : nil,
                                      filterTokens: op.count >= 5 ? op[4...].joined(separator: ".") : nil,
                                      durableForm: false, body: body)
        case "DURABLE" where op.count == 4 && op[2] == "CREATE":
            return try createConsumer(stream: op[3], nameToken: nil, filterTokens: nil, durableForm: true, body: body, durableToken: nil)
        case "DURABLE" where op.count == 5 && op[2] == "CREATE":
            return try createConsumer(stream: op[3], nameToken: op[4], filterTokens: nil, durableForm: true, body: body)
        case "INFO" where op.count == 4:
            let c = try lookupConsumer(op[2], op[3])
            return c.infoJSON(now: JSTime.nowNanos())
        case "DELETE" where op.count == 4:
            let c = try lookupConsumer(op[2], op[3])
            deleteConsumer(c)
            return ["success": true]
        case "PAUSE" where op.count == 4:
            return try pauseConsumer(op[2], op[3], body: body)
        case "NAMES" where op.count == 3, "LIST" where op.count == 3:
            return try consumerNames(op[2], body: body, detailed: kind == "LIST")
        default:
            throw JSAPIError.badRequest("unknown consumer API request")
        }
    }

    func lookupConsumer(_ stream: String, _ name: String) throws -> Consumer {
        let s = try lookup(stream)
        guard let c = s.consumers[name] else { throw JSAPIError.consumerNotFound }
        return c
    }

    private func createConsumer(stream streamName: String, nameToken: String?, filterTokens: String?,
                                durableForm: Bool, body: [UInt8], durableToken: String? = nil) throws -> [String: Any] {
        let req = try JSONObject.parse(body, typeName: "CreateConsumerRequest")
        try req.rejectUnknown(["stream_name", "config", "action", "pedantic"])
        let s = try lookup(streamName)
        if let sn = try req.string("stream_name"), sn != streamName { throw JSAPIError.streamNameMismatch }
        guard let cfgObj = try req.object("config", typeName: "ConsumerConfig") else {
            throw JSAPIError.badRequest("consumer config is required")
        }
        var cfg = try ConsumerConfig.decode(cfgObj)
        let action = try req.string("action") ?? ""
        guard ["", "create", "update"].contains(action) else { throw JSAPIError.badRequest("invalid consumer action") }
        // Subject-form rules (jsConsumerCreateRequest).
        if durableForm {
            guard let token = nameToken else { throw JSAPIError.durableRequired }
            guard let d = cfg.durableName, !d.isEmpty else { throw JSAPIError.durableRequired }
            guard d == token else { throw JSAPIError.durableNameMismatch }
        } else if let token = nameToken {
            if let n = cfg.name, !n.isEmpty, n != token { throw JSAPIError(400, 10132, "Consumer Durable and Name have to be equal if both are provided") }
            if let d = cfg.durableName, !d.isEmpty, d != token { throw JSAPIError.durableNameMismatch }
            cfg.name = token
            if let filter = filterTokens {
                if !cfg.filterSubjects.isEmpty { throw JSAPIError.filterSubjectsInFilteredCreate }
                if let f = cfg.filterSubject, !f.isEmpty, f != filter { throw JSAPIError.filterMismatch }
                cfg.filterSubject = filter
            }
        } else {
            if let d = cfg.durableName, !d.isEmpty { throw JSAPIError.ephemeralWithDurableInSubject }
        }
        if let n = cfg.name, let d = cfg.durableName, !n.isEmpty, !d.isEmpty, n != d {
            throw JSAPIError(400, 10132, "Consumer Durable and Name have to be equal if both are provided")
        }
        let name = cfg.durableName.flatMap { $0.isEmpty ? nil : $0 } ?? cfg.name.flatMap { $0.isEmpty ? nil : $0 }
            ?? JetStreamService.generateName()
        if name.utf8.count > 255 { throw JSAPIError.consumerNameTooLong }
        guard StreamConfig.isValidName(name) else {
            if name.contains("/") || name.contains("\\") { throw JSAPIError.consumerNameInvalid }
            throw JSAPIError.durableNameInvalid
        }
        if cfg.name == nil || cfg.name!.isEmpty { cfg.name = name }
        try cfg.normalize(stream: s.config, isCreate: true)
        let now = JSTime.nowNanos()
        if let existing = s.consumers[name] {
            if action == "create" && existing.config != cfg { throw JSAPIError.consumerExists }
            if existing.config == cfg { return existing.infoJSON(now: now) }
            try existing.config.checkUpdate(to: cfg)
            existing.config = cfg
            existing.invalidatePending()
            let info = try persistAnswering(existing, existing.infoJSON(now: now))
            existing.pump(now: now)
            return info
        }
        if action == "update" { throw JSAPIError.consumerDoesNotExist }
        // A source's or mirror's consumer (`InternalConsumers.swift`) is the server's own: not
        // counted, as nats-server's.
        let serverOwn = creatingInternalConsumer
        if !serverOwn && s.config.maxConsumers > 0 && s.publicConsumerCount >= s.config.maxConsumers { throw JSAPIError.maxConsumers }
        // nats-server applies an account's max_consumers to each stream, not to the account.
        if !serverOwn, let e = limits?.refusal(forConsumerWith: s.publicConsumerCount) { throw e }
        if s.config.retention == .workqueue { try checkWorkQueue(s, cfg) }
        if cfg.isPush, s.config.retention == .interest || s.config.retention == .workqueue, cfg.deliverGroup == nil {
            // allowed; interest streams accept push consumers
        }
        let c = Consumer(stream: s, name: name, config: cfg, created: now)
        c.isInternal = serverOwn
        c.setStartPosition()
        s.consumers[name] = c
        consumerAdvisory(s.name, name, action: "create")
        if let cluster {
            // Its stream's leader runs it: elected with the stream, as nats-server announces it.
            leaderElectedAdvisory(stream: s.name, consumer: name, leader: cluster.host.myName,
                                  replicas: cluster.streamReplicas(s.name))
        }
        schedulePump(c)
        return try persistAnswering(c, c.infoJSON(now: now))
    }

    /// Persists `c` and returns `response`; in a cluster the response goes out only once the
    /// consumer's record committed in the stream's group (`DeferredReply`).
    private func persistAnswering(_ c: Consumer, _ response: [String: Any]) throws -> [String: Any] {
        guard replicating(c) != nil, let req = apiRequest else {
            persist(c)
            return response
        }
        persist(c, answer: .api(reply: req.reply, type: req.type, precomputed: response))
        throw DeferredReply()
    }

    private func checkWorkQueue(_ s: Stream, _ cfg: ConsumerConfig) throws {
        if cfg.deliverPolicy != .all { throw JSAPIError.workQueueDeliverAll }
        for other in s.consumers.values {
            let a = other.filters, b = cfg.filters
            // An unfiltered consumer overlaps everything (nats-server answers 10099 then too).
            if a.isEmpty || b.isEmpty { throw JSAPIError.workQueueOverlap }
            for x in a { for y in b where Subject.overlaps(x, y) { throw JSAPIError.workQueueOverlap } }
        }
    }

    /// `$JS.API.CONSUMER.PAUSE.<stream>.<consumer>` `{"pause_until": time}`; empty resumes.
    private func pauseConsumer(_ stream: String, _ name: String, body: [UInt8]) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: "JSApiConsumerPauseRequest")
        try o.rejectUnknown(["pause_until"])
        let c = try lookupConsumer(stream, name)
        let now = JSTime.nowNanos()
        let until = try o.time("pause_until")
        c.config.pauseUntil = (until ?? 0) > now ? until : nil
        persist(c)
        pauseAdvisory(c)
        if let until = c.config.pauseUntil {
            schedulePump(c, afterNanos: until - now)
            return ["paused": true, "pause_until": JSTime.format(until), "pause_remaining": until - now]
        }
        c.pump(now: now)
        return ["paused": false, "pause_until": JSTime.format(0)]
    }

    static func generateName() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz")
        var rng = SystemRandomNumberGenerator()
        return String((0..<22).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }

    private func consumerNames(_ streamName: String, body: [UInt8], detailed: Bool) throws -> [String: Any] {
        let o = try JSONObject.parse(body, typeName: "JSApiConsumersRequest")
        try o.rejectUnknown(["offset"])
        let s = try lookup(streamName)
        let all = s.consumers.filter { !$0.value.isInternal }.keys.sorted()
        let offset = min(max(try o.int("offset") ?? 0, 0), all.count)
        let limit = detailed ? 256 : 1024
        let page = all[offset...].prefix(limit)
        var out: [String: Any] = ["total": all.count, "offset": offset, "limit": limit]
        let now = JSTime.nowNanos()
        if detailed {
            out["consumers"] = page.compactMap { s.consumers[$0]?.infoJSON(now: now, listed: true) }
        } else {
            out["consumers"] = Array(page)
        }
        return out
    }

    // MARK: - pull requests

    func handleNext(stream: String, consumer: String, reply: String, body: [UInt8]) {
        guard let s = streams[stream], let c = s.consumers[consumer] else {
            // In nats-server each consumer subscribes its own MSG.NEXT subject, so an unknown
            // consumer has no responder: answer like core no-responders.
            bus.sendStatus("503", to: reply, fields: [("Nats-Subject", "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(consumer)")])
            return
        }
        c.addPullRequest(body: body, reply: reply, now: JSTime.nowNanos())
    }

    // MARK: - acks

    /// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (or the v2 form
    /// with domain and account hash after `$JS.ACK`).
    func handleAck(subject: String, reply: String?, body: [UInt8]) {
        guard let a = AckSubject(subject), let s = streams[a.stream], let c = s.consumers[a.consumer] else { return }
        let sseq = a.streamSeq, cseq = a.consumerSeq
        let now = JSTime.nowNanos()
        c.lastActive = now
        guard let (verb, argument) = AckVerb.parse(body) else { return }
        var sendAckReply = reply != nil
        switch verb {
        case .ack:
            // An ack that could not be recorded is not confirmed (`Consumer+AckAhead.swift`).
            sendAckReply = c.ack(streamSeq: sseq, consumerSeq: cseq) && reply != nil
        case .nak:
            if c.pending[sseq] != nil {
                deliveryAdvisory(terminated: false, c, streamSeq: sseq, consumerSeq: cseq, deliveries: c.deliveries[sseq] ?? 1)
            }
            c.nak(streamSeq: sseq, delayNanos: JetStreamService.parseNakDelay(String(decoding: argument, as: UTF8.self)), now: now)
        case .inProgress:
            c.inProgress(streamSeq: sseq, now: now)
            sendAckReply = reply != nil
        case .next:
            c.ack(streamSeq: sseq, consumerSeq: cseq)
            if let reply { c.addPullRequest(body: Array(argument), reply: reply, now: now) }
            sendAckReply = false
        case .term:
            if c.pending[sseq] != nil {
                deliveryAdvisory(terminated: true, c, streamSeq: sseq, consumerSeq: cseq, deliveries: c.deliveries[sseq] ?? 1,
                                 reason: argument)
            }
            sendAckReply = c.terminate(streamSeq: sseq, consumerSeq: cseq) && reply != nil
        }
        if sendAckReply, let reply {
            // Double ack: the state is durable (on a quorum, in a cluster) before the client hears back.
            if replicating(c) != nil {
                persist(c, answer: .empty(reply: reply))
            } else {
                persist(c)
                bus.publishInternal(subject: reply, payload: ByteBuffer())
            }
        }
        if s.dirty { scheduleFlush() }
        c.pump(now: now)
    }

    /// `-NAK` delay: ` {"delay": ns}` or a Go duration (` 5s`, ` 100ms`).
    static func parseNakDelay(_ rest: String) -> Int64? {
        let r = rest.trimmingCharacters(in: .whitespaces)
        if r.isEmpty { return nil }
        if r.hasPrefix("{"), let o = try? JSONObject.parse(Array(r.utf8), typeName: "ConsumerNakOptions") {
            return (try? o.int64("delay")) ?? nil
        }
        return parseGoDuration(r)
    }

    static func parseGoDuration(_ s: String) -> Int64? {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var total = 0.0
        var rest = Substring(s)
        var bound = 0
        while !rest.isEmpty && bound < 16 {
            bound += 1
            let num = rest.prefix { $0.isNumber || $0 == "." }
            guard !num.isEmpty, let v = Double(num) else { return nil }
            rest = rest.dropFirst(num.count)
            guard let unit = units.sorted(by: { $0.0.count > $1.0.count }).first(where: { rest.hasPrefix($0.0) }) else { return nil }
            total += v * unit.1
            rest = rest.dropFirst(unit.0.count)
        }
        guard total < 9.2e18 else { return nil }
        return Int64(total)
    }
}
