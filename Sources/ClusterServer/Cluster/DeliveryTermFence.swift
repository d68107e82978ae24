/// Who sent a JetStream consumer delivery: the stream's Raft group (`key`, unique per account
/// and stream incarnation: group ids are never reused) and the leader term it was sent in.
/// It travels with the delivery across a route (`StampedDeliverFrame`), never to a client.
public struct DeliveryStamp: Equatable, Sendable {
    public var key: String
    public var term: UInt64

    public init(key: String, term: UInt64) {
        self.key = key
        self.term = term
    }
}

/// The decision a node makes before handing a consumer delivery to its local subscribers
/// (chaos finding 15, the delayed copy): drop a delivery sent in an older term than one this
/// node already handed out for the same stream.
///
/// Why it is sound: a leader delivers only under its lease, but a copy it sent may be held by
/// the network and arrive much later. A successor (a newer term) delivers the same messages
/// again if it never learned of that delivery; a client can only ack the successor's copy after
/// receiving it, through the node it is connected to, which records the newer term here first.
/// So when the held copy finally arrives at that node, its older term is refused: the client
/// never sees a message again after acking it. Nothing depends on clocks (lease lengths, skew,
/// a jumped JetStream clock, a slow route): a delivery that is merely late but from the current
/// term passes. Dropping is safe for at-least-once: the successor has the message undelivered
/// or pending (redelivered after `ack_wait`).
///
/// Bounded: at most `capacity` streams are remembered; the least recently seen is forgotten
/// (which only loses protection for it, never drops a current delivery). Pure: no I/O, no clock.
public struct DeliveryTermFence {
    private struct Entry {
        var term: UInt64
        var used: UInt64
    }

    private var entries: [String: Entry] = [:]
    private var useCounter: UInt64 = 0
    public let capacity: Int
    /// Deliveries refused so far.
    public private(set) var dropped = 0

    public init(capacity: Int = 4096) {
        precondition(capacity > 0, "fence capacity must be positive")
        self.capacity = capacity
    }

    public var count: Int { entries.count }

    /// The newest term handed out for `key`, if remembered.
    public func term(of key: String) -> UInt64? { entries[key]?.term }

    /// True if the delivery may be handed out (and its term is remembered); false if a newer
    /// term's delivery of the same stream was handed out here before (counted in `dropped`).
    public mutating func admit(_ stamp: DeliveryStamp) -> Bool {
        useCounter &+= 1
        if let i = entries.index(forKey: stamp.key) {
            if stamp.term < entries.values[i].term {
                dropped += 1
                return false
            }
            entries.values[i] = Entry(term: stamp.term, used: useCounter)
            return true
        }
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used })?.key {
            entries.removeValue(forKey: oldest)
        }
        entries[stamp.key] = Entry(term: stamp.term, used: useCounter)
        return true
    }
}
