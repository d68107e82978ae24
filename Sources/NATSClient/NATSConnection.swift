import Foundation
import NIOCore
import NIOPosix

/// Counters since the connection was created (all servers, all reconnects).
public struct NATSStatistics: Sendable, Equatable {
    public var inMsgs = 0
    public var inBytes = 0
    public var outMsgs = 0
    public var outBytes = 0
    public var reconnects = 0
    /// Messages a subscription's AsyncSequence dropped because its buffer was full.
    public var droppedMsgs = 0
}

/// Where the connection is in its life.
public enum NATSConnectionStatus: Sendable, Equatable {
    case connected
    /// Lost its server; buffering publishes while it tries the next one.
    case reconnecting
    /// `drain()` is running: no new subscriptions, existing ones are being wound down.
    case draining
    case closed
}

/// A NATS client connection on SwiftNIO.
///
/// Threading model: every public method is safe to call from any thread or task. Mutable
/// state lives behind one lock held only for short, non-blocking sections. Publishes are
/// encoded into one outbound buffer and written by the channel's event loop in batches (one
/// write per event-loop turn, not per message). Messages are delivered on the event loop:
/// handler subscriptions run their closure there (keep it short), AsyncSequence
/// subscriptions buffer for the consuming task.
///
/// Lifetime: the open socket keeps the connection alive (handler subscriptions keep working
/// without other references), so always end with `close()` or `drain()`.
public final class NATSConnection: @unchecked Sendable {
    public let options: NATSOptions
    let group: any EventLoopGroup
    let lock = NSLock()
    let allocator = ByteBufferAllocator()
    /// `_INBOX.<random>`; replies arrive on `<inboxPrefix>.<token>`.
    let inboxPrefix: String
    static let outboundChunkBytes = 64 * 1024

    // MARK: state guarded by `lock`
    // Every access happens with `lock` held, so the runtime exclusivity checks (a TLS lookup
    // per access, ~17% of the publish path in a profile) are switched off for these.
    @exclusivity(unchecked) var state: NATSConnectionStatus = .reconnecting
    @exclusivity(unchecked) var channel: Channel?
    /// Generation of the installed channel; events from older channels are ignored.
    @exclusivity(unchecked) var generation: UInt64 = 0
    @exclusivity(unchecked) var nextGeneration: UInt64 = 0
    /// Servers reconnect may use: `options.servers`, then those learned from INFO
    /// `connect_urls` (see `NATSOptions.discoverServers`). `serverIndex` points into it.
    @exclusivity(unchecked) var pool: [ServerAddress]
    @exclusivity(unchecked) var serverIndex = 0
    /// The generation whose server announced lame-duck mode (one move per connection).
    @exclusivity(unchecked) var lameDuckGeneration: UInt64?
    @exclusivity(unchecked) var info: ServerInfo?
    @exclusivity(unchecked) var outbound: ByteBuffer
    @exclusivity(unchecked) var flushScheduled = false
    /// One entry per PING not yet answered, in send order; nil for keepalive pings.
    @exclusivity(unchecked) var pongWaiters = CircularBuffer<OneShot<Void>?>()
    /// How many of `pongWaiters` belong to PINGs still sitting in `outbound` (not yet written).
    @exclusivity(unchecked) var pingsInOutbound = 0
    @exclusivity(unchecked) var pingsOut = 0
    @exclusivity(unchecked) var keepalive: RepeatedTask?
    @exclusivity(unchecked) var spaceWaiters: [OneShot<Void>] = []
    @exclusivity(unchecked) var subscriptions: [UInt64: SubscriptionState] = [:]
    @exclusivity(unchecked) var nextSid: UInt64 = 1
    @exclusivity(unchecked) var inboxSid: UInt64?
    @exclusivity(unchecked) var requests: [Substring: PendingRequest] = [:]
    @exclusivity(unchecked) var nextRequestID: UInt64 = 0
    @exclusivity(unchecked) var stats = NATSStatistics()
    @exclusivity(unchecked) var lastServerError: String?
    @exclusivity(unchecked) var reconnectTask: Task<Void, Never>?

    init(options: NATSOptions) {
        self.options = options
        self.pool = options.servers
        self.group = options.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.inboxPrefix = options.inboxPrefix + "." + Self.randomToken(length: 22)
        self.outbound = allocator.buffer(capacity: Self.outboundChunkBytes)
    }

    // MARK: - Connecting

