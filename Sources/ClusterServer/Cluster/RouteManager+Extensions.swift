import NIOCore

/// Extension frames (`XMSG <namespace>`): the Raft transport and other subsystems' traffic,
/// and the deliveries a stream leader sends to a consumer's client on another node.
extension RouteManager {
    /// Registers the handler for `XMSG <namespace>` frames; it runs on the route's event loop
    /// with the sending server's id, and must copy what it keeps.
    public func registerExtension(_ namespace: String, handler: @escaping (_ from: String, _ payload: ByteBuffer) -> Void) {
        precondition(!namespace.isEmpty && !namespace.contains(" "), "bad extension namespace")
        extensions.withLockedValue { $0[namespace] = handler }
    }

    /// Sends one frame to `serverID` over its route; false when there is no route to it.
    @discardableResult
    public func sendExtension(_ namespace: String, payload: ByteBuffer, to serverID: String) -> Bool {
        guard let r = route(to: serverID) else { return false }
        return r.append { RouteEncoder.writeExtension(into: &$0, namespace: namespace, payload: payload) }
    }

    func dispatchExtension(_ namespace: String, payload: ByteBuffer, from conn: RouteConnection) {
        if namespace == StampedDeliverFrame.namespace {
            guard let (stamp, d) = StampedDeliverFrame.decode(payload) else {
                server.logger.notice("\(conn.logPrefix) - Dropping a malformed stamped deliver frame")
                return
            }
            // Checked before the interest lookup: every stamp this node sees raises its fence.
            let from = conn.peerInfo?.serverName ?? conn.logPrefix
            guard server.staleDeliveries.admit(stamp, target: d.target, from: "route \(from)", logger: server.logger) else { return }
            deliverRouted(d, from: conn)
            return
        }
        if namespace == DeliverAsFrame.namespace || namespace == DeliverAsFrame.accountNamespace {
            guard let d = DeliverAsFrame.decode(payload, withAccount: namespace == DeliverAsFrame.accountNamespace) else {
                server.logger.notice("\(conn.logPrefix) - Dropping a malformed deliver frame")
                return
            }
            deliverRouted(d, from: conn)
            return
        }
        guard let handler = extensions.withLockedValue({ $0[namespace] }), let peer = conn.peerInfo?.serverID else {
            server.logger.debug("\(conn.logPrefix) - No handler for route frames of \"\(namespace)\"")
            return
        }
        handler(peer, payload)
    }

    /// Hands a delivery that came over `conn` to this node's subscribers of its target.
    private func deliverRouted(_ d: DeliverAsFrame.Decoded, from conn: RouteConnection) {
        // Matched in the delivery's own account only (an unknown account: nobody to deliver to).
        let found = d.account == nil ? server.globalAccount : server.account(named: d.account!)
        guard let account = found else { return }
        let result = account.sublist.match(d.target)
        if !result.isEmpty {
            _ = Fanout.deliver(d.message, to: result, skipOwner: nil, rng: &conn.rng, queueFilter: d.queues)
        }
    }
}
