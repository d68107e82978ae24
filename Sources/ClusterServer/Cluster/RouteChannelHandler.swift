import Foundation
import NIOCore
import NIOSSL

/// NIO handler of one route connection (accepted or solicited): handshake, route ops,
/// keepalive. Shared state lives in `RouteConnection` and `RouteManager`.
final class RouteChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private unowned let manager: RouteManager
    private let solicitedURL: RouteURL?
    private let configured: Bool
    private var route: RouteConnection?
    private var parser = RouteProtocolParser()
    private var cumulation: ByteBuffer?
    private var closing = false
    private var established = false
    private var pingTask: RepeatedTask?
    private var handshakeTimeout: Scheduled<Void>?
    /// What this dialer logs in with (its route URL's credentials or the cluster's own).
    private let credentials: RouteCredentials?
    /// Set on an accepted route while it has yet to log in (route authorization).
    private var login: RouteAuth?
    private var loginTimeout: Scheduled<Void>?
    /// A bcrypt check of the route's CONNECT runs off the event loop; reading waits for it.
    private var pausedForLogin = false
    /// Clients that received routed messages during the current read: flushed once at its end.
    private let flushBatch = FlushBatch()

    init(manager: RouteManager, solicitedURL: RouteURL?, configured: Bool, credentials: RouteCredentials? = nil) {
        self.manager = manager
        self.solicitedURL = solicitedURL
        self.configured = configured
        self.credentials = credentials
    }

    private var server: NATSServer { manager.server }

    func channelActive(context: ChannelHandlerContext) {
        guard let conn = manager.register(channel: context.channel, solicitedURL: solicitedURL, configured: configured) else {
            closing = true
            context.close(promise: nil)
            return
        }
        route = conn
        if solicitedURL != nil {
            conn.send(RouteConnect(name: server.serverID, cluster: manager.clusterName, user: credentials?.user,
                                   pass: credentials?.password).line())
        } else if let auth = server.options.clusterAuth {
            login = auth
            loginTimeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(auth.timeoutSeconds * 1000))) { [weak self] in
                guard let self, self.login != nil, !self.closing else { return }
                self.server.logger.error("\(conn.logPrefix) - authentication timeout")
                self.fail(nil, errText: "Authentication Timeout")
            }
        }
        conn.send(manager.infoLine(for: context.channel))
        handshakeTimeout = context.eventLoop.scheduleTask(in: .seconds(5)) { [weak self] in
            guard let self, !self.established else { return }
            self.fail("route handshake timeout")
        }
        let interval = TimeAmount.milliseconds(Int64(server.options.pingIntervalSeconds * 1000))
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.pingTick()
        }
        server.logger.debug("\(conn.logPrefix) - Route connection opened\(solicitedURL.map { " to \($0)" } ?? "")")
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Nothing more happens on this route: a login check finishing later must not go on
        // to a handshake (it would register a dead route as the peer's).
        closing = true
        flushBatch.run()
        pingTask?.cancel()
        handshakeTimeout?.cancel()
        loginTimeout?.cancel()
        if let conn = route { manager.routeClosed(conn) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        if var pending = cumulation {
            pending.writeBuffer(&buffer)
            buffer = pending
            cumulation = nil
        }
        drain(&buffer)
    }

    /// Processes the ops in `buffer` until it ends, the route closes or a login check pauses
    /// it; what is left waits in `cumulation`.
    private func drain(_ buffer: inout ByteBuffer) {
        guard let conn = route else { return }
        do {
            while !closing, !pausedForLogin, let op = try parser.next(&buffer) {
                if login != nil { logIn(op, conn) } else { process(op, conn) }
            }
        } catch let error as RouteProtocolError {
            server.logger.notice("\(conn.logPrefix) - Route parser ERROR: \(error)")
            if case .unknownOperation = error { fail(nil, errText: "Unknown Protocol Operation") } else { fail(nil) }
            return
        } catch {
            fail("\(error)")
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            cumulation = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushBatch.run()
        route?.noteActivity()
        route?.receivedSinceLastPing = true
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { route?.flushOutbound() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError {
            server.logger.error("\(route?.logPrefix ?? "?") - Route TLS handshake error: \(error)")
        } else {
            server.logger.debug("\(route?.logPrefix ?? "?") - Route connection error: \(error)")
        }
        context.close(promise: nil)
    }

    // MARK: - route authorization

    /// An accepted route that must log in: its first op has to be a `CONNECT` with the
    /// cluster's credentials (as nats-server: anything else is an authorization violation).
    private func logIn(_ op: RouteOp, _ conn: RouteConnection) {
        guard case let .connect(json) = op, let auth = login else {
            loginFailed(conn, user: nil)
            return
        }
        let fields = (try? JSONSerialization.jsonObject(with: Data(json.readableBytesView))) as? [String: Any]
        let user = fields?["user"] as? String, pass = fields?["pass"] as? String
        guard auth.isSlow else {
            finishLogin(auth.accepts(user: user, password: pass), user: user, conn)
            return
        }
        guard server.slowAuthQueue.operationCount < server.maxQueuedSlowAuth else {
            server.logger.warning("\(conn.logPrefix) - bcrypt verification queue full, refusing route CONNECT")
            loginFailed(conn, user: user)
            return
        }
        pausedForLogin = true
        conn.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let loop = conn.eventLoop
        server.slowAuthQueue.addOperation {
            let ok = auth.accepts(user: user, password: pass)
            loop.execute { [weak self] in self?.resumeAfterLogin(ok, user: user, conn) }
        }
    }

    private func resumeAfterLogin(_ ok: Bool, user: String?, _ conn: RouteConnection) {
        pausedForLogin = false
        guard !closing else { return }
        finishLogin(ok, user: user, conn)
        if closing { return }
        conn.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        if var pending = cumulation {
            cumulation = nil
            drain(&pending)
        }
        flushBatch.run()
    }

    private func finishLogin(_ ok: Bool, user: String?, _ conn: RouteConnection) {
        guard ok else {
            loginFailed(conn, user: user)
            return
        }
        login = nil
        loginTimeout?.cancel()
    }

    private func loginFailed(_ conn: RouteConnection, user: String?) {
        server.logger.error("\(conn.logPrefix) - authentication error\(user.map { " - User \"\($0)\"" } ?? "")")
        fail(nil, errText: "Authorization Violation")
    }

    // MARK: - ops

    private func process(_ op: RouteOp, _ conn: RouteConnection) {
        switch op {
        case let .connect(json):
            // Clients send `lang`; routes do not (nats-server tells them apart the same way).
            let fields = (try? JSONSerialization.jsonObject(with: Data(json.readableBytesView))) as? [String: Any]
            if let lang = fields?["lang"] as? String, !lang.isEmpty {
                server.logger.notice("\(conn.logPrefix) - Detected client connecting to route port")
                fail(nil, errText: "attempted to connect to route port")
            }
        case let .info(json):
            guard let info = try? JSONDecoder().decode(RouteInfo.self, from: Data(json.readableBytesView)) else {
                fail("bad route INFO")
                return
            }
            if established {
                manager.received(info: info, on: conn)
                return
            }
            switch manager.handshake(conn, info) {
            case .accept:
                established = true
                handshakeTimeout?.cancel()
            case let .reject(reason):
                closing = true
                conn.close(reason: nil, error: reason == nil ? nil : "Cluster Name Mismatch")
            }
        case .ping:
            conn.send("PONG\r\n")
        case .pong:
            conn.pingsOutstanding = 0
        case .ok:
            break
        case let .err(text):
            server.logger.error("\(conn.logPrefix) - Route Error '\(text)'")
        case let .subscribe(account, subject, queue, weight):
            guard requireEstablished(conn), let acc = accept(account, subject, conn) else { return }
            conn.addRemoteInterest(in: acc, subject: subject, queue: queue, weight: weight)
        case let .unsubscribe(account, subject, queue):
            guard requireEstablished(conn), let acc = server.account(named: account) else { return }
            conn.removeRemoteInterest(in: acc, subject: subject, queue: queue)
        case let .message(m):
            guard requireEstablished(conn) else { return }
            conn.inMsgs.wrappingIncrement(ordering: .relaxed)
            conn.inBytes.wrappingIncrement(by: m.payload.readableBytes + (m.headers?.readableBytes ?? 0), ordering: .relaxed)
            // Most traffic is in the global account: skip the dictionary lookup for it.
            guard let acc = m.account == RouteEncoder.globalAccount ? server.globalAccount : server.account(named: m.account)
            else { return }
            var message = RoutedMessage(subject: m.subject, reply: m.reply, headers: m.headers, payload: m.payload,
                                        fromRoute: true)
            message.flushBatch = flushBatch
            let result = acc.isGlobal ? conn.matchCache.result(for: m.subject, in: acc.sublist) : acc.sublist.match(m.subject)
            if result.isEmpty { return }
            _ = Fanout.deliver(message, to: result, skipOwner: nil, rng: &conn.rng, queueFilter: m.queues)
        case let .extensionFrame(namespace, payload):
            guard requireEstablished(conn) else { return }
            manager.dispatchExtension(namespace, payload: payload, from: conn)
        }
    }

    private func requireEstablished(_ conn: RouteConnection) -> Bool {
        if established { return true }
        server.logger.notice("\(conn.logPrefix) - Route op before INFO handshake")
        fail(nil)
        return false
    }

    /// Interest is kept only for accounts this node knows and valid subjects (others are logged).
    private func accept(_ account: String, _ subject: String, _ conn: RouteConnection) -> Account? {
        guard let acc = server.account(named: account) else {
            server.logger.debug("\(conn.logPrefix) - Ignoring interest in unknown account \(account)")
            return nil
        }
        guard Subject.isValidSubscription(subject) else {
            server.logger.debug("\(conn.logPrefix) - Ignoring interest in invalid subject \(subject)")
            return nil
        }
        return acc
    }

    private func fail(_ reason: String?, errText: String? = nil) {
        closing = true
        route?.close(reason: reason, error: errText)
    }

    private func pingTick() {
        guard let conn = route, !closing else { return }
        if conn.receivedSinceLastPing {
            conn.receivedSinceLastPing = false
            conn.pingsOutstanding = 0
        } else if conn.pingsOutstanding >= server.options.pingMax {
            fail("Stale Connection")
            return
        }
        conn.pingsOutstanding += 1
        conn.send("PING\r\n")
    }
}
