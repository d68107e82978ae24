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
/// Bounded: at most `capacity` streams are remembered; a new one then replaces the stream least
/// recently admitted (a refused delivery does not count as a use). Forgetting only loses
/// protection for that stream, never drops a current delivery. Every call is O(1): the streams
/// are kept in a doubly linked recency list threaded through an array. Pure: no I/O, no clock.
public struct DeliveryTermFence {
    /// A remembered stream and its neighbours in the recency list (indices into `nodes`, -1 at
    /// either end).
    private struct Node {
        var key: String
        var term: UInt64
        var older: Int
        var newer: Int
    }

    /// Where each remembered stream's node is; `nodes.count == slots.count` always (a node is
    /// only ever reused, never removed).
    private var slots: [String: Int] = [:]
    private var nodes: [Node] = []
    /// The ends of the recency list: the least and the most recently admitted (-1 while empty).
    private var oldest = -1
    private var newest = -1
    public let capacity: Int
    /// Deliveries refused so far.
    public private(set) var dropped = 0

    public init(capacity: Int = 4096) {
        precondition(capacity > 0, "fence capacity must be positive")
        self.capacity = capacity
    }

    public var count: Int { slots.count }

    /// The newest term handed out for `key`, if remembered.
    public func term(of key: String) -> UInt64? { slots[key].map { nodes[$0].term } }

    /// True if the delivery may be handed out (and its term is remembered); false if a newer
    /// term's delivery of the same stream was handed out here before (counted in `dropped`).
    public mutating func admit(_ stamp: DeliveryStamp) -> Bool {
        if let i = slots[stamp.key] {
            if stamp.term < nodes[i].term {
                dropped += 1
                return false
            }
            nodes[i].term = stamp.term
            if i != newest {
                unlink(i)
                linkAsNewest(i)
            }
            return true
        }
        let node = Node(key: stamp.key, term: stamp.term, older: -1, newer: -1)
        let i: Int
        if nodes.count < capacity {
            i = nodes.count
            nodes.append(node)
        } else {
            // Full: the least recently admitted stream is forgotten and its node reused.
            i = oldest
            unlink(i)
            slots.removeValue(forKey: nodes[i].key)
            nodes[i] = node
        }
        slots[stamp.key] = i
        linkAsNewest(i)
        return true
    }

    private mutating func unlink(_ i: Int) {
        let (older, newer) = (nodes[i].older, nodes[i].newer)
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
    }

    private mutating func linkAsNewest(_ i: Int) {
        nodes[i].older = newest
        nodes[i].newer = -1
        if newest >= 0 { nodes[newest].newer = i } else { oldest = i }
        newest = i
    }
}
