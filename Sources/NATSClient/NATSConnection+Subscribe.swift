import NIOCore

extension NATSConnection {
    /// Subscribes to `subject` (wildcards allowed), optionally as a member of `queue`.
    /// Iterate the returned subscription to receive messages. The SUB is queued at once;
    /// `flush()` afterwards to be sure the server has registered it.
    public func subscribe(_ subject: String, queue: String? = nil) throws -> NATSSubscription {
        let (stream, continuation) = AsyncStream<NATSMessage>.makeStream(
            bufferingPolicy: .bufferingOldest(options.subscriptionPendingLimit))
        let sid = try addSubscription(subject, queue: queue, sink: .stream(continuation))
        continuation.onTermination = { [weak self] reason in
            // The consumer stopped iterating: drop the interest too.
            if case .cancelled = reason { try? self?.unsubscribe(sid: sid, after: nil) }
        }
        return NATSSubscription(sid: sid, subject: subject, queue: queue, stream: stream, connection: self)
    }

    /// Subscribes with a closure that runs on the connection's event loop for every message.
    /// The fastest path (no task hop); keep the closure short and non-blocking.
    public func subscribe(_ subject: String, queue: String? = nil,
                          handler: @escaping @Sendable (NATSMessage) -> Void) throws -> NATSSubscription {
        let sid = try addSubscription(subject, queue: queue, sink: .handler(handler))
        let (stream, continuation) = AsyncStream<NATSMessage>.makeStream()
        continuation.finish()
        return NATSSubscription(sid: sid, subject: subject, queue: queue, stream: stream, connection: self)
    }

    func addSubscription(_ subject: String, queue: String?, sink: SubscriptionSink) throws -> UInt64 {
        try SubjectValidator.checkSubscription(subject)
        if let queue { try SubjectValidator.checkQueue(queue) }
        var loop: EventLoop?
        let sid: UInt64 = try lock.locked {
            guard state == .connected || state == .reconnecting else { throw NATSError.connectionClosed }
            let sid = nextSid
            nextSid += 1
            subscriptions[sid] = SubscriptionState(sid: sid, subject: subject, queue: queue, sink: sink)
            ClientOpEncoder.writeSub(&outbound, subject: subject, queue: queue, sid: sid)
            loop = flushLoopLocked()
            return sid
        }
        loop?.execute { self.flushOutbound() }
        return sid
    }

    func unsubscribe(sid: UInt64, after max: Int?) throws {
        if let max, max < 0 { throw NATSError.protocolError("unsubscribe max must not be negative") }
        var loop: EventLoop?
        let ended: SubscriptionState? = try lock.locked {
            if state == .closed { throw NATSError.connectionClosed }
            guard let sub = subscriptions[sid] else { return nil }
            if let max, sub.delivered < max {
                sub.max = max
                ClientOpEncoder.writeUnsub(&outbound, sid: sid, max: max)
                loop = flushLoopLocked()
                return nil
            }
            subscriptions[sid] = nil
            ClientOpEncoder.writeUnsub(&outbound, sid: sid, max: nil)
            loop = flushLoopLocked()
            return sub
        }
        loop?.execute { self.flushOutbound() }
        ended?.finish()
    }

    func droppedCount(sid: UInt64) -> Int { lock.locked { subscriptions[sid]?.dropped ?? 0 } }
    func deliveredCount(sid: UInt64) -> Int { lock.locked { subscriptions[sid]?.delivered ?? 0 } }

    /// Runs on the event loop for every MSG/HMSG.
    func deliver(_ inbound: InboundMessage) {
        let target: (SubscriptionState, Bool)? = lock.locked {
            stats.inMsgs += 1
            stats.inBytes += inbound.payload.readableBytes
            guard let sub = subscriptions[inbound.sid] else { return nil }
            sub.delivered += 1
            var reachedMax = false
            if let max = sub.max, sub.delivered >= max {
                subscriptions[inbound.sid] = nil
                reachedMax = true
            }
            return (sub, reachedMax)
        }
        guard let (sub, reachedMax) = target else { return }
        switch sub.sink {
        case .stream(let continuation):
            if case .dropped = continuation.yield(inbound.message) {
                lock.locked {
                    sub.dropped += 1
                    stats.droppedMsgs += 1
                }
            }
        case .handler(let handler):
            handler(inbound.message)
        case .inbox:
            deliverResponse(inbound)
        }
        if reachedMax { sub.finish() }
    }

    /// Unsubscribes everything, waits until the server confirms (so nothing more arrives),
    /// lets pending requests finish, flushes publishes and closes. Subscriptions end after
    /// their buffered messages. Bounded by `timeout`; closes in any case.
    public func drain(timeout: TimeAmount = .seconds(10)) async throws {
        var loop: EventLoop?
        let subs: [SubscriptionState] = try lock.locked {
            guard state == .connected || state == .reconnecting else { throw NATSError.connectionClosed }
            state = state == .connected ? .draining : state
            let subs = subscriptions.values.filter { $0.sid != inboxSid }
            for sub in subs.sorted(by: { $0.sid < $1.sid }) {
                ClientOpEncoder.writeUnsub(&outbound, sid: sub.sid, max: nil)
            }
            loop = flushLoopLocked()
            return subs
        }
        loop?.execute { self.flushOutbound() }
        let deadline = NIODeadline.now() + timeout
        do {
            try await flush(timeout: timeout)
            lock.locked { for sub in subs { subscriptions[sub.sid] = nil } }
            for sub in subs { sub.finish() }
            while lock.locked({ !requests.isEmpty }) {
                guard NIODeadline.now() < deadline else { break }
                try await Task.sleep(nanoseconds: 2_000_000)
            }
            try await flush(timeout: max(deadline - NIODeadline.now(), .milliseconds(1)))
        } catch {
            await close()
            throw error
        }
        await close()
    }
}
