import NIOCore

/// The subject namespace one JetStream instance lives in. Every internal subscription,
/// reply, delivery and interest check of that JetStream goes through here, so an account's
/// streams, consumers and API answers never touch another account's subjects.
struct AccountBus {
    let server: NATSServer
    let account: Account

    func subscribeInternal(_ subject: String, queue: String? = nil, propagates: Bool = false, prefersLocal: Bool = false,
                           handler: @escaping (RoutedMessage) -> Void) -> Subscription {
        server.subscribeInternal(subject, queue: queue, propagates: propagates, prefersLocal: prefersLocal, in: account,
                                 handler: handler)
    }

    func unsubscribeInternal(_ sub: Subscription) { server.unsubscribeInternal(sub, in: account) }

    /// With `flushBatch`, the receivers are flushed when the caller runs that batch.
    @discardableResult
    func publishInternal(subject: String, reply: String? = nil, headers: ByteBuffer? = nil, payload: ByteBuffer,
                         flushBatch: FlushBatch? = nil) -> Int {
        server.publishInternal(subject: subject, reply: reply, headers: headers, payload: payload, in: account,
                               flushBatch: flushBatch)
    }

    func hasInterest(_ subject: String) -> Bool { server.hasInterest(subject, in: account) }

    @discardableResult
    func deliverAs(subject: String, to target: String, reply: String?, headers: [UInt8]?, payload: [UInt8],
                   flushBatch: FlushBatch? = nil, stamp: DeliveryStamp? = nil) -> Int {
        server.deliverAs(subject: subject, to: target, reply: reply, headers: headers, payload: payload, in: account,
                         flushBatch: flushBatch, stamp: stamp)
    }

    @discardableResult
    func sendStatus(_ status: String, to target: String, reply: String? = nil, fields: [(String, String)] = []) -> Int {
        server.sendStatus(status, to: target, reply: reply, fields: fields, in: account)
    }
}
