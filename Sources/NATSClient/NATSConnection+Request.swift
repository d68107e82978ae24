import NIOCore

/// A request waiting for its reply on the shared inbox.
struct PendingRequest {
    let slot: OneShot<NATSMessage>
    let subject: String
}

extension NATSConnection {
    /// Sends a request and waits for the first reply. All requests share one wildcard inbox
    /// subscription (`_INBOX.<random>.*`); each gets its own last token.
    /// Throws `noResponders` when the server reports nobody is subscribed (status 503),
    /// `timeout` after `timeout`, `CancellationError` when the task is cancelled.
    public func request(_ subject: String, payload: some NATSPayload, headers: NATSHeaders? = nil,
                        timeout: TimeAmount = .seconds(5)) async throws -> NATSMessage {
        try SubjectValidator.check(subject)
        let slot = OneShot<NATSMessage>()
        var loop: EventLoop?
        let token: Substring = try lock.locked {
            guard state != .closed else { throw NATSError.connectionClosed }
            if inboxSid == nil {
                let sid = nextSid
                nextSid += 1
                inboxSid = sid
                let wildcard = inboxPrefix + ".*"
                subscriptions[sid] = SubscriptionState(sid: sid, subject: wildcard, queue: nil, sink: .inbox)
                ClientOpEncoder.writeSub(&outbound, subject: wildcard, queue: nil, sid: sid)
                loop = flushLoopLocked()
            }
            nextRequestID += 1
            let token = Substring(String(nextRequestID, radix: 36))
            requests[token] = PendingRequest(slot: slot, subject: subject)
            return token
        }
        loop?.execute { self.flushOutbound() }
        do {
            try await publish(subject, payload: payload, reply: inboxPrefix + "." + token, headers: headers)
        } catch {
            finishRequest(token, .failure(error))
            throw error
        }
        let timer = group.next().scheduleTask(in: timeout) { [weak self] in
            self?.finishRequest(token, .failure(NATSError.timeout))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await slot.wait()
        } onCancel: {
            self.finishRequest(token, .failure(CancellationError()))
        }
    }

    /// A fresh unique subject under `options.inboxPrefix`, for hand-made reply subscriptions.
    public func newInbox() -> String {
        options.inboxPrefix + "." + Self.randomToken(length: 22)
    }

    func finishRequest(_ token: Substring, _ result: Result<NATSMessage, Error>) {
        let pending = lock.locked { requests.removeValue(forKey: token) }
        pending?.slot.complete(result)
    }

    /// A message on the inbox: route it to its request by the last token.
    func deliverResponse(_ inbound: InboundMessage) {
        let subject = inbound.subject
        guard subject.utf8.count > inboxPrefix.utf8.count + 1, subject.hasPrefix(inboxPrefix) else { return }
        let token = subject.dropFirst(inboxPrefix.count + 1)
        let pending = lock.locked { requests.removeValue(forKey: token) }
        guard let pending else { return }  // late reply after a timeout
        if inbound.headers?.status == 503, inbound.payload.readableBytes == 0 {
            pending.slot.complete(.failure(NATSError.noResponders(subject: pending.subject)))
        } else {
            pending.slot.complete(.success(inbound.message))
        }
    }
}
