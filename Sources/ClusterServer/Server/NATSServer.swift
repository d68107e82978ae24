import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// One clusterd node: the client listener, the subscription index, connections, and the
/// monitoring endpoint.
public final class NATSServer: @unchecked Sendable {
    /// Current options; replaced as a whole on reload (read under the lock: cache hot fields).
    public var options: ServerOptions { lock.withLock { _options } }
    private var _options: ServerOptions
    public let serverID: String
    public let serverName: String
    public let logger: Logger
    public let stats = ServerStats()
    /// Refuses JetStream deliveries from a deposed stream leader that arrive late (finding 15).
    let staleDeliveries = StaleDeliveryGuard()
    /// The server's JetStream storage limits over every account (read at start).
    let jetStreamNodeUsage: NodeStoreUsage
    /// The global account's subject index (JetStream and internal clients live here).
    let sublist = Sublist()
    /// `$G` plus every configured account; fixed at start (account changes need a restart).
    let accountsByName: [String: Account]
    /// The configured `system_account`, where server requests are answered and system events
    /// published (`SystemRequests`, `SystemEvents.swift`); nil without one.
    let systemAccount: Account?
    /// Counts the system messages this server sent (their `server.seq`).
    let systemSequence = ManagedAtomic<UInt64>(0)
    public let globalAccount: Account
    /// Service imports' reply mappings (for tests and monitoring).
    private(set) var serviceImports: [ServiceImportSink] = []
    /// bcrypt checks waiting beyond this many are refused at once: a flood of CONNECTs
    /// naming bcrypt users cannot queue unbounded CPU work (legitimate clients retry).
    var maxQueuedSlowAuth = 256
    /// bcrypt checks run here, off the event loops, a few at a time.
    let slowAuthQueue: OperationQueue = {
        let q = OperationQueue()
        q.name = "clusterd.bcrypt"
        q.maxConcurrentOperationCount = max(1, System.coreCount)
        return q
    }()
    /// The route mesh; nil unless a cluster port is configured.
    public private(set) var routeManager: RouteManager?
    /// Membership (SWIM gossip over the routes); nil unless a cluster port is configured.
    public private(set) var gossip: GossipDriver?
    /// Tests only: runs between the route manager's start and the gossip driver's, to hold the
    /// gossip start back until routes are up (the order that once lost members for good).
    nonisolated(unsafe) static var gossipStartHook: ((NATSServer) -> Void)?
    let group: MultiThreadedEventLoopGroup
    /// Client TLS, built from `options.tls` by `start()` and rebuilt on reload (SIGHUP);
    /// nil keeps the plaintext pipeline exactly as it is without TLS (no extra handler).
    /// Each new connection takes the context current when it is accepted.
    var clientTLS: NIOSSLContext? { lock.withLock { _clientTLS } }
    private var _clientTLS: NIOSSLContext?
    let startTime = Date()

