import Foundation
import Gossip
import NIOConcurrencyHelpers
import NIOCore

/// One member as `/routez` and callers see it.
public struct GossipMemberInfo: Equatable, Sendable {
    public var name: String
    public var address: String
    /// The member's boot token, which is its route server id.
    public var serverID: String
    /// `alive`, `suspect`, `dead` or `left`.
    public var status: String
    public var incarnation: UInt64
    /// Round trip of the last direct probe answered, in seconds (nil: none yet, or self).
    public var rtt: Double?
    public var isSelf: Bool
}

/// A change in this node's membership view, as the meta group and other observers see it.
public struct MembershipEvent: Sendable {
    /// Server name, route address and boot token (the route server id).
    public var member: MemberID
    /// nil: newly learned.
    public var previous: MemberStatus?
    public var status: MemberStatus
}

/// The shell around the pure `SWIM` state machine: a real timer, gossip frames over the
/// route connections (`XMSG gossip`), discovery from the route list (IP seeds as they are,
/// host names re-resolved periodically off the event loops), and route dials to every
/// member it learns. All SWIM state lives on one event loop; the member list for monitoring
/// is a copy under a lock.
public final class GossipDriver: @unchecked Sendable {
    public static let namespace = "gossip"

    unowned let server: NATSServer
    let routes: RouteManager
    let loop: EventLoop
    let config: GossipConfig

    // Loop-confined.
    private var swim: SWIM?
    private var timer: RepeatedTask?
    private var dnsTimer: RepeatedTask?
    private var discovery: GossipDiscovery
    private var pings: [UInt64: (target: MemberID, sent: NIODeadline)] = [:]
    private var rtts: [MemberID: Double] = [:]
    private var resolving = false
    private var ticks = 0

    // Under `lock`.
    private let lock = NIOLock()
    private var snapshot: [GossipMemberInfo] = []
    private var observers: [(MembershipEvent) -> Void] = []

    init(server: NATSServer, routes: RouteManager) {
        self.server = server
        self.routes = routes
        self.loop = server.group.next()
        var c = GossipConfig()
        let o = server.options
        // Whole periods and timeouts stay in seconds whatever the tick (tests use short ticks).
        c.periodTicks = max(2, Int((o.gossipPeriodSeconds / o.gossipTickSeconds).rounded()))
        c.pingTimeoutTicks = min(c.periodTicks - 1, max(1, c.periodTicks * 3 / 10))
        self.config = c
        self.discovery = GossipDiscovery(routes: o.routes)
    }

    /// This node's identity: server name, advertised route address, server id as boot token.
    var myself: MemberID {
        let o = server.options
        if let adv = o.clusterAdvertise {
            return MemberID(name: server.serverName, address: GossipDiscovery.address(adv.host, adv.port), token: server.serverID)
        }
        let host = RouteManager.isWildcard(o.clusterHost ?? "0.0.0.0") ? RouteManager.localAddresses()[0] : (o.clusterHost ?? "127.0.0.1")
        return MemberID(name: server.serverName, address: GossipDiscovery.address(host, routes.port), token: server.serverID)
    }

    // MARK: - lifecycle

