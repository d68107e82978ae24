import Foundation
import NIOCore
import NIOSSL
import NIOTLS

/// Thin NIO handler for a client connection: decode ops, act on them, keep the connection
/// alive. State that publishers on other threads see lives in `ClientConnection`.
final class ClientChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private unowned let server: NATSServer
    private var connection: ClientConnection!
    private var parser: ClientProtocolParser
    private var cumulation: ByteBuffer?
    private var closing = false
    private var pingTask: RepeatedTask?
    private var authTimeout: Scheduled<Void>?
    private var tlsTimeout: Scheduled<Void>?
    private var batchInMsgs = 0
    private var batchInBytes = 0
    /// Read once: `server.options` is a struct full of strings, too costly to copy per op.
    /// Credentials are configured: CONNECT must come first and is checked.
    private let authRequired: Bool
    /// A bcrypt check is running off the loop: ops after the CONNECT wait for its verdict.
    private var pausedForAuth = false
    private let maxSubscriptions: Int
    private var loggedMaxSubscriptions = false
    private let flushBatch = FlushBatch()
    private var sentConnectInfo = false

    init(server: NATSServer) {
        self.server = server
        self.authRequired = server.options.authConfigured
        self.maxSubscriptions = server.options.maxSubscriptions
        self.parser = ClientProtocolParser(maxControlLine: server.options.maxControlLine,
                                           maxPayload: server.options.maxPayload)
    }

    func channelActive(context: ChannelHandlerContext) {
        let conn = server.register(channel: context.channel)
        connection = conn
        guard server.admit(conn) else {
            server.logger.warning("\(conn.logPrefix) - Maximum connections exceeded")
            closing = true
            conn.sendErrorAndClose("maximum connections exceeded")
            return
        }
        let opts = server.options
        if let tls = server.clientTLS {
            startTLS(tls, options: opts, context: context)
        } else {
            conn.send(server.infoLine(for: conn))
        }
        if opts.authConfigured {
            authTimeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(opts.authTimeoutSeconds * 1000))) {
                [weak self] in self?.authTimedOut()
            }
        }
        let interval = TimeAmount.milliseconds(Int64(opts.pingIntervalSeconds * 1000))
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            [weak self] _ in self?.pingTick()
        }
        server.logger.debug("\(conn.logPrefix) - Client connection created")
    }

    /// TLS listener: the INFO goes out in plaintext first (unless `handshake_first`, where the
    /// initializer put the TLS handler in front and NIOSSL holds the INFO until the handshake
    /// is done); then the client's first byte picks TLS or plaintext. The handshake has
    /// `tls.timeout` to complete.
    private func startTLS(_ tls: NIOSSLContext, options opts: ServerOptions, context: ChannelHandlerContext) {
        let conn = connection!
        let settings = opts.tls!
        if settings.handshakeFirst {
            conn.send(server.infoLine(for: conn))
        } else {
            // Written straight to the socket: the TLS handler added next must not see it.
            var info = context.channel.allocator.buffer(capacity: 512)
            info.writeString(server.infoLine(for: conn))
            context.writeAndFlush(NIOAny(info), promise: nil)
            do {
                try context.pipeline.syncOperations.addHandler(
                    TLSAcceptHandler(sslContext: tls, allowPlaintext: opts.allowNonTLS), position: .first)
            } catch {
                context.close(promise: nil)
                return
            }
        }
        tlsTimeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(settings.timeoutSeconds * 1000))) {
            [weak self] in self?.tlsTimedOut()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            tlsTimeout?.cancel()
            tlsTimeout = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func tlsTimedOut() {
        tlsTimeout = nil
        guard let conn = connection, !closing else { return }
        server.logger.notice("\(conn.logPrefix) - TLS handshake timeout")
        closing = true
        conn.channel.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Nothing more happens on this connection: a bcrypt verdict arriving later must not log
        // a client in that is gone (it would hold one of its account's connections for good).
        closing = true
        flushBatch.run()
        pingTask?.cancel()
        authTimeout?.cancel()
        tlsTimeout?.cancel()
        guard let conn = connection else { return }
        conn.teardown()
        if conn.accountAdmitted {
            conn.accountAdmitted = false
            conn.account.releaseConnection()
        }
        if conn.connectReceived { server.publishClientEvent(conn, connected: false) }
        server.unregister(conn)
        server.logger.debug("\(conn.logPrefix) - Client connection closed")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        if let t = tlsTimeout {
            // Bytes reach this handler only after the handshake, or as allowed plaintext.
            t.cancel()
            tlsTimeout = nil
        }
        var buffer = unwrapInboundIn(data)
        if var pending = cumulation {
            pending.writeBuffer(&buffer)
            buffer = pending
            cumulation = nil
        }
        drain(&buffer)
    }

    /// Processes whole ops in `buffer`; keeps the rest (and everything while paused for auth).
    private func drain(_ buffer: inout ByteBuffer) {
        do {
            while !closing && !pausedForAuth, let op = try parser.next(&buffer) {
                process(op)
            }
        } catch let error as ClientProtocolError {
            protocolViolation(error)
            return
        } catch {
            protocolViolation(.unknownOperation)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            cumulation = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Counters first: once the batch is flushed (on return), a receiver may already ask `/varz`.
        defer { flushBatch.run() }
        guard let conn = connection else { return }
        if batchInMsgs > 0 {
            conn.inMsgs.wrappingIncrement(by: batchInMsgs, ordering: .relaxed)
            conn.inBytes.wrappingIncrement(by: batchInBytes, ordering: .relaxed)
            server.stats.inMsgs.wrappingIncrement(by: batchInMsgs, ordering: .relaxed)
            server.stats.inBytes.wrappingIncrement(by: batchInBytes, ordering: .relaxed)
            batchInMsgs = 0
            batchInBytes = 0
        }
        conn.noteActivity()
        conn.receivedSinceLastPing = true
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard let conn = connection else { return }
        if context.channel.isWritable {
            conn.unwritableSince = nil
            conn.flushOutbound()
        } else {
            conn.unwritableSince = .now()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError {
            // A client with a wrong or missing certificate: worth the operator's attention.
            server.logger.notice("\(connection?.logPrefix ?? "?") - TLS handshake error: \(error)")
        } else {
            server.logger.debug("\(connection?.logPrefix ?? "?") - Client connection error: \(error)")
        }
        context.close(promise: nil)
    }

    // MARK: - ops

    private func process(_ op: ClientOp) {
        let conn = connection!
        if authRequired && !conn.connectReceived {
            if case .connect = op {} else {
                authViolation()
                return
            }
        }
        switch op {
        case let .connect(json): handleConnect(json)
        case let .pub(subject, reply, payload): handlePublish(subject, reply, nil, payload)
        case let .hpub(subject, reply, headers, payload):
            guard conn.connectReceived, conn.options.headers else {
                protocolViolation(.badArguments("HPUB without headers support"))
                return
            }
            handlePublish(subject, reply, headers, payload)
        case let .sub(subject, queue, sid): handleSubscribe(subject, queue, sid)
        case let .unsub(sid, max):
            conn.unsubscribe(sid: sid, max: max)
            ok()
        case .ping:
            conn.send("PONG\r\n")
            // nats-server follows the first PONG to a protocol-1 client with a second INFO.
            if !sentConnectInfo && conn.connectReceived && conn.options.proto >= 1 {
                sentConnectInfo = true
                conn.send(server.infoLine(for: conn, connectInfo: true))
            }
        case .pong:
            conn.pingsOutstanding = 0
        case .info, .clientOK:
            break
        }
    }

    private func handleConnect(_ json: ByteBuffer) {
        let conn = connection!
        let opts: ConnectOptions
        do {
            opts = try JSONDecoder().decode(ConnectOptions.self, from: Data(json.readableBytesView))
        } catch {
            server.logger.debug("\(conn.logPrefix) - Bad CONNECT: \(error)")
            protocolViolation(.badConnect)
            return
        }
        if opts.proto < 0 || opts.proto > 1 {
            fail("invalid client protocol")
            return
        }
        if opts.noResponders && !opts.headers {
            fail("no responders requires headers support")
            return
        }
        // A repeated CONNECT updates options only: the identity stays what it was.
        if conn.connectReceived {
            conn.setConnectOptions(opts)
            ok()
            return
        }
        let auth = Authenticator(options: server.options, accounts: server.accountsByName)
        guard authRequired, auth.isSlow(opts) else {
            finishConnect(opts, auth.authenticate(opts))
            return
        }
        // bcrypt takes tens of milliseconds: verify on the auth queue and stop reading until then.
        guard server.slowAuthQueue.operationCount < server.maxQueuedSlowAuth else {
            server.logger.warning("\(conn.logPrefix) - bcrypt verification queue full, refusing CONNECT")
            authViolation()
            return
        }
        pausedForAuth = true
        conn.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let loop = conn.eventLoop
        server.slowAuthQueue.addOperation {
            let outcome = auth.authenticate(opts)
            loop.execute { [weak self] in self?.resumeAfterAuth(opts, outcome) }
        }
    }

    private func resumeAfterAuth(_ opts: ConnectOptions, _ outcome: AuthOutcome?) {
        pausedForAuth = false
        guard !closing else { return }
        finishConnect(opts, outcome)
        if closing { return }
        connection.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        if var pending = cumulation {
            cumulation = nil
            drain(&pending)
        }
        flushBatch.run()
    }

    private func finishConnect(_ opts: ConnectOptions, _ outcome: AuthOutcome?) {
        let conn = connection!
        guard let outcome else {
            authViolation()
            return
        }
        authTimeout?.cancel()
        authTimeout = nil
        guard outcome.account.admitConnection() else {
            server.logger.warning("\(conn.logPrefix) - Maximum account active connections exceeded (\(outcome.account.name))")
            fail("maximum account active connections exceeded")
            return
        }
        conn.accountAdmitted = true
        conn.authenticated(as: outcome)
        conn.connectReceived = true
        conn.setConnectOptions(opts)
        ok()
        server.publishClientEvent(conn, connected: true)
    }

    private func handlePublish(_ subject: String, _ reply: String?, _ headers: ByteBuffer?, _ payload: ByteBuffer) {
        let conn = connection!
        batchInMsgs += 1
        batchInBytes += payload.readableBytes + (headers?.readableBytes ?? 0)
        // nats-server reports a bad publish subject in pedantic mode but still routes the
        // message (a subject with an empty token matches nothing anyway).
        if conn.options.pedantic && !Subject.isValidLiteral(subject) {
            conn.send("-ERR 'Invalid Publish Subject'\r\n")
        }
        // The account's `mappings`: as nats-server 2.15.1, the permission check and the
        // violation name the mapped subject. Routes carry it mapped, so it is mapped once.
        let subject = conn.account.mappings?.map(subject) ?? subject
        if conn.permissions != nil || reply != nil || conn.account.maxPayload >= 0 {
            guard publishAllowed(conn, subject, reply, payload.readableBytes + (headers?.readableBytes ?? 0)) else { return }
        }
        // nats-server acks a verbose PUB before the resulting MSG reaches the same connection.
        ok()
        var message = RoutedMessage(subject: subject, reply: reply, headers: headers, payload: payload)
        message.flushBatch = flushBatch
        // The server is stopping: a request (its reply comes back to this client) is counted
        // before it is routed, as the reply may arrive on another thread at once.
        let awaited = reply != nil && conn.departing.load(ordering: .relaxed)
            && conn.ownSubscription(matching: reply!) != nil
        if awaited { conn.noteRequest(reply: reply!) }
        let delivered = server.route(message, from: conn)
        // A stream's subject whose leader's interest has not reached this node (yet): clustered
        // JetStream forwards it to the leader instead of refusing it.
        if delivered == 0, conn.account.offerUnrouted(message, noResponders: conn.options.noResponders && conn.options.headers) {
            return
        }
        if delivered == 0, let reply {
            if conn.options.noResponders, conn.options.headers {
                sendNoResponders(reply: reply, subject: subject)
            } else if awaited {
                conn.noteRequestDropped(reply: reply)
            }
        }
    }

    /// `NATS/1.0 503` to the requester's own reply subscription (nats-server `client.go`).
    private func sendNoResponders(reply: String, subject: String) {
        let conn = connection!
        guard let sub = conn.ownSubscription(matching: reply) else { return }
        var headers = conn.channel.allocator.buffer(capacity: 64)
        headers.writeString("NATS/1.0 503\r\nNats-Subject: \(subject)\r\n\r\n")
        let empty = conn.channel.allocator.buffer(capacity: 0)
        _ = conn.deliver(RoutedMessage(subject: reply, reply: nil, headers: headers, payload: empty), to: sub)
    }

    /// Permissions, reserved reply subjects and the account's payload limit. On a violation
    /// the client gets nats-server's -ERR, nothing is delivered, the connection stays open.
    private func publishAllowed(_ conn: ClientConnection, _ subject: String, _ reply: String?, _ size: Int) -> Bool {
        let limit = conn.account.maxPayload
        if limit >= 0 && size > limit {
            fail("Maximum Payload Violation")
            return false
        }
        if !conn.mayPublish(subject) {
            conn.send("-ERR 'Permissions Violation for Publish to \"\(subject)\"'\r\n")
            server.notePermissionViolation(conn, "Publish Violation - \(describeUser(conn)), Subject \"\(subject)\"")
            return false
        }
        if let reply, ReservedSubjects.isReservedReply(reply) {
            conn.send("-ERR 'Permissions Violation for Publish with Reply of \"\(reply)\"'\r\n")
            server.notePermissionViolation(conn, "Publish Violation - \(describeUser(conn)), Reply \"\(reply)\"")
            return false
        }
        return true
    }

    private func describeUser(_ conn: ClientConnection) -> String {
        conn.userName.map { "User \"\($0)\"" } ?? "Account \"\(conn.account.name)\""
    }

    private func handleSubscribe(_ subject: String, _ queue: String?, _ sid: String) {
        let conn = connection!
        guard Subject.isValidSubscription(subject) else {
            conn.send("-ERR 'Invalid Subject'\r\n")
            return
        }
        var filter: Permissions?
        if let perms = conn.permissions {
            guard perms.canSubscribe(subject, queue: queue) else {
                let q = queue.map { " using queue \"\($0)\"" } ?? ""
                conn.send("-ERR 'Permissions Violation for Subscription to \"\(subject)\"\(q)'\r\n")
                server.notePermissionViolation(conn, "Subscription Violation - \(describeUser(conn)), Subject \"\(subject)\"\(q), SID \(sid)")
                return
            }
            if perms.needsDeliveryFilter(subject) { filter = perms }
        }
        // The tighter of the account's limit (-1: none) and the server's `max_subscriptions`
        // (0: none). nats-server refuses the SUB and keeps the connection; logged once per
        // connection, so a client looping on SUB cannot flood the log.
        var max = conn.account.maxSubscriptions
        if maxSubscriptions > 0 && (max < 0 || maxSubscriptions < max) { max = maxSubscriptions }
        if max >= 0 && conn.subscriptionCount >= max {
            conn.send("-ERR 'maximum subscriptions exceeded'\r\n")
            if !loggedMaxSubscriptions {
                loggedMaxSubscriptions = true
                server.logger.warning("\(conn.logPrefix) - Maximum Subscriptions Exceeded (account \(conn.account.name), limit \(max))")
            }
            return
        }
        _ = conn.addSubscription(subject: subject, queue: queue, sid: sid, filter: filter)
        ok()
    }

    // MARK: - replies and failures

    private func ok() {
        if connection.options.verbose { connection.send("+OK\r\n") }
    }

    private func fail(_ text: String) {
        closing = true
        connection.sendErrorAndClose(text)
    }

    private func authViolation() {
        server.noteAuthFailure(connection)
        fail("Authorization Violation")
    }

    private func authTimedOut() {
        guard !connection.connectReceived, !closing else { return }
        server.logger.notice("\(connection.logPrefix) - Authentication Timeout")
        fail("Authentication Timeout")
    }

    private func protocolViolation(_ error: ClientProtocolError) {
        closing = true
        server.logger.notice("\(connection.logPrefix) - Client parser ERROR: \(error)")
        if let text = error.errText {
            connection.sendErrorAndClose(text)
        } else {
            connection.noteClose(CloseReason.protocolViolation)
            connection.channel.close(promise: nil)
        }
    }

    private func pingTick() {
        guard let conn = connection, !closing else { return }
        if let since = conn.unwritableSince,
           NIODeadline.now() - since > .milliseconds(Int64(server.options.writeDeadlineSeconds * 1000)) {
            conn.noteClose(CloseReason.slowConsumerWriteDeadline)
            conn.closeAsSlowConsumer()
            return
        }
        // Inbound traffic counts as liveness and replaces the ping (as nats-server does).
        if conn.receivedSinceLastPing {
            conn.receivedSinceLastPing = false
            conn.pingsOutstanding = 0
            return
        }
        if conn.pingsOutstanding >= server.options.pingMax {
            server.logger.debug("\(conn.logPrefix) - Stale Client Connection - Closing")
            fail("Stale Connection")
            return
        }
        conn.pingsOutstanding += 1
        conn.send("PING\r\n")
    }
}
