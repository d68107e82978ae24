import Raft

/// The most recent entries, kept in memory so that replication (the leader reading what it just
/// appended to send it to followers) does not go through the log's blocks. Contiguous, ending at
/// the log's last index; bounded by bytes (`Entry.sizeBytes`), dropping the oldest half when full.
/// Pure bookkeeping; no I/O.
struct EntryCache {
    let limitBytes: Int
    private(set) var entries: [Entry] = []
    private(set) var bytes = 0

    init(limitBytes: Int) { self.limitBytes = limitBytes }

    var first: LogIndex? { entries.first?.index }

    /// Adds entries that directly follow the cached ones (or replace the cache when they do not).
    mutating func append<C: Collection>(_ new: C) where C.Element == Entry {
        guard limitBytes > 0, let f = new.first else { return }
        if let last = entries.last, last.index.next != f.index { removeAll() }
        for e in new {
            entries.append(e)
            bytes += e.sizeBytes
        }
        if bytes > limitBytes {
            // Drop the oldest half (at least enough to fit): amortized O(1) per entry.
            var drop = entries.count / 2
            var dropped = entries[..<drop].reduce(0) { $0 + $1.sizeBytes }
            while bytes - dropped > limitBytes && drop < entries.count - 1 {
                dropped += entries[drop].sizeBytes
                drop += 1
            }
            entries.removeFirst(drop)
            bytes -= dropped
        }
    }

    /// Forgets entries after `index`.
    mutating func truncate(after index: LogIndex) {
        guard let f = first else { return }
        if index < f { removeAll(); return }
        let keep = index - f + 1
        guard keep < entries.count else { return }
        bytes -= entries[keep...].reduce(0) { $0 + $1.sizeBytes }
        entries.removeSubrange(keep...)
    }

    /// Forgets entries up to and including `index`.
    mutating func compact(upTo index: LogIndex) {
        guard let f = first, index >= f else { return }
        let drop = min(index - f + 1, entries.count)
        bytes -= entries[..<drop].reduce(0) { $0 + $1.sizeBytes }
        entries.removeFirst(drop)
    }

    mutating func removeAll() {
        entries.removeAll()
        bytes = 0
    }

    /// Entries in `[from, to)` if all of them are cached, at most `maxBytes` (at least one).
    func entries(from: LogIndex, to: LogIndex, maxBytes: Int) -> [Entry]? {
        guard let f = first, from >= f, let last = entries.last, to <= last.index.next, from < to else { return nil }
        var out: [Entry] = []
        var size = 0
        var i = from - f
        let end = to - f
        while i < end {
            let e = entries[i]
            if !out.isEmpty && size + e.sizeBytes > maxBytes { break }
            size += e.sizeBytes
            out.append(e)
            i += 1
        }
        return out
    }
}
