import Atomics
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One client connection's server-side state.
///
/// Threading: protocol handling runs on the channel's event loop. Publishers on any thread
/// deliver into `outbound` under `lock`; the first delivery after a flush schedules one flush
/// task on the connection's loop, so a burst costs one hop, not one per message.
final class ClientConnection: MessageSink, DeferredFlushing, @unchecked Sendable {
    let id: UInt64
    let channel: Channel
    let eventLoop: EventLoop
    unowned let server: NATSServer
    let remoteHost: String
    let remotePort: Int
    let startedAt = Date()
    private let maxPending: Int

    // Guarded by `lock`.
    private let lock = NIOLock()
    private var outbound: ByteBuffer
    private var flushScheduled = false
    private var closed = false
    private var slowConsumer = false
    private var supportsHeaders = false
    private var subscriptions: [String: Subscription] = [:]
    private var outMsgs = 0
    private var outBytes = 0
    private var clientName = ""
    private var clientLang = ""
    private var clientVersion = ""
    private var lastActivity = Date()
    /// `allow_responses`: reply subjects received, with when and how often answered.
    private var responsePermission: ResponsePermission?
    private var replies: [String: (receivedAt: UInt64, sent: Int)] = [:]
    /// Copies of the identity for monitoring threads.
    private var accountName = globalAccountName
    private var monitoredUser: String?
    /// nats-server's `replyPermLimit`: past it, expired entries are pruned.
    private static let replyLimit = 4096
    /// Set once the server stops gracefully: the requests in flight and whether the client was
    /// told to leave (see `Departure`).
    private var departure: Departure?
    /// Why the server closed this connection (nats-server's words, `CloseReason`); nil: the
    /// client did. The first one noted wins.
    private var closeReason: String?
    /// The notice a leaving client gets: the one `-ERR` nats.go and nats.py answer by
    /// reconnecting at once (to another server, keeping subscriptions and buffering publishes)
    /// instead of treating it as fatal.
    static let leaveNotice = "Stale Connection"

    // Own event loop only.
    /// The account this client belongs to (set once, at CONNECT).
    var account: Account
    var userName: String?
    var permissions: Permissions?
    /// Static publish decisions per subject, bounded (nats-server keeps a similar cache).
    var publishDecisions: [String: Bool] = [:]
    /// Counted against the account's `max_connections`.
    var accountAdmitted = false
    var connectReceived = false
    var options = ConnectOptions()
    var pingsOutstanding = 0
    var receivedSinceLastPing = false
    var unwritableSince: NIODeadline?
    var matchCache = MatchCache()
    var rng: SplitMix64
    let inMsgs = ManagedAtomic<Int>(0)
    let inBytes = ManagedAtomic<Int>(0)
    /// `departure` is set (read without the lock on the publish path).
    let departing = ManagedAtomic<Bool>(false)

    init(id: UInt64, channel: Channel, server: NATSServer) {
        self.id = id
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.server = server
        self.maxPending = server.options.maxPending
        self.outbound = channel.allocator.buffer(capacity: 4096)
        self.rng = SplitMix64(seed: id &* 0x2545_F491_4F6C_DD1D)
        self.account = server.globalAccount
        let remote = channel.remoteAddress
        self.remoteHost = remote?.ipAddress ?? "unknown"
        self.remotePort = remote?.port ?? 0
    }

    /// `host:port - cid:N` as nats-server prefixes its client log lines.
    var logPrefix: String { "\(remoteHost):\(remotePort) - cid:\(id)" }

    // MARK: - delivery (any thread)

    func deliver(_ message: RoutedMessage, to sub: Subscription) -> Bool {
        var reachedMax = false
        var schedule = false
        let accepted: Bool = lock.withLock {
            if closed || slowConsumer { return false }
            if sub.maxMessages > 0 && sub.delivered >= sub.maxMessages { return false }
            if let filter = sub.receiveFilter, !filter.canReceive(message.subject) { return false }
            if responsePermission != nil, let reply = message.reply { trackReply(reply) }
            sub.delivered += 1
            if sub.maxMessages > 0 && sub.delivered >= sub.maxMessages {
                reachedMax = true
                if subscriptions[sub.sid] === sub { subscriptions[sub.sid] = nil }
            }
            MessageEncoder.writeMessage(into: &outbound, subject: message.subject, sid: sub.sid,
                                        reply: message.reply, headers: message.headers,
                                        payload: message.payload, receiverSupportsHeaders: supportsHeaders)
            outMsgs += 1
            outBytes += message.payload.readableBytes + (supportsHeaders ? (message.headers?.readableBytes ?? 0) : 0)
            // The last awaited reply of a leaving client carries the leave notice in the same
            // write: the client reads both before it can send anything more here.
            if departure?.delivered(subject: message.subject) == true {
                MessageEncoder.writeError(into: &outbound, Self.leaveNotice)
            }
            if outbound.readableBytes > maxPending { slowConsumer = true }
            if !flushScheduled {
                flushScheduled = true
                schedule = true
            }
            return true
        }
        if reachedMax { account.sublist.remove(sub) }
        if schedule {
            if let batch = message.flushBatch {
                batch.add(self)
            } else {
                eventLoop.execute { self.flushOutbound() }
            }
        }
        return accepted
    }

