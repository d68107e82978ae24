import NIOCore

extension NATSConnection {
    /// The handler's channel went inactive. If it was the live one, start reconnecting
    /// (or close for good when reconnect is off or a drain was running).
    func channelClosed(_ handler: ConnectionHandler) {
        enum Next { case ignore, reconnect, close }
        var space: [OneShot<Void>] = []
        var keepaliveTask: RepeatedTask?
        let next: Next = lock.locked {
            handler.closed = true
            guard handler.generation == generation, state == .connected || state == .draining else { return .ignore }
            channel = nil
            keepaliveTask = keepalive
            keepalive = nil
            // PINGs already written went down with the socket. Their waiters stay queued: the
            // next server gets a fresh PING for each (see `install`), so a flush spanning a
            // reconnect completes once the new server has caught up, or times out.
            space = spaceWaiters
            spaceWaiters = []
            flushScheduled = false
            if state == .draining || !options.allowReconnect { return .close }
            state = .reconnecting
            return .reconnect
        }
        keepaliveTask?.cancel()
        for waiter in space { waiter.complete(.success(())) }
        switch next {
        case .ignore: return
        case .close: shutdown(reason: .connectionClosed, flushingOutbound: false)
        case .reconnect:
            let task = Task { await self.reconnectLoop() }
            lock.locked { if state == .reconnecting { reconnectTask = task } }
        }
    }

    /// Tries the servers round-robin, starting with the one after the lost server, waiting a
    /// bounded, doubling backoff after each full round; gives up (closes) after
    /// `maxReconnectAttempts` failed attempts.
    func reconnectLoop() async {
        var failures = 0
        var round = 0
        while !Task.isCancelled {
            let (start, servers) = lock.locked { (serverIndex, pool) }
            for step in 1...servers.count {
                guard lock.locked({ state == .reconnecting }) else { return }
                let index = (start + step) % servers.count
                if let attempt = try? await establish(servers[index]) {
                    switch install(attempt, serverIndex: index, isReconnect: true) {
                    case .installed, .closed: return
                    case .stale: break
                    }
                }
                failures += 1
                if failures >= options.maxReconnectAttempts {
                    shutdown(reason: .connectionFailed("gave up after \(failures) reconnect attempts"), flushingOutbound: false)
                    return
                }
            }
            let wait = options.reconnectWait(afterRounds: round)
            round += 1
            try? await Task.sleep(nanoseconds: UInt64(max(wait.nanoseconds, 0)))
        }
    }

    /// Client PINGs every `pingInterval`; `maxPingsOut` unanswered means the server is gone
    /// even if TCP has not noticed, so the channel is closed and reconnect starts.
    func startKeepalive(on channel: Channel, generation: UInt64) {
        let interval = options.pingInterval
        let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.keepaliveTick(generation: generation)
        }
        let keep = lock.locked { () -> Bool in
            guard generation == self.generation, state == .connected || state == .draining else { return false }
            keepalive = task
            return true
        }
        if !keep { task.cancel() }
    }

    func keepaliveTick(generation: UInt64) {
        var stale: Channel?
        var loop: EventLoop?
        lock.locked {
            guard generation == self.generation, let channel, state == .connected || state == .draining else { return }
            if pingsOut >= options.maxPingsOut {
                stale = channel
                return
            }
            pingsOut += 1
            ClientOpEncoder.writePing(&outbound)
            pongWaiters.append(nil)
            pingsInOutbound += 1
            loop = flushLoopLocked()
        }
        stale?.close(promise: nil)
        loop?.execute { self.flushOutbound() }
    }

    /// A `-ERR` after the handshake. Fatal ones are followed by the server closing the socket,
    /// which triggers reconnect; the text is kept for `lastError`.
    func handleServerError(_ text: String) {
        lock.locked { lastServerError = text }
    }

    /// An async INFO: learns the servers it lists; with `ldm:true` (the server entered
    /// lame-duck mode and will close its clients soon) and another server to go to, tells
    /// `onLameDuck` and moves after a jittered delay instead of waiting to be dropped.
    /// (nats.go and nats.py only call their lame-duck callback and wait to be closed.)
    func updateInfo(_ newInfo: ServerInfo) {
        let decision: (generation: UInt64, channel: Channel?, moving: Bool)? = lock.locked {
            info = newInfo
            mergeDiscoveredLocked(newInfo)
            guard newInfo.lameDuckMode == true, state == .connected, lameDuckGeneration != generation else { return nil }
            lameDuckGeneration = generation
            let current = pool[serverIndex]
            let moving = options.allowReconnect && pool.contains { $0 != current }
            return (generation, channel, moving)
        }
        guard let decision else { return }
        options.onLameDuck?(newInfo, decision.moving)
        guard decision.moving, let channel = decision.channel else { return }
        let jitter = max(options.lameDuckMoveJitter.nanoseconds, 0)
        let delay = jitter == 0 ? 0 : Int64.random(in: 0...jitter)
        let deadline = NIODeadline.now() + .nanoseconds(delay) + .seconds(1)
        channel.eventLoop.scheduleTask(in: .nanoseconds(delay)) {
            self.leaveLameDuck(channel, generation: decision.generation, deadline: deadline)
        }
    }

    /// Closes the lame-duck server's channel once no request awaits its reply there (or at
    /// `deadline`); the reconnect loop then starts with the next server and replays every
    /// subscription and what was buffered meanwhile.
    func leaveLameDuck(_ channel: Channel, generation: UInt64, deadline: NIODeadline) {
        let waiting: Bool? = lock.locked {
            guard generation == self.generation, state == .connected else { return nil }
            return !requests.isEmpty && NIODeadline.now() < deadline
        }
        switch waiting {
        case nil: return
        case true?:
            channel.eventLoop.scheduleTask(in: .milliseconds(10)) {
                self.leaveLameDuck(channel, generation: generation, deadline: deadline)
            }
        case false?:
            channel.close(promise: nil)
        }
    }

    /// Adds the servers of INFO `connect_urls` that are not known yet (lock held).
    func mergeDiscoveredLocked(_ info: ServerInfo) {
        guard options.discoverServers, let urls = info.connectURLs else { return }
        for url in urls.prefix(256) where pool.count < 256 {
            guard let address = ServerAddress(url), !pool.contains(address) else { continue }
            pool.append(address)
        }
    }
}
