import NIOCore

extension NATSConnection {
    /// Publishes a message. Returns once the message is in the outbound buffer; call
    /// `flush()` to know the server has it. Waits only when more than
    /// `options.maxPendingBytes` are buffered (backpressure from a slow socket).
    public func publish(_ subject: String, payload: some NATSPayload, reply: String? = nil,
                        headers: NATSHeaders? = nil) async throws {
        while true {
            switch try enqueuePublish(subject, payload: payload, reply: reply, headers: headers) {
            case .done: return
            case .wait(let waiter): try await waiter.wait()
            }
        }
    }

    /// Publishes without ever suspending, for use inside handler callbacks; throws
    /// `outboundBufferFull` instead of waiting when the buffer is over its limit.
    public func publishNow(_ subject: String, payload: some NATSPayload, reply: String? = nil,
                           headers: NATSHeaders? = nil) throws {
        switch try enqueuePublish(subject, payload: payload, reply: reply, headers: headers) {
        case .done: return
        case .wait: throw NATSError.outboundBufferFull
        }
    }

    /// Publishes `payload` to the reply subject of `message` (does nothing if it has none).
    public func respond(to message: NATSMessage, payload: some NATSPayload, headers: NATSHeaders? = nil) async throws {
        guard let reply = message.reply else { return }
        try await publish(reply, payload: payload, headers: headers)
    }

    enum EnqueueOutcome {
        case done
        case wait(OneShot<Void>)
    }

    /// Generic shim: the payload only decides its size and how to copy itself, so the body
    /// below is compiled once, not re-instantiated (with metadata lookups) per caller.
    @inline(__always)
    func enqueuePublish(_ subject: String, payload: some NATSPayload, reply: String?, headers: NATSHeaders?) throws -> EnqueueOutcome {
        try enqueuePublish(subject, payloadBytes: payload.natsByteCount, reply: reply, headers: headers) { payload.write(into: &$0) }
    }

    func enqueuePublish(_ subject: String, payloadBytes: Int, reply: String?, headers: NATSHeaders?,
                        writePayload: (inout ByteBuffer) -> Void) throws -> EnqueueOutcome {
        try SubjectValidator.check(subject)
        if let reply { try SubjectValidator.check(reply) }
        if let headers { try headers.validate() }
        let size = payloadBytes + (headers?.encodedByteCount ?? 0)
        var loop: EventLoop?
        let outcome: EnqueueOutcome = try lock.locked {
            if state == .closed { throw NATSError.connectionClosed }
            if let max = info?.maxPayload, size > max { throw NATSError.payloadTooLarge(size: size, max: max) }
            if headers != nil, info?.headers == false { throw NATSError.headersNotSupported }
            if outbound.readableBytes >= options.maxPendingBytes {
                if state == .reconnecting { throw NATSError.outboundBufferFull }
                let waiter = OneShot<Void>()
                spaceWaiters.append(waiter)
                return .wait(waiter)
            }
            if let headers {
                ClientOpEncoder.writeHPub(&outbound, subject: subject, reply: reply, headers: headers,
                                          payloadBytes: payloadBytes, writePayload: writePayload)
            } else {
                ClientOpEncoder.writePub(&outbound, subject: subject, reply: reply,
                                         payloadBytes: payloadBytes, writePayload: writePayload)
            }
            stats.outMsgs += 1
            stats.outBytes += payloadBytes
            loop = flushLoopLocked()
            return .done
        }
        loop?.execute { self.flushOutbound() }
        return outcome
    }

    /// Round trip to the server: returns once everything published before it has been
    /// processed by the server (PING/PONG). While reconnecting, the PING waits in the
    /// buffer and is answered by the next server.
    public func flush(timeout: TimeAmount = .seconds(10)) async throws {
        let waiter = OneShot<Void>()
        let loop: EventLoop? = try lock.locked {
            guard state != .closed else { throw NATSError.connectionClosed }
            ClientOpEncoder.writePing(&outbound)
            pongWaiters.append(waiter)
            pingsInOutbound += 1
            return flushLoopLocked()
        }
        loop?.execute { self.flushOutbound() }
        let timer = group.next().scheduleTask(in: timeout) { waiter.complete(.failure(NATSError.timeout)) }
        defer { timer.cancel() }
        try await waiter.wait()
    }

    /// Call with the lock held after appending to `outbound`: returns the event loop to run
    /// `flushOutbound` on, or nil when a flush is already pending or there is no channel.
    func flushLoopLocked() -> EventLoop? {
        guard !flushScheduled, state == .connected || state == .draining, let channel else { return nil }
        flushScheduled = true
        return channel.eventLoop
    }

    /// Runs on the event loop: hands the whole outbound buffer to the channel in one write.
    /// While the socket is not writable the flush stays pending; the handler calls this
    /// again when writability returns.
    func flushOutbound() {
        let work: (Channel, ByteBuffer, [OneShot<Void>])? = lock.locked {
            guard let channel, state == .connected || state == .draining, outbound.readableBytes > 0 else {
                flushScheduled = false
                return nil
            }
            guard channel.isWritable else { return nil }
            flushScheduled = false
            let chunk = outbound
            outbound = allocator.buffer(capacity: Self.outboundChunkBytes)
            pingsInOutbound = 0
            let waiters = spaceWaiters
            spaceWaiters = []
            return (channel, chunk, waiters)
        }
        guard let (channel, chunk, waiters) = work else { return }
        channel.writeAndFlush(chunk, promise: nil)
        for waiter in waiters { waiter.complete(.success(())) }
    }

    /// The server answered a PING: complete the oldest waiter.
    func handlePong() {
        let waiter: OneShot<Void>?? = lock.locked {
            pingsOut = 0
            return pongWaiters.popFirst()
        }
        if let waiter { waiter?.complete(.success(())) }
    }
}
