/// Connections that received messages during one read batch of a publisher and need a
/// flush. Run once at the end of the batch (`channelReadComplete`), as nats-server flushes
/// its "pending clients" at the end of a read loop: one wake-up per receiver per batch instead
/// of one per message. Owned by one handler; used only on its event loop.
final class FlushBatch {
    private var pending: [ClientConnection] = []
    /// A receiver is added at most once per batch (its `flushScheduled` flag guards that), so
    /// the array is bounded by the number of distinct receivers.
    func add(_ connection: ClientConnection) {
        pending.append(connection)
    }

    func run() {
        if pending.isEmpty { return }
        for c in pending {
            if c.eventLoop.inEventLoop {
                c.flushOutbound()
            } else {
                c.eventLoop.execute { c.flushOutbound() }
            }
        }
        pending.removeAll(keepingCapacity: true)
    }
}