    private let lock = NIOLock()
    private var clients: [UInt64: ClientConnection] = [:]
    private var serverChannel: Channel?
    private var monitor: MonitoringServer?
    private var shuttingDown = false
    private var inLameDuckMode = false
    private let nextClientID = ManagedAtomic<UInt64>(0)
    let internalPublishCounter = ManagedAtomic<UInt64>(0)
    /// Extra monitoring endpoints registered by subsystems (e.g. `/jsz` by JetStream):
    /// path -> JSON object builder taking the query parameters.
    public var monitoringHandlers: [String: ([String: String]) -> [String: Any]] {
        get { lock.withLock { _monitoringHandlers } }
        set { lock.withLock { _monitoringHandlers = newValue } }
    }
    private var _monitoringHandlers: [String: ([String: String]) -> [String: Any]] = [:]
    /// Readiness checks `/healthz` runs (JetStream's: joined the meta group and caught up);
    /// each returns nil when healthy or the error text, and gets the query parameters.
    public var healthChecks: [([String: String]) -> String?] {
        get { lock.withLock { _healthChecks } }
        set { lock.withLock { _healthChecks = newValue } }
    }
    private var _healthChecks: [([String: String]) -> String?] = []
    /// Hooks run by `shutdown()` once clients left, before routes and the remaining client
    /// connections close (JetStream flushes and closes its stores here).
    public var shutdownHooks: [() -> Void] {
        get { lock.withLock { _shutdownHooks } }
        set { lock.withLock { _shutdownHooks = newValue } }
    }
    private var _shutdownHooks: [() -> Void] = []
    /// Hooks run early in `shutdown()`, concurrently, while clients and routes are still
    /// served (JetStream hands its Raft leaderships over here). Each must be bounded.
    public var handoffHooks: [() -> Void] {
        get { lock.withLock { _handoffHooks } }
        set { lock.withLock { _handoffHooks = newValue } }
    }
    private var _handoffHooks: [() -> Void] = []
    /// Called (on a route's event loop) whenever a route comes or goes; JetStream's cluster
    /// layer uses it to bootstrap the meta group and wake Raft groups led by a lost peer.
    public func addTopologyObserver(_ observer: @escaping () -> Void) {
        lock.withLock { topologyObservers.append(observer) }
    }
    private var topologyObservers: [() -> Void] = []
    /// Extra Prometheus text appended to `/metrics` by subsystems (JetStream's per-stream and
    /// per-consumer gauges).
    public var metricsProviders: [() -> String] {
        get { lock.withLock { _metricsProviders } }
        set { lock.withLock { _metricsProviders = newValue } }
    }
    private var _metricsProviders: [() -> String] = []
    private let liveConnections = ManagedAtomic<Int>(0)
    private let closedPromise: EventLoopPromise<Void>
    /// `waitUntilShutdown`: one caller waits for the stop and releases the loops; the others
    /// wait for that (not on a future of a closed loop, which never returns).
    private let shutdownWaitClaimed = NIOLockedValueBox(false)
    private let loopsReleased = ConditionLock(value: false)
    private var authFailureLog = LogThrottle()
    private var violationLog = LogThrottle()

    /// The bound client port (differs from options.port when that was -1).
    public private(set) var clientPort = 0
    /// The bound monitoring port, or 0 when monitoring is off.
    public private(set) var monitoringPort = 0
    /// Every listener is open (`start()` got to "Server is ready"). `/healthz` answers ok only
    /// then: the monitor opens first, and a route listener that fails to open ends the start.
    public var isReady: Bool { lock.withLock { ready } }
    private var ready = false
    public private(set) var configLoadTime = Date()

    public init(options: ServerOptions, logger: Logger = Logger(label: "clusterd")) {
        self._options = options
        self.jetStreamNodeUsage = NodeStoreUsage(maxMemory: options.maxMemoryStore, maxFile: options.maxFileStore)
        var rng = SystemRandomNumberGenerator()
        self.serverID = ServerIdentity.randomID(using: &rng)
        self.serverName = options.serverName ?? serverID
        self.logger = logger
        let threads = options.threads > 0 ? options.threads : System.coreCount
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.closedPromise = group.next().makePromise()
        var globalConfig = AccountConfig(name: globalAccountName)
        globalConfig.mappings = options.mappings
        let global = Account(config: globalConfig, sublist: sublist, cluster: options.clusterName)
        var accounts = [globalAccountName: global]
        for config in options.accounts where accounts[config.name] == nil {
            accounts[config.name] = Account(config: config, sublist: Sublist(account: config.name), cluster: options.clusterName)
        }
        self.globalAccount = global
        self.accountsByName = accounts
        self.systemAccount = options.systemAccount.flatMap { accounts[$0] }
        if options.clusterPort != nil {
            let routes = RouteManager(server: self)
            routeManager = routes
            for account in accounts.values { account.sublist.observer = routes }
            let g = GossipDriver(server: self, routes: routes)
            gossip = g
            _metricsProviders.append { [weak g] in g?.prometheusText() ?? "" }
        }
        var idRNG = SystemRandomNumberGenerator()
        serviceImports = AccountImports.install(accounts: accounts) {
            String(UInt64.random(in: 0...UInt64.max, using: &idRNG), radix: 36)
        }
    }

