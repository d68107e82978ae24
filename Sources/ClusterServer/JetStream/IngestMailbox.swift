import NIOConcurrencyHelpers

/// Publishes on stream subjects on their way from publisher threads (client and route event
/// loops) to the JetStream queue, handed over in blocks: the first publish after a drain asks
/// for one `queue.async`, the rest join it until the queue takes them. Under load that is one
/// block (and at most one wake-up of the queue) per batch instead of per message; order is
/// kept, since a drain already scheduled runs before anything the publisher enqueues later.
final class IngestMailbox: @unchecked Sendable {
    struct Item {
        let stream: String
        let subject: String
        let reply: String?
        let headers: [UInt8]?
        let payload: [UInt8]
    }

    private let lock = NIOLock()
    private var items: [Item] = []
    private var drainScheduled = false

    /// Adds a publish; true when the caller must schedule a drain (`take`) on the queue.
    func add(_ item: Item) -> Bool {
        lock.withLock {
            items.append(item)
            if drainScheduled { return false }
            drainScheduled = true
            return true
        }
    }

    /// Everything added so far, in order; the next `add` schedules a new drain.
    func take() -> [Item] {
        lock.withLock {
            drainScheduled = false
            var out: [Item] = []
            swap(&out, &items)
            items.reserveCapacity(out.count)
            return out
        }
    }
}
