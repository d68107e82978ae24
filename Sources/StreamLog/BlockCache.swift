/// A small cache of decoded (or decompressed) message blocks, so sequential and repeated reads decode each
/// block once. Keyed by segment base and block offset; cleared whenever blocks are rewritten.
struct BlockCache<Value> {
    typealias Key = BlockKey

    let capacity: Int
    private var entries: [Key: Value] = [:]
    private var order: [Key] = []
    private var next = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func get(_ key: Key) -> Value? { entries[key] }

    /// Inserts, evicting in FIFO order once full (bounded by `capacity`).
    mutating func put(_ key: Key, _ value: Value) {
        if entries[key] != nil {
            entries[key] = value
            return
        }
        if order.count < capacity {
            order.append(key)
        } else {
            entries[order[next]] = nil
            order[next] = key
            next = (next + 1) % capacity
        }
        entries[key] = value
    }

    mutating func removeAll() {
        entries.removeAll()
        order.removeAll()
        next = 0
    }
}

/// A block's identity: its segment and offset.
struct BlockKey: Hashable {
    var segment: UInt64
    var offset: UInt64
}
