import NIOCore

extension NATSServer {
    /// Delivers a message to the subscriptions matching `target` (an inbox or deliver subject)
    /// while the MSG line carries `subject` (the stored subject), as JetStream consumers must
    /// (ADR-13). One member per queue group. Returns how many accepted it. With `flushBatch`
    /// the receivers are flushed when the caller runs that batch. A consumer delivery carries
    /// its leader's `stamp`: refused here if a newer leader's delivery of the stream already
    /// passed this node (this leader is deposed), else it travels on with it across routes.
    /// `target` is matched with the sublist's second-miss admission: a consumer's inbox is
    /// cached from its second delivery on, a one-off target (a status reply) never is.
    @discardableResult
    func deliverAs(subject: String, to target: String, reply: String?, headers: [UInt8]?, payload: [UInt8],
                   in account: Account? = nil, flushBatch: FlushBatch? = nil, stamp: DeliveryStamp? = nil) -> Int {
        if let stamp, !staleDeliveries.admit(stamp, target: target, from: "this node", logger: logger) { return 0 }
        let account = account ?? globalAccount
        let result = account.sublist.match(target)
        if result.isEmpty { return 0 }
        var rng = SplitMix64(seed: internalPublishCounter.wrappingIncrementThenLoad(ordering: .relaxed))
        var message = RoutedMessage(subject: subject, reply: reply,
                                    headers: headers.map { ByteBuffer(bytes: $0) },
                                    payload: ByteBuffer(bytes: payload))
        if target != subject { message.routeSubject = target }
        message.account = account.routedName
        message.flushBatch = flushBatch
        message.stamp = stamp
        return Fanout.deliver(message, to: result, skipOwner: nil, rng: &rng)
    }

    /// Sends a status-only message (`NATS/1.0 408 Request Timeout`, heartbeats, ...) to `target`.
    @discardableResult
    func sendStatus(_ status: String, to target: String, reply: String? = nil, fields: [(String, String)] = [],
                    in account: Account? = nil) -> Int {
        deliverAs(subject: target, to: target, reply: reply,
                  headers: NATSHeaderBlock.make(status: status, fields), payload: [], in: account)
    }
}
