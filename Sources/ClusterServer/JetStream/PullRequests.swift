/// One outstanding pull request (`$JS.API.CONSUMER.MSG.NEXT`), counted in `num_waiting`.
struct PullRequest {
    var reply: String
    var batch: Int
    var maxBytes: Int
    /// Absolute expiry (ns), 0 for none.
    var expires: Int64
    var noWait: Bool
    var heartbeatNanos: Int64
    var lastHeartbeat: Int64
    var delivered = 0
    var deliveredBytes = 0

    /// Parses a request body: empty (batch 1), a decimal batch, or the JSON form.
    static func parse(_ body: [UInt8], reply: String, now: Int64) throws -> PullRequest {
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        var r = PullRequest(reply: reply, batch: 1, maxBytes: 0, expires: 0, noWait: false, heartbeatNanos: 0, lastHeartbeat: now)
        if text.isEmpty { return r }
        if let n = Int(text) {
            r.batch = max(n, 1)
            return r
        }
        let o = try JSONObject.parse(body, typeName: "JSApiConsumerGetNextRequest")
        r.batch = try o.int("batch") ?? 1
        r.maxBytes = try o.int("max_bytes") ?? 0
        let expires = try o.int64("expires", goType: "time.Duration") ?? 0
        r.noWait = try o.bool("no_wait") ?? false
        r.heartbeatNanos = try o.int64("idle_heartbeat", goType: "time.Duration") ?? 0
        if r.batch <= 0 { r.batch = 1 }
        if expires > 0 { r.expires = saturatingAdd(now, expires) }
        if r.heartbeatNanos > 0 && (expires == 0 || r.heartbeatNanos > expires / 2) {
            throw JSAPIError.badRequest("heartbeat value too large")
        }
        if let group = try o.string("group"), !group.isEmpty {
            throw JSAPIError.badRequest("priority groups not supported")
        }
        return r
    }

    var pendingFields: [(String, String)] {
        [("Nats-Pending-Messages", "\(batch)"), ("Nats-Pending-Bytes", "\(maxBytes > 0 ? maxBytes - deliveredBytes : 0)")]
    }
}

extension Consumer {
    var server: NATSServer { stream.service.server }
    var bus: AccountBus { stream.service.bus }

    /// Handles a MSG.NEXT request (or the `+NXT` of an ack): refuse, answer at once, or queue.
    func addPullRequest(body: [UInt8], reply: String, now: Int64) {
        lastActive = now
        if config.isPush {
            bus.sendStatus("409 Consumer is push based", to: reply)
            return
        }
        var req: PullRequest
        do {
            req = try PullRequest.parse(body, reply: reply, now: now)
        } catch let e as JSAPIError {
            let why = e.errCode == 10003 ? e.text : "json: invalid pull request"
            bus.sendStatus("400 Bad Request - \(why)", to: reply)
            return
        } catch {
            bus.sendStatus("400 Bad Request", to: reply)
            return
        }
        if config.maxBatch > 0 && req.batch > config.maxBatch {
            bus.sendStatus("409 Exceeded MaxRequestBatch of \(config.maxBatch)", to: reply)
            return
        }
        if config.maxExpiresNanos > 0 && req.expires != 0 && req.expires - now > config.maxExpiresNanos && !req.noWait {
            bus.sendStatus("409 Exceeded MaxRequestExpires of \(formatDuration(config.maxExpiresNanos))", to: reply)
            return
        }
        if config.maxBytes > 0 && req.maxBytes > config.maxBytes {
            bus.sendStatus("409 Exceeded MaxRequestMaxBytes of \(config.maxBytes)", to: reply)
            return
        }
        if req.noWait && redeliverQueue.isEmpty && (numPending == 0 || !canDeliverMore) {
            bus.sendStatus("404 No Messages", to: reply)
            return
        }
        if waiting.count >= config.maxWaiting {
            if req.heartbeatNanos == 0 { bus.sendStatus("409 Exceeded MaxWaiting", to: reply) }
            return
        }
        waiting.append(req)
        pump(now: now)
    }

