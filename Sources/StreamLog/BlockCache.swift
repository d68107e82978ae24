/// A small cache of decoded message blocks, so sequential and repeated reads decode each
/// block once. Keyed by segment base and block offset; cleared whenever blocks are rewritten.
struct BlockCache {
    struct Key: Hashable {
        var segment: UInt64
        var offset: UInt64
    }

    let capacity: Int
    private var entries: [Key: [StoredMessage]] = [:]
    private var order: [Key] = []
    private var next = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func get(_ key: Key) -> [StoredMessage]? { entries[key] }

    /// Inserts, evicting in FIFO order once full (bounded by `capacity`).
    mutating func put(_ key: Key, _ value: [StoredMessage]) {
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
