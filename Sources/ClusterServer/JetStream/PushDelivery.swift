/// Push consumers: delivery to `deliver_subject` (one member of `deliver_group`), flow control
/// (`100 FlowControl Request` with a `$JS.FC` reply) and idle heartbeats.
extension Consumer {
    static let flowControlMessages = 256
    static let flowControlBytes = 1 << 20
    static let maxOutstandingFlowControl = 2

    func pumpPush(now: Int64) {
        guard let target = config.deliverSubject, bus.hasInterest(target) else { return }
        var bound = 0
        while bound < 10_000 {
            bound += 1
            if config.flowControl && fcOutstanding.count >= Consumer.maxOutstandingFlowControl { break }
            guard canDeliverMore || !redeliverQueue.isEmpty else { break }
            guard let (m, isRedelivery) = nextMessage() else { break }
            if let wait = replayWait(m, isRedelivery: isRedelivery, now: now) {
                if isRedelivery { redeliverQueue.insert(m.seq, at: 0) }
                stream.service.schedulePump(self, afterNanos: wait)
                break
            }
            if var limiter = rateLimiter {
                // `rate_limit_bps`: the message, its headers and both subjects, as nats-server counts.
                let wait = limiter.take(messageSize(m) + target.utf8.count, now: now)
                rateLimiter = limiter
                if wait > 0 {
                    if isRedelivery { redeliverQueue.insert(m.seq, at: 0) }
                    stream.service.schedulePump(self, afterNanos: wait)
                    break
                }
            }
            noteReplayed(m, now: now)
            let ackReply = recordDelivery(m, isRedelivery: isRedelivery, now: now)
            send(m, to: target, ackReply: ackReply)
            lastHeartbeat = now
            if config.flowControl {
                msgsSinceFC += 1
                bytesSinceFC += messageSize(m)
                if msgsSinceFC >= Consumer.flowControlMessages || bytesSinceFC >= Consumer.flowControlBytes {
                    sendFlowControl(to: target)
                }
            }
        }
        if bound >= 10_000 { stream.service.schedulePump(self) }
    }

    private func sendFlowControl(to target: String) {
        fcCounter += 1
        let subject = "$JS.FC.\(stream.name).\(name).\(fcCounter)"
        fcOutstanding.append(subject)
        msgsSinceFC = 0
        bytesSinceFC = 0
        bus.sendStatus("100 FlowControl Request", to: target, reply: subject)
    }

    /// The client answered a flow-control request (or a stalled heartbeat).
    func flowControlAnswered(_ subject: String, now: Int64) {
        if let i = fcOutstanding.firstIndex(of: subject) {
            fcOutstanding.removeSubrange(0...i)
        }
        lastActive = now
        pump(now: now)
    }

    /// Idle heartbeats for push consumers; tracks interest for inactivity cleanup.
    func tickPush(now: Int64) {
        guard let target = config.deliverSubject else { return }
        let interest = bus.hasInterest(target)
        if interest {
            // Clients often subscribe the deliver subject only after creating the consumer;
            // polling interest here starts (and resumes) delivery within one tick.
            lastActive = now
            pump(now: now)
        }
        guard interest, config.idleHeartbeatNanos > 0, now - lastHeartbeat >= config.idleHeartbeatNanos else { return }
        var fields = [("Nats-Last-Consumer", "\(deliveredConsumerSeq)"), ("Nats-Last-Stream", "\(deliveredStreamSeq)")]
        if let stalled = fcOutstanding.last { fields.append(("Nats-Consumer-Stalled", stalled)) }
        bus.sendStatus("100 Idle Heartbeat", to: target, fields: fields)
        lastHeartbeat = now
    }
}