    /// Queues protocol bytes (PONG, +OK, -ERR, INFO) in order with messages. These count
    /// against `max_pending` too: a client that floods PINGs and never reads the PONGs is a
    /// slow consumer, not a way to grow the server's memory.
    func send(_ text: String) {
        var schedule = false
        lock.withLock {
            if closed || slowConsumer { return }
            outbound.writeString(text)
            if outbound.readableBytes > maxPending { slowConsumer = true }
            if !flushScheduled {
                flushScheduled = true
                schedule = true
            }
        }
        if schedule { eventLoop.execute { self.flushOutbound() } }
    }

    /// Writes what is queued, if the socket can take it. On the connection's loop.
    func flushOutbound() {
        eventLoop.assertInEventLoop()
        var toWrite: ByteBuffer?
        var slow = false
        lock.withLock {
            flushScheduled = false
            if slowConsumer {
                slow = true
                return
            }
            guard !closed, outbound.readableBytes > 0, channel.isWritable else { return }
            toWrite = outbound
            outbound = channel.allocator.buffer(capacity: min(max(4096, outbound.readableBytes), 1 << 20))
        }
        if slow {
            closeAsSlowConsumer()
            return
        }
        if let buffer = toWrite { channel.writeAndFlush(buffer, promise: nil) }
    }

    func closeAsSlowConsumer() {
        let first: Bool = lock.withLock {
            if closed { return false }
            closed = true
            return true
        }
        guard first else { return }
        noteClose(CloseReason.slowConsumer)
        server.stats.slowConsumers.wrappingIncrement(ordering: .relaxed)
        server.logger.notice("\(logPrefix) - Slow Consumer Detected: MaxPending of \(maxPending) Exceeded")
        channel.close(promise: nil)
    }

    /// Sends `-ERR '<text>'`, flushes everything queued before it, then closes.
    func sendErrorAndClose(_ text: String) {
        eventLoop.assertInEventLoop()
        noteClose(CloseReason.forError(text))
        var buffer: ByteBuffer?
        lock.withLock {
            if closed { return }
            MessageEncoder.writeError(into: &outbound, text)
            buffer = outbound
            outbound = self.channel.allocator.buffer(capacity: 0)
            closed = true
        }
        guard let b = buffer else { return }
        let ch = self.channel
        ch.writeAndFlush(b).whenComplete { _ in ch.close(promise: nil) }
    }

    /// Notes why the server is closing this connection (the first reason stays).
    func noteClose(_ reason: String) {
        lock.withLock { if closeReason == nil { closeReason = reason } }
    }

    /// Why it was closed, for the disconnect event: the server's shutdown, a reason noted,
    /// else the client closed it.
    var closedReason: String {
        if departing.load(ordering: .relaxed) { return CloseReason.serverShutdown }
        return lock.withLock { closeReason } ?? CloseReason.clientClosed
    }

    // MARK: - graceful departure (server shutdown)

    /// Starts counting this client's requests in flight (the server is stopping).
    func beginDeparture() {
        lock.withLock { if departure == nil { departure = Departure() } }
        departing.store(true, ordering: .relaxed)
    }

    /// A request forwarded for this client, whose reply will come to `reply` (own loop).
    func noteRequest(reply: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.withLock { departure?.requestSent(reply: reply, now: now) }
    }

    /// A request `noteRequest` counted reached no one: no reply will come (own loop).
    func noteRequestDropped(reply: String) {
        let tell: Bool = lock.withLock { departure?.requestDropped(reply: reply) == true }
        if tell { queueLeaveNotice() }
    }

    /// Asks the client to leave: told at once when no request is in flight and none was sent
    /// just before, else right after its next awaited reply (or by a later call once it was
    /// quiet). `force` tells it now regardless (the deadline passed).
    func requestLeave(force: Bool = false) {
        let now = DispatchTime.now().uptimeNanoseconds
        let tell: Bool = lock.withLock {
            if departure == nil { departure = Departure() }
            return force ? departure!.forceLeave() : departure!.requestLeave(now: now)
        }
        departing.store(true, ordering: .relaxed)
        if tell { queueLeaveNotice() }
    }

    /// Whether the client was told to leave.
    var toldToLeave: Bool { lock.withLock { departure?.told ?? false } }

    private func queueLeaveNotice() {
        var schedule = false
        lock.withLock {
            if closed || slowConsumer { return }
            MessageEncoder.writeError(into: &outbound, Self.leaveNotice)
            if !flushScheduled {
                flushScheduled = true
                schedule = true
            }
        }
        if schedule { eventLoop.execute { self.flushOutbound() } }
    }

    // MARK: - subscriptions (own loop)

    func setConnectOptions(_ opts: ConnectOptions) {
        options = opts
        lock.withLock {
            supportsHeaders = opts.headers
            clientName = opts.name ?? ""
            clientLang = opts.lang ?? ""
            clientVersion = opts.version ?? ""
        }
    }