    /// Starts the protocol (after the route listener is bound, so the address is known).
    func start() {
        var rng = SystemRandomNumberGenerator()
        let me = myself
        let swimSeed = rng.next() as UInt64
        let tick = TimeAmount.nanoseconds(Int64(server.options.gossipTickSeconds * 1e9))
        let dnsEvery = TimeAmount.nanoseconds(Int64(max(0.05, server.options.dnsRefreshSeconds) * 1e9))
        // The protocol state first: frames and route events queued on the loop after this
        // task find it (before, a route that came up in between was ignored).
        loop.execute {
            self.swim = SWIM(myself: me, config: self.config, seed: swimSeed)
            self.publishSnapshot()
            self.server.logger.info("Gossip: member \(me) (period \(self.server.options.gossipPeriodSeconds)s)")
            self.perform(self.swim!.setSeeds(self.discovery.seeds))
            self.timer = self.loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in self?.onTick() }
            self.dnsTimer = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: dnsEvery) { [weak self] _ in self?.resolveNames() }
        }
        routes.registerExtension(Self.namespace) { [weak self] from, payload in
            guard let self else { return }
            let bytes = Array(payload.readableBytesView)
            self.loop.execute { self.received(bytes, from: from) }
        }
        routes.observeRoutes { [weak self] serverID, up in
            guard let self, up else { return }
            self.loop.execute { self.routeUp(serverID) }
        }
        // The route manager dials before this starts: routes already up were not observed, and
        // their first gossip frames found no handler. Join over them now (a join is idempotent),
        // or neither side ever learns of the other (a node missing from every view for good).
        for serverID in routes.peerIDs { loop.execute { self.routeUp(serverID) } }
    }

    /// Stops the timers; `graceful` first tells the live members this node leaves (call it
    /// before the routes close). Not graceful is what a crash looks like to the others.
    func stop(graceful: Bool = true) {
        let done = loop.submit {
            self.timer?.cancel()
            self.dnsTimer?.cancel()
            self.timer = nil
            self.dnsTimer = nil
            guard var s = self.swim else { return }
            self.swim = nil
            guard graceful else { return }
            let out = s.leave()
            self.perform(out)
            self.swim = s
            self.publishSnapshot()
        }
        _ = try? done.wait()
    }

    /// A SIGHUP changed the route list: new seeds and DNS names apply at once.
    func setRoutes(_ texts: [String]) {
        loop.execute {
            let old = self.discovery
            self.discovery = GossipDiscovery(routes: texts)
            guard self.swim != nil else { return }
            for gone in old.names where !self.discovery.names.contains(gone) {
                self.swim!.forgetDNSName(GossipDiscovery.address(gone.host, gone.port))
            }
            self.perform(self.swim!.setSeeds(self.discovery.seeds))
            self.resolveNames()
        }
    }

    // MARK: - observers and views

    /// Registers `observer` for every change of this node's view (called on the gossip
    /// event loop, in order; keep it short). Changes already made are not replayed: read
    /// `members` after registering.
    public func onMembershipChange(_ observer: @escaping (MembershipEvent) -> Void) {
        lock.withLock { observers.append(observer) }
    }

    /// Every member this node knows, itself included, sorted by name.
    public var members: [GossipMemberInfo] { lock.withLock { snapshot } }

    /// `/metrics` text: members by state, and each peer's last probe round trip.
    public func prometheusText() -> String {
        let list = members
        func esc(_ v: String) -> String {
            v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
        var out = "# HELP clusterd_gossip_members Members in this node's gossip view, by state.\n"
            + "# TYPE clusterd_gossip_members gauge\n"
        for state in ["alive", "suspect", "dead", "left"] {
            out += "clusterd_gossip_members{state=\"\(state)\"} \(list.filter { $0.status == state }.count)\n"
        }
        out += "# HELP clusterd_gossip_rtt_seconds Round trip of the last answered direct probe of a member.\n"
            + "# TYPE clusterd_gossip_rtt_seconds gauge\n"
        for m in list where !m.isSelf {
            guard let rtt = m.rtt, m.status == "alive" || m.status == "suspect" else { continue }
            out += "clusterd_gossip_rtt_seconds{name=\"\(esc(m.name))\",server_id=\"\(esc(m.serverID))\"} \(rtt)\n"
        }
        return out
    }

    // MARK: - inputs (gossip loop)

    private func onTick() {
        guard swim != nil else { return }
        let horizon = NIODeadline.now() - .seconds(10)
        if pings.count > 64 { pings = pings.filter { $0.value.sent > horizon } }
        perform(swim!.tick())
        ticks += 1
        if ticks % (config.periodTicks * config.rejoinPeriods) == 0 { repairMesh() }
    }

    /// A live member without a route (its dialer gave up while the network was bad, and
    /// indirect probes kept it alive) gets a fresh dial: the mesh heals, not just the view.
    private func repairMesh() {
        guard let s = swim else { return }
        let connected = Set(routes.peerIDs)
        for m in s.liveMembers where !connected.contains(m.token) {
            if let url = RouteURL(m.address), url.port > 0 { routes.connect(url) }
        }
    }

    private func routeUp(_ serverID: String) {
        guard let s = swim else { return }
        send(s.joinMessage(), to: serverID)
    }

    private func received(_ bytes: [UInt8], from serverID: String) {
        guard swim != nil else { return }
        let m: GossipMessage
        do {
            m = try GossipCodec.decode(bytes)
        } catch {
            server.logger.warning("Gossip: dropping a bad frame from route \(serverID): \(error)")
            return
        }
        // A frame speaks for the server at the other end of the route, nobody else.
        guard m.from.token == serverID else {
            server.logger.warning("Gossip: dropping a frame from route \(serverID) claiming to be \(m.from)")
            return
        }
        if case let .ack(seq) = m.kind, let p = pings[seq], p.target == m.from {
            pings[seq] = nil
            rtts[m.from] = Double((NIODeadline.now() - p.sent).nanoseconds) / 1e9
        }
        perform(swim!.receive(m))
        if case .ack = m.kind { publishSnapshot() }
    }

    private func resolveNames() {
        let names = discovery.names
        guard !names.isEmpty, !resolving else { return }
        resolving = true
        // Test seam (CLUSTERD_HOSTS_FILE, see HostsFile): listed names answer without DNS.
        let overrides = server.options.routeHostOverrides
        DispatchQueue.global().async {
            let answers = names.map { url in
                (url, overrides[url.host.lowercased()].map { [$0] } ?? GossipDiscovery.resolve(url.host))
            }
            self.loop.execute {
                self.resolving = false
                guard self.swim != nil else { return }
                for (url, ips) in answers where self.discovery.names.contains(url) {
                    let addresses = ips.map { GossipDiscovery.address($0, url.port) }
                    self.perform(self.swim!.dnsAnswer(name: GossipDiscovery.address(url.host, url.port), addresses: addresses))
                }
            }
        }
    }

    // MARK: - outputs (gossip loop)

    private func perform(_ directives: [GossipDirective]) {
        var changes: [MemberChange] = []
        for d in directives {
            switch d {
            case let .send(m, to):
                if case let .ping(seq) = m.kind { pings[seq] = (to, .now()) }
                send(m, to: to.token)
            case let .connect(address):
                guard let url = RouteURL(address), url.port > 0, address != swim?.myself.address else { continue }
                routes.connect(url)
            case let .changed(c):
                changes.append(c)
            }
        }
        guard !changes.isEmpty else { return }
        for c in changes { log(c) }
        publishSnapshot()
        let obs = lock.withLock { observers }
        for c in changes {
            let e = MembershipEvent(member: c.member, previous: c.previous, status: c.status)
            for o in obs { o(e) }
        }
    }

    private func send(_ m: GossipMessage, to serverID: String) {
        let bytes = GossipCodec.encode(m)
        var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
        buf.writeBytes(bytes)
        routes.sendExtension(Self.namespace, payload: buf, to: serverID)
    }

    private func log(_ c: MemberChange) {
        let who = "\(c.member.name) (\(c.member.address), \(c.member.token))"
        switch (c.previous, c.status) {
        case (nil, let s) where s.isLive: server.logger.info("Gossip: discovered member \(who)")
        case (nil, _): server.logger.debug("Gossip: learned \(who) is \(c.status)")
        case (_, .suspect): server.logger.warning("Gossip: member \(who) is suspect")
        case (_, .dead): server.logger.warning("Gossip: member \(who) is dead")
        case (_, .left): server.logger.info("Gossip: member \(who) left")
        case (_, .alive): server.logger.info("Gossip: member \(who) is alive (\(c.status))")
        }
    }

    private func publishSnapshot() {
        guard let s = swim else { return }
        let view = s.view
        // RTTs of forgotten members (tombstones expire) go too: no growth with restarts.
        if rtts.count > view.count { rtts = rtts.filter { view[$0.key] != nil } }
        let list = view.map { id, status -> GossipMemberInfo in
            let text: String
            switch status {
            case .alive: text = "alive"
            case .suspect: text = "suspect"
            case .dead: text = "dead"
            case .left: text = "left"
            }
            return GossipMemberInfo(name: id.name, address: id.address, serverID: id.token, status: text,
                                    incarnation: status.incarnation.rawValue, rtt: rtts[id], isSelf: id == s.myself)
        }.sorted { ($0.name, $0.serverID) < ($1.name, $1.serverID) }
        lock.withLock { snapshot = list }
    }
}
