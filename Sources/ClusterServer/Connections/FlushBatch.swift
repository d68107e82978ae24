import NIOCore

/// A connection whose queued output is written by `flushOutbound()` on its event loop.
protocol DeferredFlushing: AnyObject {
    var eventLoop: EventLoop { get }
    func flushOutbound()
}

/// Connections (clients and routes) that received messages during one batch and need a
/// flush. Run once at the end of the batch — a publisher's read (`channelReadComplete`), a
/// route's read, a round of the Raft driver that sent PubAcks — as nats-server flushes its
/// "pending clients" at the end of a read loop: one wake-up and one socket write per receiver
/// per batch instead of one per message. Owned by one thread (an event loop or the JetStream
/// queue) and used only there.
final class FlushBatch {
    private var pending: [DeferredFlushing] = []

    /// A receiver is added at most once per batch (its `flushScheduled` flag guards that), so
    /// the array is bounded by the number of distinct receivers.
    func add(_ connection: DeferredFlushing) {
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
