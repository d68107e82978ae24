import Atomics
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One route connection to another node: the sink for remote interest (its subscriptions
/// sit in the server's `Sublist`, owned by this route) and the outbound side of the route
/// protocol.
///
/// Threading: ops are decoded on the channel's event loop (`RouteChannelHandler`). Publishers
/// on any thread append to `outbound` under `lock`; the first append after a flush schedules
/// one flush on the route's loop (as `ClientConnection` does), or adds the route to the
/// publisher's `FlushBatch` so that a batch of messages leaves in one write.
final class RouteConnection: MessageSink, DeferredFlushing, @unchecked Sendable {
    /// Route ids share nothing with client ids: route-owned subscriptions get `ownerID`
    /// `routeOwnerBase | rid`, never equal to a client's id (echo checks, own-sub lookups).
    static let routeOwnerBase: UInt64 = 1 << 62

    let rid: UInt64
    let channel: Channel
    let eventLoop: EventLoop
    unowned let server: NATSServer
    /// The URL this node dialed, or nil for an accepted connection.
    let solicitedURL: RouteURL?
    var didSolicit: Bool { solicitedURL != nil }
    /// True when dialed from the configured `routes` (not learned by gossip).
    let isConfigured: Bool
    let remoteHost: String
    let remotePort: Int
    let startedAt = Date()
    private let maxPending: Int

    private let lock = NIOLock()
    private var outbound: ByteBuffer
    private var flushScheduled = false
    private var closed = false
    private var peer: RouteInfo?
    private var remoteSubs: [InterestKey: Subscription] = [:]
    private var outMsgs = 0
    private var outBytes = 0
    private var lastActivity = Date()
    let inMsgs = ManagedAtomic<Int>(0)
    let inBytes = ManagedAtomic<Int>(0)

    // Own event loop only.
    var matchCache = MatchCache()
    var rng: SplitMix64
    var pingsOutstanding = 0
    var receivedSinceLastPing = false

    init(rid: UInt64, channel: Channel, server: NATSServer, solicitedURL: RouteURL?, isConfigured: Bool) {
        self.rid = rid
        self.isConfigured = isConfigured
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.server = server
        self.solicitedURL = solicitedURL
        self.maxPending = server.options.maxPending
        self.outbound = channel.allocator.buffer(capacity: 4096)
        self.rng = SplitMix64(seed: rid &* 0x9E37_79B9_7F4A_7C15 ^ 0x5DEE_CE66)
        let remote = channel.remoteAddress
        self.remoteHost = remote?.ipAddress ?? "unknown"
        self.remotePort = remote?.port ?? 0
    }

    var ownerID: UInt64 { Self.routeOwnerBase | rid }

    /// `host:port - rid:N` as nats-server prefixes its route log lines.
    var logPrefix: String { "\(remoteHost):\(remotePort) - rid:\(rid)" }

    /// The peer's INFO once the handshake accepted it.
    var peerInfo: RouteInfo? { lock.withLock { peer } }

    func setPeer(_ info: RouteInfo) { lock.withLock { peer = info } }

    var isClosed: Bool { lock.withLock { closed } }

    // MARK: - outbound (any thread)

    /// Sends one message across this route, naming the queue groups it was picked for.
    func forward(_ message: RoutedMessage, queues: [String]) -> Bool {
        append(flushBatch: message.flushBatch) { out in
            if let target = message.routeSubject, let stamp = message.stamp, self.peer?.deliveryStamps == true {
                RouteEncoder.writeExtension(into: &out, namespace: StampedDeliverFrame.namespace,
                                            payload: StampedDeliverFrame.encode(message, stamp: stamp, target: target,
                                                                                queues: queues))
            } else if let target = message.routeSubject {
                RouteEncoder.writeExtension(into: &out, namespace: DeliverAsFrame.namespace(of: message),
                                            payload: DeliverAsFrame.encode(message, target: target, queues: queues))
            } else {
                RouteEncoder.writeMessage(into: &out, message, queues: queues)
            }
            self.outMsgs += 1
            self.outBytes += message.payload.readableBytes + (message.headers?.readableBytes ?? 0)
        }
    }

    /// A route subscription handed a message directly (not via `Fanout`) forwards it.
    func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool {
        if message.fromRoute { return false }
        return forward(message, queues: subscription.queue.map { [$0] } ?? [])
    }

    func send(_ text: String) {
        _ = append { $0.writeString(text) }
    }

    /// Appends under the lock and schedules a flush (with `flushBatch`: when that batch runs,
    /// so a batch of messages takes one write); false when the route is closed.
    @discardableResult
    func append(flushBatch: FlushBatch? = nil, _ write: (inout ByteBuffer) -> Void) -> Bool {
        var schedule = false
        var tooSlow = false
        let ok: Bool = lock.withLock {
            if closed { return false }
            write(&outbound)
            if outbound.readableBytes > maxPending { tooSlow = true }
            if !flushScheduled {
                flushScheduled = true
                schedule = true
            }
            return true
        }
        if tooSlow {
            eventLoop.execute { self.close(reason: "Slow Consumer Detected: MaxPending of \(self.maxPending) Exceeded") }
        } else if schedule {
            if let flushBatch {
                flushBatch.add(self)
            } else {
                eventLoop.execute { self.flushOutbound() }
            }
        }
        return ok
    }

    func flushOutbound() {
        eventLoop.assertInEventLoop()
        var toWrite: ByteBuffer?
        lock.withLock {
            flushScheduled = false
            guard !closed, outbound.readableBytes > 0, channel.isWritable else { return }
            toWrite = outbound
            outbound = channel.allocator.buffer(capacity: min(max(4096, outbound.readableBytes), 1 << 20))
        }
        if let buffer = toWrite { channel.writeAndFlush(buffer, promise: nil) }
    }

    /// Flushes what is queued, then closes. Idempotent; the rest happens in channelInactive.
    func close(reason: String?, error: String? = nil) {
        var buffer: ByteBuffer?
        let first: Bool = lock.withLock {
            if closed { return false }
            closed = true
            if let error { MessageEncoder.writeError(into: &outbound, error) }
            buffer = outbound
            outbound = channel.allocator.buffer(capacity: 0)
            return true
        }
        guard first else { return }
        if let reason { server.logger.notice("\(logPrefix) - Closing route: \(reason)") }
        let ch = channel
        if let b = buffer, b.readableBytes > 0 {
            ch.writeAndFlush(b).whenComplete { _ in ch.close(promise: nil) }
        } else {
            ch.close(promise: nil)
        }
    }

    // MARK: - remote interest (own loop)

    /// RS+: inserts the remote interest, or replaces it when a queue weight changed.
    /// Own loop only (as are RS- and teardown), so `remoteSubs` changes in op order.
    func addRemoteInterest(in account: Account, subject: String, queue: String?, weight: Int) {
        let key = InterestKey(account: account.name, subject: subject, queue: queue)
        let (previous, isClosed) = lock.withLock { (remoteSubs[key], closed) }
        if isClosed { return }
        if let previous, previous.weight == weight { return }
        let sub = Subscription(subject: subject, queue: queue, sid: "rid:\(rid)", sink: self, ownerID: ownerID,
                               weight: weight)
        lock.withLock { remoteSubs[key] = sub }
        // Insert before removing the old entry: the queue group never lacks this node.
        account.sublist.insert(sub)
        if let previous { account.sublist.remove(previous) }
        // A replaced route is closed and torn down from another loop: don't leave this behind.
        if lock.withLock({ closed && remoteSubs[key] === sub }) {
            lock.withLock { remoteSubs[key] = nil }
            account.sublist.remove(sub)
        }
    }

    /// RS-: removes the remote interest (unknown interest is ignored).
    func removeRemoteInterest(in account: Account, subject: String, queue: String?) {
        let key = InterestKey(account: account.name, subject: subject, queue: queue)
        if let sub = lock.withLock({ remoteSubs.removeValue(forKey: key) }) { account.sublist.remove(sub) }
    }

    /// Drops all remote interest; called once the connection is gone.
    func teardown() {
        let subs: [(String, Subscription)] = lock.withLock {
            closed = true
            let all = remoteSubs.map { ($0.key.account, $0.value) }
            remoteSubs.removeAll()
            return all
        }
        for (account, sub) in subs { server.account(named: account)?.sublist.remove(sub) }
    }

    func noteActivity() { lock.withLock { lastActivity = Date() } }

    // MARK: - monitoring

    func snapshot(includeSubscriptions: Bool) -> RouteSnapshot {
        lock.withLock {
            RouteSnapshot(rid: rid, remoteID: peer?.serverID ?? "", remoteName: peer?.serverName ?? "",
                          didSolicit: didSolicit, isConfigured: isConfigured, ip: remoteHost, port: remotePort,
                          start: startedAt, lastActivity: lastActivity, pendingBytes: outbound.readableBytes,
                          inMsgs: inMsgs.load(ordering: .relaxed), outMsgs: outMsgs,
                          inBytes: inBytes.load(ordering: .relaxed), outBytes: outBytes,
                          subscriptionCount: remoteSubs.count,
                          subjects: includeSubscriptions ? remoteSubs.keys.map(\.description).sorted() : nil)
        }
    }
}

/// An account's subject plus optional queue group: the unit of interest announced over routes.
struct InterestKey: Hashable, CustomStringConvertible {
    var account: String = globalAccountName
    var subject: String
    var queue: String?
    /// `subject [queue]`, prefixed with the account unless it is the global one.
    var description: String {
        let s = queue.map { "\(subject) \($0)" } ?? subject
        return account == globalAccountName ? s : "\(account) \(s)"
    }
}

/// What `/routez` reports of one route.
struct RouteSnapshot {
    var rid: UInt64
    var remoteID: String
    var remoteName: String
    var didSolicit: Bool
    var isConfigured: Bool
    var ip: String
    var port: Int
    var start: Date
    var lastActivity: Date
    var pendingBytes: Int
    var inMsgs: Int
    var outMsgs: Int
    var inBytes: Int
    var outBytes: Int
    var subscriptionCount: Int
    var subjects: [String]?
}
