import Atomics
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// The route mesh of one node: the cluster listener, dialers for seed routes and for
/// addresses learned by the gossip layer (reconnecting with bounded backoff), one established
/// route per peer server, interest propagation (RS+/RS-), and the client `connect_urls`.
/// Which servers exist is the `GossipDriver`'s business: it asks for routes via `connect(_:)`.
///
/// Threading: all shared state sits behind `lock`. Route ops run on each route's event loop;
/// interest changes arrive on whichever thread changed the `Sublist`. Lock order: this lock,
/// then a route's lock (appending to its outbound buffer) — never the other way round.
public final class RouteManager: SublistObserver, @unchecked Sendable {
    /// Reconnect backoff: doubles from `initialDelay` up to `maxDelay`.
    static let initialDelay = TimeAmount.milliseconds(100)
    static let maxDelay = TimeAmount.seconds(2)
    /// Routes carry every node's traffic: read and buffer in large chunks, as client
    /// connections do.
    static let recvAllocator = AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20)
    static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1 << 20, high: 4 << 20)
    /// A gossiped (not configured) route is dropped after this many failed dials in a row.
    static let implicitRetries = 3

    private struct Dialer {
        var configured: Bool
        var failures = 0
        /// A dial or a connection from this dialer is live.
        var busy = false
        /// The server this URL led to last time; while a route to it exists, don't dial.
        var peerID: String?
        var parked = false
        var retry: Scheduled<Void>?
        /// From the configured URL (`nats://user:pass@host:port`); nil: the cluster's own.
        var credentials: RouteCredentials?
    }

    /// What the handshake decided about a route whose peer INFO arrived.
    enum Decision: Equatable {
        case accept
        case reject(String?)
    }

    unowned let server: NATSServer
    private let lock = NIOLock()
    private var configuredName: String?
    private var adoptedName: String?
    private var listener: Channel?
    private var stopping = false
    /// The node is leaving (graceful stop): its client URL is no longer advertised.
    private var leaving = false
    private let nextRID = ManagedAtomic<UInt64>(0)
    private var routes: [UInt64: RouteConnection] = [:]
    private var established: [String: RouteConnection] = [:]
    private var interest: [InterestKey: Int] = [:]
    private var dialers: [RouteURL: Dialer] = [:]
    private var selfURLs: Set<RouteURL> = []
    /// The configured route URLs (the seeds), as last set.
    private var configuredURLs: Set<RouteURL> = []
    private var dialingStarted = false
    /// `XMSG` handlers by namespace (RouteManager+Extensions.swift).
    let extensions = NIOLockedValueBox<[String: (String, ByteBuffer) -> Void]>([:])
    private var routeObservers: [(_ serverID: String, _ up: Bool) -> Void] = []
    /// The bound cluster port.
    public private(set) var port = 0
    /// Route TLS (`cluster { tls {} }`): accepted routes must present a certificate the CA
    /// signed, dialed routes present ours and check the peer's. TLS starts at connect, before
    /// the INFO exchange. Set by `start()`, replaced by `reloadTLS` (under `lock`).
    private var tlsAccept: NIOSSLContext?
    private var tlsDial: NIOSSLContext?

    init(server: NATSServer) {
        self.server = server
        self.configuredName = server.options.clusterName
    }

    /// The cluster name in use: configured, or adopted from the first named peer.
    public var clusterName: String { lock.withLock { configuredName ?? adoptedName ?? "" } }

    // MARK: - lifecycle

    /// Installs route TLS contexts for routes made from now on (start, and SIGHUP);
    /// established routes keep the ones they were made with.
    func installTLS(accept: NIOSSLContext, dial: NIOSSLContext) {
        lock.withLock {
            tlsAccept = accept
            tlsDial = dial
        }
    }

    /// Binds the cluster listener and starts dialing the configured routes.
    func start() throws {
        let o = server.options
        let host = o.clusterHost ?? "0.0.0.0"
        if let t = o.clusterTLS { installTLS(accept: try TLSContexts.server(t), dial: try TLSContexts.client(t)) }
        let bootstrap = ServerBootstrap(group: server.group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelOption(ChannelOptions.recvAllocator, value: Self.recvAllocator)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: Self.waterMark)
            .childChannelInitializer { [unowned self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = self.lock.withLock({ self.tlsAccept }) { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(RouteChannelHandler(manager: self, solicitedURL: nil, configured: false))
                }
            }
        let channel = try listening(.route, host: host, port: o.clusterPort ?? 0) {
            try bootstrap.bind(host: host, port: max(o.clusterPort ?? 0, 0)).wait()
        }
        port = channel.localAddress?.port ?? 0
        lock.withLock { listener = channel }
        server.logger.info("Cluster name is \(clusterName.isEmpty ? "(dynamic)" : clusterName)")
        server.logger.info("Listening for route connections on \(host):\(port)\(o.clusterTLS == nil ? "" : " (mutual TLS)")")
        setConfiguredRoutes(o.routes)
    }

    /// Makes `texts` the configured routes (redialed forever): new ones are dialed; ones no
    /// longer listed become ordinary dialers that give up after a few failures (a live
    /// route to them stays: the gossip layer still knows the member). Used at start and on
    /// SIGHUP.
    func setConfiguredRoutes(_ texts: [String]) {
        var wanted = Set<RouteURL>()
        var credentials: [RouteURL: RouteCredentials] = [:]
        for text in texts {
            guard let url = RouteURL(text), url.port > 0 else {
                server.logger.error("Ignoring route URL \"\(MonitoringEndpoints.redactURL(text))\": expected nats://host:port")
                continue
            }
            wanted.insert(url)
            credentials[url] = RouteCredentials(url: text)
        }
        let fresh: [RouteURL] = lock.withLock {
            if stopping { return [] }
            for (url, d) in dialers where d.configured && !wanted.contains(url) { dialers[url]?.configured = false }
            configuredURLs = wanted
            var added: [RouteURL] = []
            for url in wanted.sorted(by: { $0.description < $1.description }) {
                if dialers[url] != nil {
                    dialers[url]?.configured = true
                    dialers[url]?.credentials = credentials[url]
                } else {
                    dialers[url] = Dialer(configured: true, credentials: credentials[url])
                    added.append(url)
                }
            }
            return added
        }
        lock.withLock { dialingStarted = true }
        for url in fresh { dial(url) }
    }

    /// Dials `url` (an address the gossip layer learned or resolved) unless it is this node,
    /// already has a dialer, or an established route leads to a server advertising it.
    /// Such a dialer gives up after a few failed attempts; gossip asks again later.
    public func connect(_ url: RouteURL) {
        let fresh: Bool = lock.withLock {
            if stopping || selfURLs.contains(url) || dialers[url] != nil { return false }
            if peer(advertising: { $0 == url }) != nil { return false }
            dialers[url] = Dialer(configured: false)
            return true
        }
        if fresh {
            server.logger.debug("Connecting to gossiped route \(url)")
            dial(url)
        }
    }

    /// True when `url` turned out to lead to this node.
    public func isSelf(_ url: RouteURL) -> Bool { lock.withLock { selfURLs.contains(url) } }

    /// Registers `observer`, called with a peer's server id when its route is established
    /// (`up` true) or lost (false), on the route's event loop.
    public func observeRoutes(_ observer: @escaping (_ serverID: String, _ up: Bool) -> Void) {
        lock.withLock { routeObservers.append(observer) }
    }

    private func notifyRoute(_ serverID: String, up: Bool) {
        for o in lock.withLock({ routeObservers }) { o(serverID, up) }
    }

    func shutdown() {
        let (l, open, retries): (Channel?, [RouteConnection], [Scheduled<Void>]) = lock.withLock {
            stopping = true
            let r = dialers.values.compactMap(\.retry)
            dialers.removeAll()
            return (listener, Array(routes.values), r)
        }
        retries.forEach { $0.cancel() }
        try? l?.close().wait()
        let closes = open.map { r in
            r.eventLoop.submit { r.close(reason: nil) }
        }
        _ = try? EventLoopFuture.whenAllComplete(closes, on: server.group.next()).wait()
    }

    // MARK: - dialing

    private func dial(_ url: RouteURL) {
        var parkedFor: String?
        var credentials: RouteCredentials?
        let configured: Bool? = lock.withLock {
            guard !stopping, var d = dialers[url], !d.busy else { return nil }
            credentials = d.credentials
            d.retry = nil
            // At each retry too: the peer may have dialed us while our dial was refused.
            if let p = parkIfPeerUp(&d, url) {
                dialers[url] = d
                parkedFor = p
                return nil
            }
            d.busy = true
            dialers[url] = d
            return d.configured
        }
        if let p = parkedFor {
            server.logger.debug("Route to \(p) is up already, not dialing \(url)")
        }
        guard let configured else { return }
        let login = credentials ?? server.options.clusterAuth?.dialCredentials
        server.logger.debug("Trying to connect to route on \(url.host):\(url.port)")
        // Test seam (CLUSTERD_HOSTS_FILE): a mapped name is dialed at its mapped address.
        let address = server.options.routeHostOverrides[url.host.lowercased()] ?? url.host
        let dialTLS = lock.withLock { tlsDial }
        ClientBootstrap(group: server.group)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .channelOption(ChannelOptions.recvAllocator, value: Self.recvAllocator)
            .channelOption(ChannelOptions.writeBufferWaterMark, value: Self.waterMark)
            .connectTimeout(.seconds(2))
            .channelInitializer { [unowned self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = dialTLS {
                        let name = TLSContexts.serverHostname(for: url.host)
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    try channel.pipeline.syncOperations.addHandler(RouteChannelHandler(manager: self, solicitedURL: url, configured: configured,
                                                                                         credentials: login))
                }
            }
            .connect(host: address, port: url.port)
            .whenFailure { [weak self] error in
                self?.server.logger.debug("Error trying to connect to route \(url): \(error)")
                self?.dialEnded(url, established: false)
            }
    }

    /// Parks `d` (until `routeClosed` rearms it) when the server at `url` has a route up: a
    /// duplicate that wins the tie-break replaces a route in use and loses what is in flight on
    /// it. That server is known by the id an earlier connection taught, by the route URL it
    /// advertises, or, for a connection just made, by the address the dial `reached` (a
    /// configured DNS name never equals the IP address a peer advertises). Returns its id.
    /// Caller holds the lock.
    private func parkIfPeerUp(_ d: inout Dialer, _ url: RouteURL, reached: SocketAddress? = nil) -> String? {
        let byAddress = reached.flatMap { r in peer(advertising: { (try? SocketAddress(ipAddress: $0.host, port: $0.port)) == r }) }
        guard let p = [d.peerID, peer(advertising: { $0 == url }), byAddress].lazy.compactMap({ $0 })
            .first(where: { self.established[$0] != nil }) else { return nil }
        d.peerID = p
        d.parked = true
        return p
    }

    /// The server whose established route advertises a route URL `matching` (caller holds the lock).
    private func peer(advertising matching: (RouteURL) -> Bool) -> String? {
        established.first { $0.value.peerInfo.flatMap { RouteURL($0.routeURL) }.map(matching) ?? false }?.key
    }

    /// A dial failed or its connection ended: retry with backoff, park, or give up.
    private func dialEnded(_ url: RouteURL, established wasEstablished: Bool, peerID: String? = nil) {
        lock.withLock {
            guard !stopping, var d = dialers[url] else { return }
            d.busy = false
            if selfURLs.contains(url) {
                dialers[url] = nil
                return
            }
            if let p = peerID { d.peerID = p }
            if parkIfPeerUp(&d, url) != nil {
                dialers[url] = d
                return
            }
            d.failures = wasEstablished ? 0 : d.failures + 1
            if !d.configured && d.failures > Self.implicitRetries {
                dialers[url] = nil
                return
            }
            let shift = min(max(d.failures - 1, 0), 5)
            let delay = min(TimeAmount.nanoseconds(Self.initialDelay.nanoseconds << shift), Self.maxDelay)
            d.retry = server.group.next().scheduleTask(in: delay) { [weak self] in self?.dial(url) }
            dialers[url] = d
        }
    }

    // MARK: - route lifecycle (called by RouteChannelHandler)

    /// A new connection, before any byte is sent on it; nil means close it unused: stopping,
    /// or a dial that reached the advertised address of a server whose route is up already.
    func register(channel: Channel, solicitedURL: RouteURL?, configured: Bool) -> RouteConnection? {
        let rid = nextRID.wrappingIncrementThenLoad(ordering: .relaxed)
        let conn = RouteConnection(rid: rid, channel: channel, server: server, solicitedURL: solicitedURL,
                                   isConfigured: configured)
        var parkedFor: String?
        let ok: Bool = lock.withLock {
            if stopping { return false }
            // The peer's route came up while this dial was under way. Closed before our INFO,
            // the peer never counts it a duplicate, so the route in use is not replaced.
            if let url = solicitedURL, var d = dialers[url], let p = parkIfPeerUp(&d, url, reached: channel.remoteAddress) {
                d.busy = false
                dialers[url] = d
                parkedFor = p
                return false
            }
            routes[rid] = conn
            return true
        }
        if let p = parkedFor, let url = solicitedURL, let remote = channel.remoteAddress {
            server.logger.debug("Route to \(p) is up already at \(remote.ipAddress ?? "?"):\(remote.port ?? 0), closing the new connection to \(url)")
        }
        return ok ? conn : nil
    }

    /// Checks the peer's INFO; on accept the route becomes the one for that peer and gets our
    /// interest. (Other servers learn of the peer through the gossip layer, not INFO.)
    func handshake(_ conn: RouteConnection, _ info: RouteInfo) -> Decision {
        if info.serverID == server.serverID {
            if let url = conn.solicitedURL { lock.withLock { _ = selfURLs.insert(url) } }
            server.logger.debug("\(conn.logPrefix) - Detected route to self, ignoring \(conn.solicitedURL?.description ?? "")")
            return .reject(nil)
        }
        var replaced: RouteConnection?
        let decision: Decision = lock.withLock {
            if stopping { return .reject(nil) }
            let mine = configuredName ?? adoptedName
            if let mine, !info.cluster.isEmpty, info.cluster != mine {
                return .reject("Rejecting connection, cluster name \"\(info.cluster)\" does not match \"\(mine)\"")
            }
            if mine == nil, !info.cluster.isEmpty { adoptedName = info.cluster }
            if let existing = established[info.serverID], existing !== conn {
                guard prefer(conn, over: existing, peerID: info.serverID) else {
                    if let url = conn.solicitedURL { dialers[url]?.peerID = info.serverID }
                    return .reject(nil)
                }
                replaced = existing
            }
            established[info.serverID] = conn
            conn.setPeer(info)
            if let url = conn.solicitedURL {
                dialers[url]?.peerID = info.serverID
                dialers[url]?.failures = 0
            }
            conn.append { out in
                for (key, count) in interest {
                    RouteEncoder.writeSubscribe(into: &out, account: key.account, subject: key.subject, queue: key.queue,
                                                weight: count)
                }
            }
            return .accept
        }
        if case let .reject(reason?) = decision {
            server.logger.error("\(conn.logPrefix) - \(reason)")
        } else if case .reject(nil) = decision {
            server.logger.debug("\(conn.logPrefix) - Duplicate route to \(info.serverID), closing")
        }
        if let old = replaced {
            server.logger.debug("\(old.logPrefix) - Replaced by the route solicited by the smaller server id")
            old.close(reason: nil)
            old.teardown()
        }
        if decision == .accept {
            server.logger.info("\(conn.logPrefix) - Route connection created (\(info.serverName))")
            server.clusterTopologyChanged()
            notifyRoute(info.serverID, up: true)
        }
        return decision
    }

    /// Keeps the connection solicited by the smaller server id; on a tie, the existing one.
    private func prefer(_ new: RouteConnection, over existing: RouteConnection, peerID: String) -> Bool {
        let winner = min(server.serverID, peerID)
        func solicitor(_ c: RouteConnection) -> String { c.didSolicit ? server.serverID : peerID }
        return solicitor(new) == winner && solicitor(existing) != winner
    }

    /// The connection is gone: drop its interest, re-arm dialers, tell clients.
    func routeClosed(_ conn: RouteConnection) {
        conn.teardown()
        let peerID = conn.peerInfo?.serverID
        var lostPeer = false
        var rearm: [RouteURL] = []
        lock.withLock {
            routes[conn.rid] = nil
            if let p = peerID, established[p] === conn {
                established[p] = nil
                lostPeer = true
                for (url, d) in dialers where d.parked && d.peerID == p {
                    dialers[url]?.parked = false
                    dialers[url]?.failures = 0
                    rearm.append(url)
                }
            }
        }
        if let url = conn.solicitedURL { dialEnded(url, established: peerID != nil && lostPeer, peerID: peerID) }
        for url in rearm { dial(url) }
        if lostPeer, let p = peerID {
            server.logger.info("\(conn.logPrefix) - Route connection closed")
            server.clusterTopologyChanged()
            notifyRoute(p, up: false)
        }
    }

    /// An INFO on an established route: an update from the peer. INFO about a third server
    /// (nats-server's route gossip) is ignored: membership comes from the gossip layer.
    func received(info: RouteInfo, on conn: RouteConnection) {
        guard info.serverID == conn.peerInfo?.serverID else {
            server.logger.debug("\(conn.logPrefix) - Ignoring INFO about \(info.serverName): membership travels by gossip")
            return
        }
        conn.setPeer(info)
        server.clusterTopologyChanged()
    }

    /// The route INFO sent on `channel`; a wildcard listen address is advertised as the
    /// address the peer reached us on, unless `clusterAdvertise` names another one.
    func infoLine(for channel: Channel) -> String {
        let local = channel.localAddress?.ipAddress ?? "127.0.0.1"
        let o = server.options
        let routeHost = Self.isWildcard(o.clusterHost ?? "0.0.0.0") ? local : (o.clusterHost ?? local)
        let clientHost = Self.isWildcard(o.host) ? local : o.host
        let routeURL = o.clusterAdvertise ?? RouteURL(host: routeHost, port: port)
        let isLeaving = lock.withLock { leaving }
        var info = RouteInfo(serverID: server.serverID, serverName: server.serverName, version: ServerVersion.nats,
                             cluster: clusterName, routeURL: routeURL.description,
                             connectURLs: isLeaving ? [] : ["\(clientHost):\(server.clientPort)"], jetstream: o.jetStream,
                             deliveryStamps: o.routeFeatures.deliveryStamps, dedupTimes: o.routeFeatures.dedupTimes,
                             decidedDedup: o.routeFeatures.decidedDedup, copyConfig: o.routeFeatures.copyConfig,
                             markers: o.routeFeatures.markers, sourced: o.routeFeatures.sourced,
                             mirrored: o.routeFeatures.mirrored, internalFrames: o.routeFeatures.internalFrames)
        if isLeaving { info.lameDuck = true }
        if o.clusterAuth != nil { info.authRequired = true }
        return info.line()
    }

    /// Graceful stop begins: peers get a route INFO with `ldm` and without this node's client
    /// URL (so their clients' `connect_urls` drop it, as nats-server's lame duck does; they hand
    /// it no leadership) and this node stops listing itself. Routes stay up: they still carry
    /// the leaving clients' traffic.
    func announceLeaving() {
        let open: [RouteConnection] = lock.withLock {
            leaving = true
            return Array(established.values)
        }
        for r in open { r.send(infoLine(for: r.channel)) }
    }

    static func isWildcard(_ host: String) -> Bool { host == "0.0.0.0" || host == "::" || host.isEmpty }

    // MARK: - interest (SublistObserver)

    func sublistDidInsert(_ sub: Subscription, account: String) {
        let key = InterestKey(account: account, subject: sub.subject, queue: sub.queue)
        lock.withLock {
            let n = interest[key, default: 0] + 1
            interest[key] = n
            guard n == 1 || key.queue != nil else { return }
            for r in established.values {
                r.append { RouteEncoder.writeSubscribe(into: &$0, account: key.account, subject: key.subject, queue: key.queue, weight: n) }
            }
        }
    }

    func sublistDidRemove(_ sub: Subscription, account: String) {
        let key = InterestKey(account: account, subject: sub.subject, queue: sub.queue)
        lock.withLock {
            guard let n = interest[key] else { return }
            if n <= 1 {
                interest[key] = nil
                for r in established.values {
                    r.append { RouteEncoder.writeUnsubscribe(into: &$0, account: key.account, subject: key.subject, queue: key.queue) }
                }
            } else {
                interest[key] = n - 1
                guard key.queue != nil else { return }
                for r in established.values {
                    r.append {
                        RouteEncoder.writeSubscribe(into: &$0, account: key.account, subject: key.subject, queue: key.queue, weight: n - 1)
                    }
                }
            }
        }
    }

    // MARK: - queries

    /// Client URLs of every node in the mesh (this one first), for INFO `connect_urls`.
    public func clientConnectURLs() -> [String] {
        let o = server.options
        let (isLeaving, peers) = lock.withLock { (leaving, established.values.compactMap { $0.peerInfo?.connectURLs }.flatMap { $0 }) }
        let own = isLeaving ? [] : Self.isWildcard(o.host) ? Self.localAddresses().map { "\($0):\(server.clientPort)" }
            : ["\(o.host):\(server.clientPort)"]
        var seen = Set<String>()
        return (own + peers.sorted()).filter { seen.insert($0).inserted }
    }

    /// Server ids of the peers with an established route.
    public var peerIDs: [String] { lock.withLock { established.keys.sorted() } }

    var routeCount: Int { lock.withLock { established.count } }

    func snapshots(includeSubscriptions: Bool) -> [RouteSnapshot] {
        lock.withLock { Array(established.values) }.map { $0.snapshot(includeSubscriptions: includeSubscriptions) }
            .sorted { $0.rid < $1.rid }
    }

    /// Non-loopback IPv4 addresses, for advertising a wildcard listener (loopback if none).
    static func localAddresses() -> [String] {
        let devices = (try? System.enumerateDevices()) ?? []
        var out: [String] = []
        for d in devices {
            guard let a = d.address, case .v4 = a, let ip = a.ipAddress, !ip.hasPrefix("127.") else { continue }
            if !out.contains(ip) { out.append(ip) }
        }
        return out.isEmpty ? ["127.0.0.1"] : out
    }

    // MARK: - peers

    /// Server names of connected peers whose route INFO announces `feature` (e.g. `\.dedupTimes`).
    public func peers(announcing feature: KeyPath<RouteInfo, Bool>) -> Set<String> {
        lock.withLock { Set(established.values.compactMap { r in r.peerInfo.flatMap { $0[keyPath: feature] ? $0.serverName : nil } }) }
    }

    /// Whether the established route with server id `serverID` announced `feature`.
    public func peer(_ serverID: String, announces feature: KeyPath<RouteInfo, Bool>) -> Bool {
        lock.withLock { established[serverID]?.peerInfo?[keyPath: feature] ?? false }
    }

    /// Server name -> server id of every peer with an established route.
    public func peerServerIDs() -> [String: String] {
        lock.withLock {
            var out: [String: String] = [:]
            for (id, r) in established { if let name = r.peerInfo?.serverName { out[name] = id } }
            return out
        }
    }

    /// The configured seeds and the route peers, read under one lock: a bootstrap decision
    /// must never see every seed up yet miss one of them in the peer list (a route that came
    /// up between two separate reads once made a node bootstrap without a seed).
    public struct SeedSnapshot: Equatable, Sendable {
        /// Distinct seed servers: URLs that led to one server count once, this server counts
        /// when one of its URLs is listed, a URL not answered yet counts as one server.
        public var total: Int
        /// One of the configured URLs led back to this server.
        public var selfIsSeed: Bool
        /// Server ids of the seeds with an established route.
        public var liveSeedIDs: Set<String>
        /// Every configured URL led somewhere: an established peer or this server.
        public var allResolved: Bool
        /// Server name -> server id of every peer with an established route (seeds or not).
        public var peers: [String: String]
    }

    public func seedSnapshot() -> SeedSnapshot {
        lock.withLock {
            var peers: [String: String] = [:]
            for (id, r) in established { if let name = r.peerInfo?.serverName { peers[name] = id } }
            let selfIsSeed = !configuredURLs.isDisjoint(with: selfURLs)
            var seedIDs = Set<String>(), unknown = 0
            for url in configuredURLs where !selfURLs.contains(url) {
                if let p = dialers[url]?.peerID { seedIDs.insert(p) } else { unknown += 1 }
            }
            let live = seedIDs.filter { established[$0] != nil }
            let resolved = dialingStarted && unknown == 0 && live.count == seedIDs.count
            return SeedSnapshot(total: seedIDs.count + unknown + (selfIsSeed ? 1 : 0), selfIsSeed: selfIsSeed,
                                liveSeedIDs: live, allResolved: resolved, peers: peers)
        }
    }

    /// The established route to `serverID`, if any.
    func route(to serverID: String) -> RouteConnection? { lock.withLock { established[serverID] } }
}