    /// Connects to the first server of `options.servers` that completes the handshake.
    /// Throws `serverError` when a server rejects CONNECT (e.g. bad credentials), otherwise
    /// `connectionFailed` listing why each server failed.
    public static func connect(_ options: NATSOptions) async throws -> NATSConnection {
        guard !options.servers.isEmpty else { throw NATSError.noServers }
        let connection = NATSConnection(options: options)
        var failures: [String] = []
        var lastError: Error?
        for (index, server) in options.servers.enumerated() {
            do {
                let attempt = try await connection.establish(server)
                switch connection.install(attempt, serverIndex: index, isReconnect: false) {
                case .installed: return connection
                case .closed: throw NATSError.connectionClosed
                case .stale: failures.append("\(server): closed during handshake")
                }
            } catch NATSError.connectionFailed(let why) {
                failures.append(why)
            } catch {
                lastError = error
                failures.append("\(server): \(error)")
            }
        }
        if options.servers.count == 1, let serverError = lastError as? NATSError, case .serverError = serverError {
            throw serverError
        }
        throw NATSError.connectionFailed(failures.joined(separator: "; "))
    }

    /// Connects to `nats://host:port` URLs (comma-separated lists allowed).
    public static func connect(_ urls: String..., name: String? = nil) async throws -> NATSConnection {
        var options = try NATSOptions(urls: urls)
        options.name = name
        return try await connect(options)
    }

    struct Attempt {
        let channel: Channel
        let handler: ConnectionHandler
        let info: ServerInfo
    }

