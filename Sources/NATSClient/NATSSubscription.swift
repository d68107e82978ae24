import NIOCore

/// Where a subscription's messages go.
enum SubscriptionSink {
    case stream(AsyncStream<NATSMessage>.Continuation)
    case handler(@Sendable (NATSMessage) -> Void)
    /// The connection's request/reply inbox.
    case inbox
}

/// Per-subscription bookkeeping; mutated only under the connection's lock.
final class SubscriptionState {
    let sid: UInt64
    let subject: String
    let queue: String?
    let sink: SubscriptionSink
    /// Auto-unsubscribe after this many deliveries in total.
    var max: Int?
    var delivered = 0
    var dropped = 0

    init(sid: UInt64, subject: String, queue: String?, sink: SubscriptionSink) {
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.sink = sink
    }

    /// Ends the AsyncSequence (buffered messages are still delivered first).
    func finish() {
        if case .stream(let continuation) = sink { continuation.finish() }
    }
}

/// A subscription. Iterate it to receive messages; the sequence ends after `unsubscribe()`,
/// after the auto-unsubscribe count is reached, on `drain()` and on `close()`.
/// Subscriptions created with a handler deliver to the handler and their sequence is empty.
public final class NATSSubscription: AsyncSequence, @unchecked Sendable {
    public typealias Element = NATSMessage
    public typealias AsyncIterator = AsyncStream<NATSMessage>.Iterator

    public let sid: UInt64
    public let subject: String
    public let queue: String?
    let stream: AsyncStream<NATSMessage>
    let connection: NATSConnection

    init(sid: UInt64, subject: String, queue: String?, stream: AsyncStream<NATSMessage>, connection: NATSConnection) {
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.stream = stream
        self.connection = connection
    }

    public func makeAsyncIterator() -> AsyncStream<NATSMessage>.Iterator { stream.makeAsyncIterator() }

    /// Stops interest now, or (with `max`) after `max` messages in total have been delivered.
    public func unsubscribe(after max: Int? = nil) throws {
        try connection.unsubscribe(sid: sid, after: max)
    }

    /// Messages dropped because the consumer did not keep up (`options.subscriptionPendingLimit`).
    public var droppedCount: Int { connection.droppedCount(sid: sid) }
    /// Messages delivered so far.
    public var deliveredCount: Int { connection.deliveredCount(sid: sid) }
}
