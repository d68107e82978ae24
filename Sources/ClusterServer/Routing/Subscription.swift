import NIOCore

/// Something that receives routed messages: a client connection, or an internal server
/// component (JetStream API, stream ingest, ...).
public protocol MessageSink: AnyObject {
    /// Delivers one message for `subscription`. Called on the publisher's thread; a sink that
    /// is not thread-safe by itself must hop. Returns false when the sink refused the message
    /// (closed, or the subscription reached its max).
    func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool
}

/// A message on its way from a publisher to subscribers. Buffers are slices of the
/// publisher's read buffer: sinks copy what they keep.
public struct RoutedMessage {
    public var subject: String
    public var reply: String?
    /// The NATS header block (`NATS/1.0...\r\n\r\n`) or nil.
    public var headers: ByteBuffer?
    public var payload: ByteBuffer
    /// True when the message arrived over a route: it is delivered to local subscriptions
    /// only and never forwarded to another route (one hop across the mesh).
    public var fromRoute: Bool
    /// Set while a client's read batch is being processed: receivers that need a flush join
    /// the batch instead of waking their event loop once per message.
    var flushBatch: FlushBatch?
    /// Set when the message is delivered to the subscriptions of another subject (a JetStream
    /// delivery to an inbox): a route carries both (`DeliverAsFrame`).
    var routeSubject: String?
    /// The account the message travels in when it is not the global one (named in RMSG).
    var account: String?
    /// A JetStream consumer delivery's sender (stream group and leader term): crosses routes
    /// as `StampedDeliverFrame`, so that a copy from a deposed leader can be refused.
    var stamp: DeliveryStamp?
    /// Set once a message crossed an account import: imports do not chain (as in nats-server).
    var imported = false

    public init(subject: String, reply: String?, headers: ByteBuffer?, payload: ByteBuffer, fromRoute: Bool = false) {
        self.subject = subject
        self.reply = reply
        self.headers = headers
        self.payload = payload
        self.fromRoute = fromRoute
    }
}

/// One SUB: who gets messages for a subject pattern, optionally as a member of a queue group.
public final class Subscription: @unchecked Sendable {
    public let subject: String
    public let queue: String?
    public let sid: String
    // Strong: cached match results may outlive the connection briefly; teardown removes
    // the subscription from the index, which ends the cycle.
    public let sink: MessageSink
    /// The owning client's id (0 for internal subscriptions); used for echo suppression.
    public let ownerID: UInt64
    /// Set when this is a remote node's interest, owned by the route connection it came over.
    let route: RouteConnection?
    /// Queue members this subscription stands for (remote interest carries the remote count).
    public let weight: Int
    /// Whether this interest is announced to the other nodes (and so receives routed
    /// messages). Client subscriptions do; internal ones stay node-local unless asked.
    public let propagates: Bool
    /// A queue member that takes a client's message before any member on another node (as
    /// nats-server prefers local queue subscribers): JetStream direct gets are answered by
    /// the replica on the client's own node when there is one.
    public let prefersLocal: Bool
    /// Set when the owner's deny list overlaps this wildcard subscription: each delivery is
    /// checked against it (nats-server's deny filter).
    var receiveFilter: Permissions?
    /// No longer announced to the other nodes though still here (`Sublist.withdrawInterest`).
    /// Guarded by the sublist's lock.
    var interestWithdrawn = false
    /// Auto-unsubscribe limit (0 = none) and deliveries so far. Guarded by the sink.
    var maxMessages: Int = 0
    var delivered: Int = 0

    public init(subject: String, queue: String?, sid: String, sink: MessageSink, ownerID: UInt64,
                weight: Int = 1, propagates: Bool? = nil, prefersLocal: Bool = false) {
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.sink = sink
        self.ownerID = ownerID
        self.route = sink as? RouteConnection
        self.weight = max(1, weight)
        self.propagates = route == nil && (propagates ?? (ownerID != 0))
        self.prefersLocal = prefersLocal
    }
}

/// The subscriptions matching one subject: every plain subscription gets the message, and one
/// member of each queue group.
public final class SublistResult: @unchecked Sendable {
    public let plain: [Subscription]
    public let queues: [[Subscription]]
    public var isEmpty: Bool { plain.isEmpty && queues.isEmpty }

    init(plain: [Subscription], queues: [[Subscription]]) {
        self.plain = plain
        self.queues = queues
    }

    static let empty = SublistResult(plain: [], queues: [])
}