    /// Adds a subscription; returns nil when the sid is already in use (ignored, as nats does).
    func addSubscription(subject: String, queue: String?, sid: String, filter: Permissions? = nil) -> Subscription? {
        let sub = Subscription(subject: subject, queue: queue, sid: sid, sink: self, ownerID: id)
        sub.receiveFilter = filter
        let added: Bool = lock.withLock {
            if closed || subscriptions[sid] != nil { return false }
            subscriptions[sid] = sub
            return true
        }
        guard added else { return nil }
        account.sublist.insert(sub)
        return sub
    }

    var subscriptionCount: Int { lock.withLock { subscriptions.count } }

    /// Logs the client in: its account and permissions (own loop, before any subscription).
    func authenticated(as outcome: AuthOutcome) {
        // Publishers on other threads read `account` (auto-unsubscribe): only ever change it
        // before the first subscription, which is when CONNECT is required to come first.
        if outcome.account !== account {
            account = outcome.account
            matchCache = MatchCache()
        }
        userName = outcome.user
        permissions = outcome.permissions
        publishDecisions.removeAll()
        lock.withLock {
            responsePermission = outcome.permissions?.response
            accountName = outcome.account.name
            monitoredUser = outcome.user
        }
    }

    /// Whether this client may publish to `subject`: its static permissions, else a reply it
    /// is allowed to answer (`allow_responses`), counting the answer.
    func mayPublish(_ subject: String) -> Bool {
        guard let perms = permissions, perms.restrictsPublish else { return true }
        if let cached = publishDecisions[subject], cached { return true }
        let allowed = publishDecisions[subject] ?? perms.canPublish(subject)
        if publishDecisions[subject] == nil {
            if publishDecisions.count >= 1024 { publishDecisions.removeAll(keepingCapacity: true) }
            publishDecisions[subject] = allowed
        }
        if allowed { return true }
        return lock.withLock { answerReply(subject) }
    }

    /// Lock held. Records a reply subject this client may answer.
    private func trackReply(_ reply: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        replies[reply] = (now, 0)
        if replies.count > Self.replyLimit, let perm = responsePermission {
            let ttl = UInt64(perm.expiresSeconds * 1e9)
            replies = replies.filter { now &- $0.value.receivedAt < ttl }
            if replies.count > Self.replyLimit { replies.removeAll() }
        }
    }

    /// Lock held. Uses up one allowed answer to `subject`, if there is one.
    private func answerReply(_ subject: String) -> Bool {
        guard let perm = responsePermission, let entry = replies[subject] else { return false }
        let now = DispatchTime.now().uptimeNanoseconds
        let sent = entry.sent + 1
        if now &- entry.receivedAt > UInt64(perm.expiresSeconds * 1e9) || sent > perm.maxMessages {
            replies[subject] = nil
            return false
        }
        if sent >= perm.maxMessages { replies[subject] = nil } else { replies[subject] = (entry.receivedAt, sent) }
        return true
    }

    /// UNSUB: removes now, or once `max` messages in total were delivered.
    func unsubscribe(sid: String, max: Int?) {
        let toRemove: Subscription? = lock.withLock {
            guard let sub = subscriptions[sid] else { return nil }
            if let max, max > 0, max > sub.delivered {
                sub.maxMessages = max
                return nil
            }
            subscriptions[sid] = nil
            return sub
        }
        if let sub = toRemove { account.sublist.remove(sub) }
    }

    /// The connection's own subscription for `subject`, for no-responders replies.
    func ownSubscription(matching subject: String) -> Subscription? {
        let result = matchCache.result(for: subject, in: account.sublist)
        return result.plain.first { $0.ownerID == id } ?? result.queues.lazy.flatMap { $0 }.first { $0.ownerID == id }
    }

    /// Marks the connection closed and drops its subscriptions. Idempotent.
    func teardown() {
        let subs: [Subscription] = lock.withLock {
            closed = true
            let all = Array(subscriptions.values)
            subscriptions.removeAll()
            return all
        }
        for sub in subs { account.sublist.remove(sub) }
    }

    func noteActivity() {
        lock.withLock { lastActivity = Date() }
    }

    var isClosed: Bool { lock.withLock { closed } }

    // MARK: - monitoring (any thread)

    func snapshot(includeSubscriptions: Bool) -> ConnectionSnapshot {
        lock.withLock {
            ConnectionSnapshot(
                cid: id, ip: remoteHost, port: remotePort, start: startedAt, lastActivity: lastActivity,
                pendingBytes: outbound.readableBytes, inMsgs: inMsgs.load(ordering: .relaxed),
                outMsgs: outMsgs, inBytes: inBytes.load(ordering: .relaxed), outBytes: outBytes,
                subscriptionCount: subscriptions.count, name: clientName, lang: clientLang,
                version: clientVersion, account: accountName, user: monitoredUser,
                subjects: includeSubscriptions ? subscriptions.values.map(\.subject).sorted() : nil)
        }
    }
}

/// What `/connz` reports of one connection.
struct ConnectionSnapshot {
    var cid: UInt64
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
    var name: String
    var lang: String
    var version: String
    var account: String
    var user: String?
    var subjects: [String]?
}
