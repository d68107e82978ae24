/// The log as Raft sees it: stable entries in `storage` plus an unstable tail (and possibly an
/// unstable snapshot) not yet handed to the driver for persistence.
struct RaftLog {
    let storage: RaftStorage
    /// Index of `unstable[0]`.
    private(set) var unstableOffset: LogIndex
    private(set) var unstable: [Entry] = []
    /// A snapshot received from the leader and not yet persisted.
    private(set) var pendingSnapshot: Snapshot?
    private(set) var committed: LogIndex
    private(set) var applied: LogIndex
    /// This node's log is durable up to here (the driver said so). Entries are applied only up
    /// to it, and a leader counts its own copy toward commit only up to it (§10.2.1).
    private(set) var durable: LogIndex
    /// Writes handed to the driver and not yet reported durable: (write number, last index),
    /// oldest first. A truncation lowers them: what a write made durable and was cut since is gone.
    private var unsyncedWrites: [(seq: UInt64, index: LogIndex)] = []
    private var writeSeq: UInt64 = 0
    /// Highest index handed out in a Ready as a committed entry (applied after `advance`).
    var maxCommittedSizePerReady: Int

    init(storage: RaftStorage, commit: LogIndex, maxCommittedSizePerReady: Int) {
        self.storage = storage
        unstableOffset = storage.lastIndex.next
        // Everything up to the snapshot is committed and applied (the snapshot *is* the state).
        let snapshotIndex = max(storage.snapshot().metadata.index, storage.firstIndex.prev)
        committed = max(commit, snapshotIndex)
        applied = snapshotIndex
        durable = storage.lastIndex
        self.maxCommittedSizePerReady = maxCommittedSizePerReady
        precondition(committed <= storage.lastIndex, "persisted commit \(commit) beyond last index \(storage.lastIndex)")
    }

    var firstIndex: LogIndex {
        if let s = pendingSnapshot { return s.metadata.index.next }
        return storage.firstIndex
    }

    var lastIndex: LogIndex {
        if let last = unstable.last { return last.index }
        if let s = pendingSnapshot { return s.metadata.index }
        return storage.lastIndex
    }

    var lastTerm: Term { term(at: lastIndex) ?? .zero }

    /// The term at `index`, or nil when compacted or past the end.
    func term(at index: LogIndex) -> Term? {
        if index == .zero { return .zero }
        if index >= unstableOffset {
            let i = index - unstableOffset
            return i < unstable.count ? unstable[i].term : nil
        }
        if let s = pendingSnapshot {
            return index == s.metadata.index ? s.metadata.term : nil
        }
        return try? storage.term(at: index)
    }

    func matchTerm(_ index: LogIndex, _ term: Term) -> Bool { self.term(at: index) == term }

    /// True if a log ending at (lastIndex, lastTerm) is at least as up to date as ours (§5.4.1).
    func isUpToDate(lastIndex: LogIndex, lastTerm: Term) -> Bool {
        let myTerm = self.lastTerm
        return lastTerm > myTerm || (lastTerm == myTerm && lastIndex >= self.lastIndex)
    }

    /// Entries in `[from, lastIndex]` up to `maxBytes`; nil if `from` was compacted.
    func entries(from: LogIndex, maxBytes: Int) -> [Entry]? {
        entries(from: from, to: lastIndex.next, maxBytes: maxBytes)
    }

    /// Entries in `[from, to)` up to `maxBytes` (at least one); nil if `from` was compacted.
    func entries(from: LogIndex, to: LogIndex, maxBytes: Int) -> [Entry]? {
        if from < firstIndex { return nil }
        guard from < to else { return [] }
        var out: [Entry] = []
        if from < unstableOffset {
            guard let stable = try? storage.entries(from: from, to: min(to, unstableOffset), maxBytes: maxBytes) else { return nil }
            out = stable
            if out.last?.index.next != min(to, unstableOffset) { return out }
        }
        let lo = max(from, unstableOffset)
        if lo < to {
            var bytes = out.reduce(0) { $0 + $1.sizeBytes }
            var i = lo - unstableOffset
            let end = min(to - unstableOffset, unstable.count)
            while i < end {
                let e = unstable[i]
                if !out.isEmpty && bytes + e.sizeBytes > maxBytes { break }
                bytes += e.sizeBytes
                out.append(e)
                i += 1
            }
        }
        return out
    }

    /// The follower's log-matching step: if our entry at `prevIndex` has `prevTerm`, drop any
    /// conflicting suffix, append the new entries and return the index of the last new entry.
    mutating func maybeAppend(prevIndex: LogIndex, prevTerm: Term, commit: LogIndex, entries: [Entry]) -> LogIndex? {
        guard matchTerm(prevIndex, prevTerm) else { return nil }
        let lastNew = prevIndex + entries.count
        if let conflict = findConflict(entries) {
            precondition(conflict > committed, "conflict at \(conflict) would truncate committed entries (commit \(committed))")
            append(Array(entries[(conflict - prevIndex - 1)...]))
        }
        commitTo(min(commit, lastNew))
        return lastNew
    }