    /// TCP connect plus the INFO → CONNECT/PING → PONG handshake, bounded by `connectTimeout`.
    func establish(_ server: ServerAddress) async throws -> Attempt {
        let generation: UInt64 = lock.locked {
            nextGeneration += 1
            return nextGeneration
        }
        let eventLoop = group.next()
        let handshake = eventLoop.makePromise(of: ServerInfo.self)
        let handler = ConnectionHandler(connection: self, generation: generation, handshake: handshake, serverHost: server.host)
        let timeout = eventLoop.scheduleTask(in: options.connectTimeout) {
            handshake.fail(NATSError.connectionFailed("\(server): handshake timed out"))
        }
        defer { timeout.cancel() }
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(options.connectTimeout)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
                .channelInitializer { [options] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if options.tlsHandshakeFirst, let tls = options.tls {
                            let ssl = try ConnectionHandler.tlsHandler(tls, serverHost: server.host)
                            try channel.pipeline.syncOperations.addHandler(ssl)
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: server.host, port: server.port).get()
        } catch {
            handshake.fail(error)
            throw NATSError.connectionFailed("\(server): \(Self.describeConnectError(error))")
        }
        do {
            let info = try await handshake.futureResult.get()
            return Attempt(channel: channel, handler: handler, info: info)
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// "Connection refused" rather than NIO's nested error dump.
    static func describeConnectError(_ error: Error) -> String {
        var underlying = error
        if let multi = error as? NIOConnectionError, let first = multi.connectionErrors.first { underlying = first.error }
        if let io = underlying as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let channelError = underlying as? ChannelError, case .connectTimeout = channelError { return "connect timed out" }
        return "\(underlying)"
    }

    /// CONNECT options sent after INFO.
    func connectJSON(for info: ServerInfo) -> String {
        struct Connect: Encodable {
            var verbose = false
            var pedantic = false
            var headers: Bool
            var no_responders: Bool
            var `protocol` = 1
            var echo: Bool
            var name: String?
            var lang = "swift"
            var version = NATSConnection.clientVersion
            var user: String?
            var pass: String?
            var auth_token: String?
        }
        let headers = info.headers ?? true
        let connect = Connect(headers: headers, no_responders: headers, echo: options.echo, name: options.name,
                              user: options.user, pass: options.password, auth_token: options.token)
        let data = (try? JSONEncoder().encode(connect)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Reported in CONNECT `version`.
    public static let clientVersion = "0.1.0"

    enum InstallOutcome { case installed, stale, closed }

    /// Makes a handshaken channel the live one. On reconnect, every subscription is sent again
    /// (with its remaining auto-unsubscribe count) ahead of whatever was buffered meanwhile.
    func install(_ attempt: Attempt, serverIndex index: Int, isReconnect: Bool) -> InstallOutcome {
        let outcome: InstallOutcome = lock.locked {
            guard state != .closed else { return .closed }
            guard !attempt.handler.closed else { return .stale }
            state = .connected
            channel = attempt.channel
            generation = attempt.handler.generation
            serverIndex = index
            info = attempt.info
            mergeDiscoveredLocked(attempt.info)
            pingsOut = 0
            if isReconnect {
                stats.reconnects += 1
                var replay = allocator.buffer(capacity: outbound.readableBytes + 64 * subscriptions.count)
                for sub in subscriptions.values.sorted(by: { $0.sid < $1.sid }) {
                    ClientOpEncoder.writeSub(&replay, subject: sub.subject, queue: sub.queue, sid: sub.sid)
                    if let max = sub.max { ClientOpEncoder.writeUnsub(&replay, sid: sub.sid, max: max - sub.delivered) }
                }
                // Re-send PINGs whose answers were lost with the old socket, ahead of the
                // buffered ones, so the FIFO of pong waiters still lines up.
                let lostPings = pongWaiters.count - pingsInOutbound
                precondition(lostPings >= 0, "Internal inconsistency: more buffered PINGs than waiters")
                for _ in 0..<lostPings { ClientOpEncoder.writePing(&replay) }
                pingsInOutbound = pongWaiters.count
                replay.writeBuffer(&outbound)
                outbound = replay
            }
            flushScheduled = true
            return .installed
        }
        switch outcome {
        case .installed:
            attempt.channel.eventLoop.execute { self.flushOutbound() }
            startKeepalive(on: attempt.channel, generation: attempt.handler.generation)
        case .closed:
            attempt.channel.close(promise: nil)
        case .stale:
            break
        }
        return outcome
    }

    // MARK: - Observing

    public var status: NATSConnectionStatus { lock.locked { state } }
    public var isConnected: Bool { lock.locked { state == .connected } }
    /// INFO of the server currently (or last) connected.
    public var serverInfo: ServerInfo? { lock.locked { info } }
    public var connectedServer: ServerAddress? {
        lock.locked { state == .connected ? pool[serverIndex] : nil }
    }
    /// Every server reconnect may use: the configured ones, then those the cluster announced.
    public var knownServers: [ServerAddress] { lock.locked { pool } }
    public var statistics: NATSStatistics { lock.locked { stats } }
    /// Text of the last `-ERR` the server sent, if any.
    public var lastError: String? { lock.locked { lastServerError } }

    /// Waits (polling, bounded by `timeout`) until the connection is connected again.
    public func waitUntilConnected(timeout: TimeAmount = .seconds(10)) async throws {
        let deadline = NIODeadline.now() + timeout
        while true {
            switch status {
            case .connected, .draining: return
            case .closed: throw NATSError.connectionClosed
            case .reconnecting:
                guard NIODeadline.now() < deadline else { throw NATSError.timeout }
                try await Task.sleep(nanoseconds: 5_000_000)
            }
        }
    }

    // MARK: - Closing

    /// Closes the connection: buffered publishes are written first (best effort), pending
    /// requests and flushes fail with `connectionClosed`, subscriptions end.
    public func close() async {
        guard let (channel, finalWrite) = shutdown(reason: .connectionClosed, flushingOutbound: true) else { return }
        // Close only after the final write went out (closing first would fail it), but never
        // wait more than 5 s on a server that stopped reading.
        let guardTimer = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
        try? await finalWrite?.get()
        guardTimer.cancel()
        try? await channel.close().get()
    }

    /// Moves to `.closed` once; returns the live channel (if any) and the final write of what
    /// was still buffered.
    @discardableResult
    func shutdown(reason: NATSError, flushingOutbound: Bool) -> (Channel, EventLoopFuture<Void>?)? {
        let taken: (Channel?, ByteBuffer, [SubscriptionState], [PendingRequest], [OneShot<Void>?], [OneShot<Void>], RepeatedTask?, Task<Void, Never>?)? = lock.locked {
            guard state != .closed else { return nil }
            state = .closed
            defer {
                channel = nil
                subscriptions = [:]
                requests = [:]
                pongWaiters.removeAll()
                spaceWaiters = []
                keepalive = nil
                reconnectTask = nil
                outbound.clear()
            }
            return (channel, outbound, Array(subscriptions.values), Array(requests.values), Array(pongWaiters),
                    spaceWaiters, keepalive, reconnectTask)
        }
        guard let (channel, remaining, subs, pending, pongs, space, keepalive, reconnect) = taken else { return nil }
        keepalive?.cancel()
        reconnect?.cancel()
        for request in pending { request.slot.complete(.failure(reason)) }
        for pong in pongs { pong?.complete(.failure(reason)) }
        for waiter in space { waiter.complete(.success(())) }
        for sub in subs { sub.finish() }
        guard let channel else { return nil }
        if flushingOutbound, remaining.readableBytes > 0 {
            return (channel, channel.writeAndFlush(remaining))
        }
        return (channel, nil)
    }

    static func randomToken(length: Int) -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        var rng = SystemRandomNumberGenerator()
        return String(decoding: (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }
}
