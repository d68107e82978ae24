import NIOConcurrencyHelpers

/// Work on its way from event-loop threads (client and route reads) to the JetStream queue,
/// handed over in blocks: the first item after a drain asks for one `queue.async`, the rest
/// join it until the queue takes them. Under load that is one block (and at most one wake-up
/// of the queue) per batch instead of per item; order is kept, since a drain already
/// scheduled runs before anything the sender enqueues later.
///
/// Bounded (`maxItems`, `maxBytes`): while the queue is busy, items wait here, and a sender
/// faster than the queue would otherwise grow it without end.
final class Mailbox<Element>: @unchecked Sendable {
    private let lock = NIOLock()
    private var items: [Element] = []
    private var bytes = 0
    private var drainScheduled = false
    let maxItems: Int
    let maxBytes: Int

    init(maxItems: Int = .max, maxBytes: Int = .max) {
        self.maxItems = maxItems
        self.maxBytes = maxBytes
    }

    enum Admission: Equatable {
        /// Added; the caller must schedule a drain (`take`) on the queue.
        case scheduleDrain
        /// Added; a drain is scheduled already.
        case queued
        /// Not added: the mailbox holds `maxItems` items or `maxBytes` bytes.
        case full
    }

    /// Adds an item of `size` bytes unless the mailbox is full. An item larger than `maxBytes`
    /// still enters an empty mailbox.
    func add(_ item: Element, size: Int = 0) -> Admission {
        lock.withLock {
            guard items.isEmpty || (items.count < maxItems && bytes + size <= maxBytes) else { return .full }
            items.append(item)
            bytes += size
            if drainScheduled { return .queued }
            drainScheduled = true
            return .scheduleDrain
        }
    }

    /// Everything added so far, in order; the next `add` schedules a new drain.
    func take() -> [Element] {
        lock.withLock {
            drainScheduled = false
            bytes = 0
            var out: [Element] = []
            swap(&out, &items)
            items.reserveCapacity(out.count)
            return out
        }
    }
}

/// A publish on a stream subject, on its way to the JetStream queue.
struct IngestItem {
    let stream: String
    let subject: String
    let reply: String?
    let headers: [UInt8]?
    let payload: [UInt8]
    var arrival: Arrival = .subscribed

    /// How a publish reached JetStream.
    enum Arrival {
        /// Through the stream's ingest subscription.
        case subscribed
        /// It reached no subscription (`JetStreamService+Unrouted`); `noResponders`: its
        /// publisher asked for a no-responders status.
        case unrouted(noResponders: Bool)
    }
}

/// An ack (a publish to a `$JS.ACK.…` subject), on its way to the JetStream queue.
struct AckItem {
    let subject: String
    let reply: String?
    let body: [UInt8]
}

/// Publishes on their way to the JetStream queue (`JetStreamService.drainIngest`).
typealias IngestMailbox = Mailbox<IngestItem>