    /// Binds the listeners and starts serving. Logs the lines harnesses wait for.
    public func start() throws {
        // A stop signal may arrive while starting: then there is nothing to start.
        if lock.withLock({ shuttingDown }) { return }
        logger.info("Starting nats-server")
        logger.info("  Version:  \(ServerVersion.nats) (clusterd \(ServerVersion.clusterd))")
        logger.info("  Name:     \(serverName)")
        logger.info("  ID:       \(serverID)")
        if let file = options.configFile { logger.info("Using configuration file: \(file)") }
        // Certificates load before anything listens: a bad file stops the start.
        let tlsSettings = options.tls
        if let t = tlsSettings {
            let ctx = try TLSContexts.server(t)
            lock.withLock { _clientTLS = ctx }
        }
        let tlsFirst = tlsSettings?.handshakeFirst == true
        if options.httpPort != 0 {
            let m = MonitoringServer(server: self)
            monitoringPort = try listening(.monitoring, host: options.httpHost, port: options.httpPort) {
                try m.start(host: options.httpHost, port: max(options.httpPort, 0))
            }
            monitor = m
            logger.info("Starting http monitor on \(options.httpHost):\(monitoringPort)")
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
            .childChannelOption(ChannelOptions.writeBufferWaterMark,
                                value: ChannelOptions.Types.WriteBufferWaterMark(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { [unowned self] channel in
                if tlsFirst, let tls = self.clientTLS {
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(NIOSSLServerHandler(context: tls), ClientChannelHandler(server: self))
                    }
                }
                return channel.pipeline.addHandler(ClientChannelHandler(server: self))
            }
        let channel = try listening(.client, host: options.host, port: options.port) {
            try bootstrap.bind(host: options.host, port: max(options.port, 0)).wait()
        }
        let stopped: Bool = lock.withLock {
            if shuttingDown { return true }
            serverChannel = channel
            return false
        }
        if stopped {
            try? channel.close().wait()
            monitor?.stop()
            return
        }
        clientPort = channel.localAddress?.port ?? options.port
        logger.info("Listening for client connections on \(options.host):\(clientPort)")
        if let t = tlsSettings {
            logger.info("TLS required for client connections\(options.allowNonTLS ? " (plaintext allowed)" : "")\(t.verify ? ", client certificates verified" : "")\(t.handshakeFirst ? ", handshake first" : "")")
        }
        // Routes after the client listener: the route INFO carries our client URL.
        try routeManager?.start()
        Self.gossipStartHook?(self)
        gossip?.start()
        if let system = systemAccount {
            // `$SYS.REQ.SERVER...`: what the `nats` CLI's server commands ask every server.
            let requests = SystemRequests(server: self, account: system)
            requests.start()
            shutdownHooks.append { requests.stop() }
        }
        lock.withLock { ready = true }
        logger.info("Server is ready")
    }

    /// Graceful stop (SIGTERM), bounded to a few seconds:
    /// 1. lame duck: no new clients; protocol-1 clients get `INFO` with `ldm:true` and
    ///    `connect_urls` without this node, peers a route INFO without its client URL;
    /// 2. the `handoffHooks` run while everything is still served (JetStream hands each Raft
    ///    leadership held here to a caught-up follower);
    /// 3. each client is told to leave (`departClients`) once no request of its is in flight;
    /// 4. the `shutdownHooks` (stores flush and close), gossip and routes stop, the rest closes.
    public func shutdown() {
        let state: (Channel?, MonitoringServer?)? = lock.withLock {
            if shuttingDown { return nil }
            shuttingDown = true
            inLameDuckMode = true
            let listener = serverChannel
            serverChannel = nil
            return (listener, monitor)
        }
        guard let (listener, mon) = state else { return }
        logger.info("Initiating Shutdown...")
        let began = Date()
        try? listener?.close().wait()
        announceLeaving()
        let handoffs = handoffHooks
        DispatchQueue.concurrentPerform(iterations: handoffs.count) { handoffs[$0]() }
        departClients(notBefore: began + departureSettle)
        for hook in shutdownHooks { hook() }
        gossip?.stop()
        routeManager?.shutdown()
        let closes = connections().map { conn in
            conn.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
                conn.flushOutbound()
                return conn.channel.close()
            }
        }
        _ = try? EventLoopFuture.whenAllComplete(closes, on: group.next()).wait()
        mon?.stop()
        logger.info("Server Exiting..")
        closedPromise.succeed(())
    }

    /// How long a stopping server waits for clients with requests in flight before telling
    /// them to leave anyway, then for told clients to close before closing them itself
    /// (tests stretch these before `start()`, so a slow machine cannot hit them).
    var departureTellWithin = 1.0
    var departureCloseWithin = 0.5
    /// No client is told before this long after the stop began: requests sent just before it
    /// were not counted, and this leaves their replies time to arrive.
    var departureSettle = 0.25

    /// Peers and protocol-1 clients learn that this node is leaving (clustered only: a lone
    /// server has nowhere to send them); every client's requests in flight are counted from now.
    private func announceLeaving() {
        let conns = connections()
        for conn in conns { conn.beginDeparture() }
        guard let routes = routeManager else { return }
        routes.announceLeaving()
        for conn in conns {
            conn.eventLoop.execute {
                guard conn.connectReceived, conn.options.proto >= 1, !conn.isClosed else { return }
                conn.send(self.infoLine(for: conn, lameDuck: true))
            }
        }
    }

    /// Tells every client to leave (`-ERR 'Stale Connection'`, on which nats.go and nats.py
    /// reconnect to another server at once) at the first moment none of its requests is in
    /// flight — in the same write as its last reply — so no request is lost with the socket;
    /// then waits for the clients to close. Both waits are bounded.
    private func departClients(notBefore: Date) {
        guard connectionCount > 0 else { return }
        let settle = notBefore.timeIntervalSinceNow
        if settle > 0 { usleep(useconds_t(settle * 1_000_000)) }
        let tellBy = Date() + departureTellWithin
        while Date() < tellBy {
            // Asked again while untold: a client busy with requests is told once it was quiet.
            let untold = connections().filter { !$0.toldToLeave }
            if untold.isEmpty { break }
            for conn in untold { conn.requestLeave() }
            usleep(5_000)
        }
        let late = connections().filter { !$0.toldToLeave }
        for conn in late { conn.requestLeave(force: true) }
        if !late.isEmpty { logger.info("\(late.count) client(s) told to leave with a request still in flight") }
        let closeBy = Date() + departureCloseWithin
        while Date() < closeBy, connectionCount > 0 { usleep(5_000) }
    }

    /// Lame duck (SIGUSR2), as nats-server: stop accepting clients, tell protocol-1 clients
    /// (`INFO` with `ldm:true`) so they reconnect elsewhere, wait the grace period, close the
    /// clients spread over the lame-duck duration (at most a second apart), then shut down.
    public func enterLameDuckMode() {
        let listener: Channel?? = lock.withLock {
            if shuttingDown || inLameDuckMode { return nil }
            inLameDuckMode = true
            let ch = serverChannel
            serverChannel = nil
            return .some(ch)
        }
        guard let maybeListener = listener else { return }
        logger.info("Entering lame duck mode, stop accepting new clients")
        try? maybeListener?.close().wait()
        for conn in connections() {
            conn.eventLoop.execute {
                guard conn.connectReceived, conn.options.proto >= 1 else { return }
                conn.send(self.infoLine(for: conn, lameDuck: true))
            }
        }
        let o = options
        DispatchQueue.global().asyncAfter(deadline: .now() + o.lameDuckGracePeriodSeconds) {
            let conns = self.connections()
            let spread = max(0, o.lameDuckDurationSeconds - o.lameDuckGracePeriodSeconds)
            let gap = conns.isEmpty ? 0 : min(1.0, spread / Double(conns.count))
            for conn in conns {
                conn.eventLoop.execute {
                    conn.flushOutbound()
                    conn.channel.close(promise: nil)
                }
                if gap > 0 { Thread.sleep(forTimeInterval: gap) }
            }
            self.shutdown()
        }
    }

    /// Blocks until `shutdown()` has finished, then releases the event loops. Any number of
    /// callers may wait; each returns once the loops are gone.
    public func waitUntilShutdown() {
        let first = shutdownWaitClaimed.withLockedValue { claimed in
            defer { claimed = true }
            return !claimed
        }
        guard first else {
            loopsReleased.lock(whenValue: true)
            loopsReleased.unlock()
            return
        }
        try? closedPromise.futureResult.wait()
        try? group.syncShutdownGracefully()
        loopsReleased.lock()
        loopsReleased.unlock(withValue: true)
    }

    /// Applies the options that can change at runtime (SIGHUP); returns the names of changed
    /// options that need a restart. A TLS file that does not load fails the whole reload
    /// (logged, nothing applied) as in nats-server; `applyReload` throws that error instead.
    @discardableResult
    public func reload(_ new: ServerOptions) -> [String] {
        do {
            return try applyReload(new)
        } catch {
            logger.error("Failed to reload server configuration: \(error)")
            return []
        }
    }

    /// `reload`, throwing (nothing applied) when new TLS certificates, keys or CAs do not load.
    public func applyReload(_ new: ServerOptions) throws -> [String] {
        let tls = try TLSReload(old: options, new: new, clustered: routeManager != nil)
        var ignored = tls.needRestart
        if new.host != options.host || new.port != options.port { ignored.append("listen") }
        if new.httpPort != options.httpPort || new.httpHost != options.httpHost { ignored.append("http") }
        if new.jetStream != options.jetStream || new.storeDirectory != options.storeDirectory
            || new.jetStreamSyncIntervalSeconds != options.jetStreamSyncIntervalSeconds { ignored.append("jetstream") }
        if new.serverName != options.serverName { ignored.append("server_name") }
        // The listener and the name are fixed at start; route TLS reloads (TLSReload); the
        // route list (seeds and DNS names) applies at once.
        if new.clusterName != options.clusterName || new.clusterHost != options.clusterHost
            || new.clusterPort != options.clusterPort { ignored.append("cluster") }
        let routesChanged = new.routes != options.routes && routeManager != nil
        let routeAuthChanged = new.clusterAuth != options.clusterAuth && routeManager != nil
        let limitsChanged = new.maxMemoryStore != options.maxMemoryStore || new.maxFileStore != options.maxFileStore
        // Account namespaces and imports are built at start; users and permissions of the
        // global account (and token, no_auth_user) apply to new connections at once.
        if new.accounts != options.accounts { ignored.append("accounts") }
        // Built into the global account at start, like the accounts' own mappings.
        if new.mappings != options.mappings { ignored.append("mappings") }
        if new.systemAccount != options.systemAccount { ignored.append("system_account") }
        if new.gossipPeriodSeconds != options.gossipPeriodSeconds || new.dnsRefreshSeconds != options.dnsRefreshSeconds {
            ignored.append("cluster gossip timing")
        }
        var applied = new
        applied.accounts = options.accounts
        applied.mappings = options.mappings
        applied.host = options.host
        applied.port = options.port
        applied.httpHost = options.httpHost
        applied.httpPort = options.httpPort
        applied.jetStream = options.jetStream
        applied.storeDirectory = options.storeDirectory
        // Stores and Raft groups were opened with it.
        applied.jetStreamSyncIntervalSeconds = options.jetStreamSyncIntervalSeconds
        applied.serverName = options.serverName
        applied.tls = tls.clientOptions
        applied.allowNonTLS = options.allowNonTLS
        applied.clusterTLS = tls.routeOptions
        applied.clusterName = options.clusterName
        applied.clusterHost = options.clusterHost
        applied.clusterPort = options.clusterPort
        applied.gossipPeriodSeconds = options.gossipPeriodSeconds
        applied.gossipTickSeconds = options.gossipTickSeconds
        applied.dnsRefreshSeconds = options.dnsRefreshSeconds
        if !routesChanged { applied.routes = options.routes }
        applied.routeHostOverrides = options.routeHostOverrides
        lock.withLock {
            _options = applied
            configLoadTime = Date()
            // New connections and routes take these; established ones keep theirs.
            if let c = tls.client { _clientTLS = c }
        }
        if let r = tls.routes { routeManager?.installTLS(accept: r.accept, dial: r.dial) }
        if let t = tls.client == nil ? nil : applied.tls { logger.info("Reloaded: client TLS certificate \"\(t.certFile)\"") }
        if let t = tls.routes == nil ? nil : applied.clusterTLS { logger.info("Reloaded: route TLS certificate \"\(t.certFile)\"") }
        if limitsChanged && applied.jetStream {
            // Raised or lowered at once (nats-server refuses a lower one): a limit below what
            // is stored refuses publishes from then on and removes nothing.
            jetStreamNodeUsage.setLimits(maxMemory: new.maxMemoryStore, maxFile: new.maxFileStore)
            logger.info("Reloaded: JetStream max_memory_store = \(Self.limitText(new.maxMemoryStore)), max_file_store = \(Self.limitText(new.maxFileStore))")
        }
        if routeAuthChanged {
            // Established routes stay: they logged in already.
            logger.info("Reloaded: cluster authorization \(applied.clusterAuth == nil ? "off" : "on") for new routes")
        }
        if routesChanged {
            logger.info("Reloaded: cluster routes \(applied.routes)")
            routeManager?.setConfiguredRoutes(applied.routes)
            gossip?.setRoutes(applied.routes)
        }
        return ignored
    }

    private static func limitText(_ bytes: Int64) -> String { bytes < 0 ? "none" : "\(bytes) bytes" }

    /// The account of that name (`$G` is the global one), or nil when none is configured.
    func account(named name: String) -> Account? { accountsByName[name] }

    // MARK: - connections

    func register(channel: Channel) -> ClientConnection {
        let id = nextClientID.wrappingIncrementThenLoad(ordering: .relaxed)
        let conn = ClientConnection(id: id, channel: channel, server: self)
        stats.totalConnections.wrappingIncrement(ordering: .relaxed)
        lock.withLock { clients[id] = conn }
        return conn
    }

    /// Counts the connection against max_connections; false means refuse it.
    func admit(_ conn: ClientConnection) -> Bool {
        let n = liveConnections.wrappingIncrementThenLoad(ordering: .relaxed)
        let refusing = lock.withLock { shuttingDown }
        return n <= options.maxConnections && !refusing
    }

    func unregister(_ conn: ClientConnection) {
        let removed: Bool = lock.withLock { clients.removeValue(forKey: conn.id) != nil }
        guard removed else { return }
        liveConnections.wrappingDecrement(ordering: .relaxed)
        let snap = conn.snapshot(includeSubscriptions: false)
        stats.closedOutMsgs.wrappingIncrement(by: snap.outMsgs, ordering: .relaxed)
        stats.closedOutBytes.wrappingIncrement(by: snap.outBytes, ordering: .relaxed)
    }

    func connections() -> [ClientConnection] {
        lock.withLock { Array(clients.values) }
    }

    var connectionCount: Int { lock.withLock { clients.count } }

    // MARK: - protocol services

    /// The INFO line for `conn`. `connectInfo` is the second INFO nats-server sends a
    /// protocol-1 client after its first PONG; `lameDuck` adds `ldm:true`.
    func infoLine(for conn: ClientConnection, connectInfo: Bool = false, lameDuck: Bool = false) -> String {
        var info = ServerInfo(serverID: serverID, serverName: serverName, version: ServerVersion.nats,
                              host: options.host, port: clientPort, maxPayload: options.maxPayload)
        info.authRequired = options.authRequired ? true : nil
        if let tls = options.tls {
            // As nats-server: allow_non_tls turns "required" into "available".
            info.tlsRequired = options.allowNonTLS ? nil : true
            info.tlsAvailable = options.allowNonTLS ? true : nil
            info.tlsVerify = tls.verify ? true : nil
        }
        info.jetstream = options.jetStream ? true : nil
        info.clientID = conn.id
        info.clientIP = conn.remoteHost
        info.apiLevel = options.jetStream ? JetStreamService.apiLevel : nil
        if connectInfo {
            info.connectInfo = true
            info.remoteAccount = conn.account.name
        }
        if lameDuck { info.lameDuckMode = true }
        info.cluster = routeManager.map { $0.clusterName.isEmpty ? nil : $0.clusterName } ?? options.clusterName
        if let urls = routeManager?.clientConnectURLs(), !urls.isEmpty { info.connectURLs = urls }
        return info.line()
    }

    /// Counts every failure; logs at most one line per second (plus how many were folded).
    func noteAuthFailure(_ conn: ClientConnection) {
        stats.authFailures.wrappingIncrement(ordering: .relaxed)
        if let suffix = lock.withLock({ authFailureLog.admit(now: Date()) }) {
            logger.error("\(conn.logPrefix) - Authorization Error\(suffix)")
        }
    }

    /// Counts a permissions violation; logs it at most once a second (plus how many folded).
    func notePermissionViolation(_ conn: ClientConnection, _ what: String) {
        stats.permissionViolations.wrappingIncrement(ordering: .relaxed)
        if let suffix = lock.withLock({ violationLog.admit(now: Date()) }) {
            logger.error("\(conn.logPrefix) - \(what)\(suffix)")
        }
    }

    /// Routes a message from a client (or nil for server-originated ones) to every matching
    /// subscription. Returns how many accepted it.
    func route(_ message: RoutedMessage, from origin: ClientConnection) -> Int {
        let account = origin.account
        let result = origin.matchCache.result(for: message.subject, in: account.sublist)
        if result.isEmpty { return 0 }
        let skip: UInt64? = origin.options.echo ? nil : origin.id
        if account.isGlobal { return Fanout.deliver(message, to: result, skipOwner: skip, rng: &origin.rng) }
        var m = message
        m.account = account.name
        return Fanout.deliver(m, to: result, skipOwner: skip, rng: &origin.rng)
    }

    /// The mesh changed (a route came or went, a peer's client URLs changed): clients that
    /// declared `protocol:1` get an async INFO with the new `connect_urls`.
    func clusterTopologyChanged() {
        for observer in lock.withLock({ topologyObservers }) { observer() }
        for conn in connections() {
            conn.eventLoop.execute {
                guard conn.connectReceived, conn.options.proto >= 1, !conn.isClosed else { return }
                conn.send(self.infoLine(for: conn))
            }
        }
    }

    var outMsgsTotal: (msgs: Int, bytes: Int) {
        var msgs = stats.closedOutMsgs.load(ordering: .relaxed)
        var bytes = stats.closedOutBytes.load(ordering: .relaxed)
        for c in connections() {
            let s = c.snapshot(includeSubscriptions: false)
            msgs += s.outMsgs
            bytes += s.outBytes
        }
        return (msgs, bytes)
    }
}

/// Compares secrets without an early exit, so timing does not leak a prefix match.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) {
        diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return diff == 0
}
