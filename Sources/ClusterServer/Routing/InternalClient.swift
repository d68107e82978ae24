import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// A server-side subscriber (JetStream API, stream ingest, ack handling, ...).
///
/// The handler runs synchronously on the publisher's thread; the message buffers are only
/// valid during the call, so a handler that keeps anything must copy it (or hop to its own
/// queue with a copy).
public final class InternalSubscriber: MessageSink, @unchecked Sendable {
    private let handler: (RoutedMessage) -> Void
    private let lock = NIOLock()
    private var active = true

    init(handler: @escaping (RoutedMessage) -> Void) { self.handler = handler }

    public func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool {
        guard lock.withLock({ active }) else { return false }
        handler(message)
        return true
    }

    func deactivate() { lock.withLock { active = false } }
}

extension NATSServer {
    /// Subscribes a server component to `subject` (optionally in a queue group). Returns the
    /// subscription, for `unsubscribeInternal`. With `propagates` the interest is announced to
    /// the other cluster nodes (RS+), so their clients' publishes reach this handler too;
    /// by default internal interest stays node-local.
    public func subscribeInternal(_ subject: String, queue: String? = nil, propagates: Bool = false,
                                  prefersLocal: Bool = false,
                                  handler: @escaping (RoutedMessage) -> Void) -> Subscription {
        subscribeInternal(subject, queue: queue, propagates: propagates, prefersLocal: prefersLocal, in: globalAccount,
                          handler: handler)
    }

    /// `subscribeInternal` in `account`'s subject namespace (per-account JetStream).
    public func subscribeInternal(_ subject: String, queue: String? = nil, propagates: Bool = false,
                                  prefersLocal: Bool = false, in account: Account,
                                  handler: @escaping (RoutedMessage) -> Void) -> Subscription {
        precondition(Subject.isValidSubscription(subject), "internal subscription to invalid subject \(subject)")
        let sink = InternalSubscriber(handler: handler)
        let sub = Subscription(subject: subject, queue: queue, sid: "internal", sink: sink, ownerID: 0,
                               propagates: propagates, prefersLocal: prefersLocal)
        account.sublist.insert(sub)
        return sub
    }

    public func unsubscribeInternal(_ sub: Subscription) { unsubscribeInternal(sub, in: globalAccount) }

    /// Removes an internal subscription made with `subscribeInternal(_:in:)` from `account`.
    public func unsubscribeInternal(_ sub: Subscription, in account: Account) {
        (sub.sink as? InternalSubscriber)?.deactivate()
        account.sublist.remove(sub)
    }

    /// Publishes a server-originated message (replies, acks, advisories, consumer deliveries)
    /// to every matching subscription. Safe from any thread. Returns how many accepted it.
    @discardableResult
    public func publishInternal(subject: String, reply: String? = nil, headers: ByteBuffer? = nil,
                                payload: ByteBuffer) -> Int {
        publishInternal(subject: subject, reply: reply, headers: headers, payload: payload, in: globalAccount)
    }

    /// `publishInternal` in `account`'s subject namespace.
    @discardableResult
    public func publishInternal(subject: String, reply: String? = nil, headers: ByteBuffer? = nil,
                                payload: ByteBuffer, in account: Account) -> Int {
        publishInternal(subject: subject, reply: reply, headers: headers, payload: payload, in: account, flushBatch: nil)
    }

    /// `publishInternal` whose receivers are flushed when `flushBatch` runs (the caller owns the
    /// batch and runs it soon, on the thread it publishes from), not one by one.
    @discardableResult
    func publishInternal(subject: String, reply: String? = nil, headers: ByteBuffer? = nil,
                         payload: ByteBuffer, in account: Account, flushBatch: FlushBatch?) -> Int {
        let result = account.sublist.matchUncached(subject)
        if result.isEmpty { return 0 }
        var rng = SplitMix64(seed: internalPublishCounter.wrappingIncrementThenLoad(ordering: .relaxed))
        var message = RoutedMessage(subject: subject, reply: reply, headers: headers, payload: payload)
        message.account = account.routedName
        message.flushBatch = flushBatch
        return Fanout.deliver(message, to: result, skipOwner: nil, rng: &rng)
    }

    /// Delivers one message to one known subscription only (a consumer delivering to the
    /// subscription that asked, keeping the stored subject on the MSG line).
    @discardableResult
    public func deliverInternal(_ message: RoutedMessage, to sub: Subscription) -> Bool {
        sub.sink.deliver(message, to: sub)
    }

    /// True when some subscription matches `subject` (interest checks, e.g. push consumers).
    public func hasInterest(_ subject: String) -> Bool { hasInterest(subject, in: globalAccount) }

    /// True when some subscription of `account` matches `subject`.
    public func hasInterest(_ subject: String, in account: Account) -> Bool {
        !account.sublist.match(subject).isEmpty
    }
}
