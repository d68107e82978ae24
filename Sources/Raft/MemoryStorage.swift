/// An in-memory `RaftStorage`, for tests and simulations. Everything written to it counts as
/// persisted: a simulated crash keeps a node's `MemoryStorage` and drops its `RaftNode`.
public final class MemoryStorage: RaftStorage {
    public private(set) var hardState = HardState()
    private var snap: Snapshot
    /// The last compacted index and its term; `ents[i]` has index `compactedIndex + 1 + i`.
    private var compactedIndex: LogIndex
    private var compactedTerm: Term
    private var ents: [Entry] = []

    /// A fresh log whose membership is `conf` (the bootstrap configuration of a new group, or an
    /// empty one for a node that will be added later).
    public init(conf: ConfState = ConfState()) {
        snap = Snapshot(metadata: SnapshotMetadata(index: .zero, term: .zero, conf: conf))
        compactedIndex = .zero
        compactedTerm = .zero
    }

    public func initialState() -> (hardState: HardState, conf: ConfState) { (hardState, snap.metadata.conf) }
    public var firstIndex: LogIndex { compactedIndex.next }
    public var lastIndex: LogIndex { compactedIndex + ents.count }
    /// Number of entries held (for tests and benchmarks).
    public var entryCount: Int { ents.count }

    public func term(at index: LogIndex) throws -> Term {
        if index < compactedIndex { throw StorageError.compacted }
        if index == compactedIndex { return compactedTerm }
        if index > lastIndex { throw StorageError.unavailable }
        return ents[index - compactedIndex - 1].term
    }

    public func entries(from: LogIndex, to: LogIndex, maxBytes: Int) throws -> [Entry] {
        if from < firstIndex { throw StorageError.compacted }
        if to > lastIndex.next { throw StorageError.unavailable }
        guard from < to else { return [] }
        var out: [Entry] = []
        var bytes = 0
        var i = from - compactedIndex - 1
        let end = to - compactedIndex - 1
        while i < end {
            let e = ents[i]
            if !out.isEmpty && bytes + e.sizeBytes > maxBytes { break }
            bytes += e.sizeBytes
            out.append(e)
            i += 1
        }
        return out
    }

    public func snapshot() -> Snapshot { snap }

    public func append(_ entries: [Entry]) throws {
        guard let first = entries.first else { return }
        if first.index > lastIndex.next { throw StorageError.gap(expected: lastIndex.next, got: first.index) }
        // Entries already compacted away are skipped; they are committed and therefore equal.
        let toAdd = entries.drop { $0.index < firstIndex }
        guard let f = toAdd.first else { return }
        try truncate(after: f.index.prev)
        ents.append(contentsOf: toAdd)
    }

    public func truncate(after index: LogIndex) throws {
        if index < compactedIndex { throw StorageError.compacted }
        let keep = index - compactedIndex
        if keep < ents.count { ents.removeSubrange(keep...) }
    }

    public func setHardState(_ hardState: HardState) { self.hardState = hardState }

    public func applySnapshot(_ snapshot: Snapshot) throws {
        if snapshot.metadata.index <= snap.metadata.index && !snap.isEmpty { throw StorageError.snapshotOutOfDate }
        snap = snapshot
        ents = []
        compactedIndex = snapshot.metadata.index
        compactedTerm = snapshot.metadata.term
    }

    public func createSnapshot(index: LogIndex, conf: ConfState, data: [UInt8]) throws {
        if index <= snap.metadata.index { throw StorageError.snapshotOutOfDate }
        let t = try term(at: index)
        snap = Snapshot(metadata: SnapshotMetadata(index: index, term: t, conf: conf), data: data)
    }

    public func compact(upTo index: LogIndex) throws {
        guard index <= snap.metadata.index else { throw StorageError.unavailable }
        guard index > compactedIndex else { return }
        let t = try term(at: index)
        ents.removeSubrange(0..<(index - compactedIndex))
        compactedIndex = index
        compactedTerm = t
    }
}