    /// The index of the first entry that is new or whose term differs from ours.
    private func findConflict(_ entries: [Entry]) -> LogIndex? {
        for e in entries where !matchTerm(e.index, e.term) { return e.index }
        return nil
    }

    /// The largest index <= `index` whose term is <= `term` (the fast back-off probe).
    func findConflictByTerm(index: LogIndex, term: Term) -> LogIndex {
        var i = min(index, lastIndex)
        while i > .zero {
            guard let t = self.term(at: i) else { return i }
            if t <= term { return i }
            i = i.prev
        }
        return .zero
    }

    /// Appends entries whose first index is at most lastIndex + 1, replacing any suffix.
    mutating func append(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        let after = first.index
        precondition(after > committed, "append at \(after) would overwrite committed \(committed)")
        precondition(after <= lastIndex.next, "append at \(after) leaves a gap after \(lastIndex)")
        if after <= lastIndex { lowerDurable(to: after.prev) }
        if after == unstableOffset + unstable.count {
            unstable.append(contentsOf: entries)
        } else if after <= unstableOffset {
            // Replaces part of the stable log: the driver truncates storage when it persists these.
            unstableOffset = after
            unstable = entries
        } else {
            unstable.removeSubrange((after - unstableOffset)...)
            unstable.append(contentsOf: entries)
        }
    }

    mutating func commitTo(_ index: LogIndex) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "commit \(index) beyond last index \(lastIndex)")
        committed = index
    }

    /// Committed entries are applied only once durable here too: the state machine (written
    /// after apply) must never get ahead of the log it is rebuilt from after a power loss.
    var appliable: LogIndex { min(committed, durable) }

    /// Committed entries the application has not been given yet.
    func nextCommittedEntries() -> [Entry] {
        guard pendingSnapshot == nil, appliable > applied else { return [] }
        return entries(from: applied.next, to: appliable.next, maxBytes: maxCommittedSizePerReady) ?? []
    }

    var hasNextCommittedEntries: Bool { pendingSnapshot == nil && appliable > applied }

    mutating func appliedTo(_ index: LogIndex) {
        guard index > applied else { return }
        precondition(index <= committed, "applied \(index) beyond commit \(committed)")
        applied = index
    }

    /// Entries up to (index, term) are now on stable storage.
    mutating func stableTo(index: LogIndex, term: Term) {
        guard index >= unstableOffset, matchTerm(index, term) else { return }
        let n = index - unstableOffset + 1
        guard n <= unstable.count else { return }
        unstable.removeFirst(n)
        unstableOffset = index.next
    }

    /// The driver wrote everything handed out up to now (not yet durable); returns the number
    /// to report to `synced(throughWrite:)` once a sync covering it finished.
    mutating func written() -> UInt64 {
        writeSeq &+= 1
        unsyncedWrites.append((writeSeq, unstableOffset.prev))
        return writeSeq
    }

    /// Every write up to number `seq` is durable. Returns true if `durable` rose.
    mutating func synced(throughWrite seq: UInt64) -> Bool {
        var top = durable
        while let w = unsyncedWrites.first, w.seq <= seq {
            top = max(top, w.index)
            unsyncedWrites.removeFirst()
        }
        guard top > durable else { return false }
        durable = top
        return true
    }

    /// Everything handed out so far is durable (the driver synced before `advance`).
    mutating func syncedAll() -> Bool {
        unsyncedWrites.removeAll()
        let top = unstableOffset.prev
        guard top > durable else { return false }
        durable = top
        return true
    }

    /// Entries after `index` are being replaced: whatever made them durable no longer counts.
    private mutating func lowerDurable(to index: LogIndex) {
        durable = min(durable, index)
        for i in unsyncedWrites.indices { unsyncedWrites[i].index = min(unsyncedWrites[i].index, index) }
    }

    mutating func stableSnapshotTo(_ index: LogIndex) {
        if pendingSnapshot?.metadata.index == index { pendingSnapshot = nil }
    }

    /// Replaces the whole log with a leader's snapshot.
    mutating func restore(_ snapshot: Snapshot) {
        precondition(snapshot.metadata.index > committed, "snapshot \(snapshot.metadata.index) below commit \(committed)")
        committed = snapshot.metadata.index
        applied = min(applied, committed)
        lowerDurable(to: snapshot.metadata.index)
        unstable = []
        unstableOffset = snapshot.metadata.index.next
        pendingSnapshot = snapshot
    }

    /// The application installed the snapshot: everything up to its index is applied.
    mutating func snapshotApplied(_ index: LogIndex) {
        if index > applied { applied = index }
    }
}