    /// Delivers what can be delivered now to waiting pull requests or the push target.
    func pump(now: Int64) {
        guard !deleted, !isPaused(now: now), stream.service.mayDeliver(stream) else { return }
        // The messages of one pump leave in one write per receiving connection.
        defer { stream.service.deliveryFlush.run() }
        if config.isPush {
            pumpPush(now: now)
            return
        }
        var bound = 0
        while !waiting.isEmpty && bound < 1_000_000 {
            bound += 1
            if !bus.hasInterest(waiting[0].reply) {
                waiting.removeFirst()
                continue
            }
            guard canDeliverMore || !redeliverQueue.isEmpty else { break }
            guard let (m, isRedelivery) = nextMessage() else { break }
            if let wait = replayWait(m, isRedelivery: isRedelivery, now: now) {
                if isRedelivery { redeliverQueue.insert(m.seq, at: 0) }
                stream.service.schedulePump(self, afterNanos: wait)
                break
            }
            noteReplayed(m, now: now)
            var req = waiting[0]
            let size = messageSize(m)
            if req.maxBytes > 0 && size > req.maxBytes - req.deliveredBytes {
                if isRedelivery { redeliverQueue.insert(m.seq, at: 0) }
                bus.sendStatus("409 Message Size Exceeds MaxBytes", to: req.reply, fields: req.pendingFields)
                waiting.removeFirst()
                continue
            }
            let ackReply = recordDelivery(m, isRedelivery: isRedelivery, now: now)
            send(m, to: req.reply, ackReply: ackReply)
            req.batch -= 1
            req.delivered += 1
            req.deliveredBytes += size
            req.lastHeartbeat = now
            if req.batch <= 0 {
                waiting.removeFirst()
            } else {
                waiting[0] = req
            }
        }
        // no_wait requests end as soon as nothing more is available.
        var kept: [PullRequest] = []
        for r in waiting {
            if r.noWait {
                if r.delivered > 0 && isReplicated {
                    // A replicated consumer of nats-server 2.15 ends a partly served no_wait pull
                    // as an expired one (408 with what is left); one of R1 with 404.
                    bus.sendStatus("408 Request Timeout", to: r.reply, fields: r.pendingFields)
                } else {
                    bus.sendStatus("404 No Messages", to: r.reply)
                }
            } else {
                kept.append(r)
            }
        }
        waiting = kept
    }

    /// Expires pull requests, sends their heartbeats; returns true if anything changed.
    func tickPull(now: Int64) {
        var kept: [PullRequest] = []
        for var r in waiting {
            if r.expires > 0 && now >= r.expires {
                bus.sendStatus("408 Request Timeout", to: r.reply, fields: r.pendingFields)
                continue
            }
            if !bus.hasInterest(r.reply) { continue }
            if r.heartbeatNanos > 0 && now - r.lastHeartbeat >= r.heartbeatNanos {
                bus.sendStatus("100 Idle Heartbeat", to: r.reply, fields: [
                    ("Nats-Last-Consumer", "\(deliveredConsumerSeq)"), ("Nats-Last-Stream", "\(deliveredStreamSeq)"),
                ])
                r.lastHeartbeat = now
            }
            kept.append(r)
        }
        waiting = kept
    }

    /// Ends every pull with a 409 (consumer deleted, server shutdown).
    func cancelPulls(_ status: String) {
        for r in waiting { bus.sendStatus(status, to: r.reply, fields: r.pendingFields) }
        waiting.removeAll()
    }

    func messageSize(_ m: StreamMessage) -> Int {
        m.subject.utf8.count + (m.headers?.count ?? 0) + (config.headersOnly ? 0 : m.payload.count)
    }

    /// Sends one stored message to `target` with its stored subject and the ack reply.
    func send(_ m: StreamMessage, to target: String, ackReply: String) {
        var headers = m.headers
        var payload = m.payload
        if config.headersOnly {
            headers = NATSHeaderBlock.appending([("Nats-Msg-Size", "\(m.payload.count)")], to: headers)
            payload = []
        }
        bus.deliverAs(subject: m.subject, to: target, reply: ackReply, headers: headers, payload: payload,
                      flushBatch: stream.service.deliveryFlush, stamp: stream.service.deliveryStamp(stream))
        stream.service.noteDelivered(bytes: payload.count + (headers?.count ?? 0))
    }
}

/// Go's `time.Duration.String()` for whole units (as used in 409 texts).
func formatDuration(_ nanos: Int64) -> String {
    if nanos % 1_000_000_000 == 0 {
        let s = nanos / 1_000_000_000
        if s >= 3600 { return "\(s / 3600)h\((s % 3600) / 60)m\(s % 60)s" }
        if s >= 60 { return "\(s / 60)m\(s % 60)s" }
        return "\(s)s"
    }
    if nanos % 1_000_000 == 0 { return "\(nanos / 1_000_000)ms" }
    return "\(Double(nanos) / 1e9)s"
}
