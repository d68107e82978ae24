import Raft
import StreamLog

/// Settings of one group's durable log.
public struct RaftLogStorageConfig: Sendable {
    /// Size at which a log segment is sealed; compaction frees space a whole segment at a time.
    public var segmentMaxBytes: UInt64
    /// LZ4-compress log blocks when that saves space.
    public var compression: Bool
    /// Recent entries kept in memory for replication reads (per group; 0 turns it off).
    public var entryCacheBytes: Int
    /// How many of the newest entries `open` reads to rebuild the in-memory term index (and to
    /// check them). Terms of older entries are read from the log when asked for, so reopening a
    /// long, uncompacted log does not read all of it.
    public var openScanEntries: Int
    /// Zeros written ahead of the appends (`StreamLogConfig.preallocateBytes`): every round's
    /// fsync waits for the log, and one that does not grow the file is about twice as fast.
    public var preallocateBytes: UInt64

    public init(segmentMaxBytes: UInt64 = 16 << 20, compression: Bool = true, entryCacheBytes: Int = 256 << 10,
                openScanEntries: Int = 65_536, preallocateBytes: UInt64 = 512 << 10) {
        self.preallocateBytes = preallocateBytes
        self.segmentMaxBytes = segmentMaxBytes
        self.compression = compression
        self.entryCacheBytes = entryCacheBytes
        self.openScanEntries = max(1, openScanEntries)
    }
}

/// A durable `RaftStorage`: the entries in a `StreamLog` (one record per entry, record sequence
/// = Raft index), the hard state and the latest snapshot in two small atomically replaced files.
///
/// Layout of `directory`: `log/` (the StreamLog), `raft.state` (term, vote, commit and the
/// compaction point), `raft.snap` (snapshot index, term, membership and data).
///
/// **Durability contract (group commit).** `append`, `setHardState` and `truncate` do not make
/// a Ready durable by themselves. The driver handles a Ready round for *all* its groups —
/// `applySnapshot`, `append(rd.entries)`, `setHardState(rd.hardState)` — then calls `sync()`
/// once per group that has `needsSync`, and only then sends the round's messages. `sync()`
/// fsyncs the log once (everything appended since the last sync) and, when term or vote
/// changed, writes `raft.state` after that (so a persisted commit never points past the durable
/// log). A commit-only change is persisted lazily (with the next term/vote change, compaction,
/// snapshot or `close()`): after a crash the commit index may be lower than it was, which Raft
/// tolerates (it learns the commit again from the leader); pass `applied:` to `RaftNode` from the
/// state machine if it is durable beyond the snapshot. `applySnapshot`, `createSnapshot` and
/// `compact` are durable on return (they are rare).
///
/// Recovery (`open`): the snapshot and state files are read; the log is opened (a torn tail is
/// cut by StreamLog recovery); a log left behind by a crash in the middle of `applySnapshot` or
/// `compact` is finished off; then every entry is read once to rebuild the term index. A gap, a
/// record out of place, damage in a sealed segment or a damaged state file throws
/// `RaftLogStorageError` rather than being skipped.
///
/// `term(at:)`, `firstIndex` and `lastIndex` are answered from memory (the terms of all entries
/// are kept run-length encoded). Not thread-safe: one owner calls everything, like `RaftNode`,
/// except the job `beginSync()` returns, which may run on any thread while the owner goes on.
/// Different instances may be synced from different threads at once.
public final class StreamLogRaftStorage: RaftStorage {
    public let directory: String
    let fs: FileSystem
    let log: StreamLog
    private var snap: Snapshot
    /// What `raft.state` holds.
    private var persisted: PersistentState
    /// The latest hard state handed in by the driver (may be ahead of `persisted`).
    public private(set) var hardState: HardState
    private var compactedIndex: LogIndex
    private var compactedTerm: Term
    private var last: LogIndex
    /// Terms of the entries from `termsFrom` to `last`; older ones are read from the log.
    private var terms = TermRuns()
    private var termsFrom: LogIndex
    private var cache: EntryCache
    private var openScanEntries = 65_536
    /// Entries appended since the last `sync()`.
    private var unsynced = false
    private var isClosed = false

    init(directory: String, fs: FileSystem, log: StreamLog, snap: Snapshot, state: PersistentState, cacheBytes: Int) {
        cache = EntryCache(limitBytes: cacheBytes)
        self.directory = directory
        self.fs = fs
        self.log = log
        self.snap = snap
        persisted = state
        hardState = state.hardState
        compactedIndex = state.compactedIndex
        compactedTerm = state.compactedTerm
        last = state.compactedIndex
        termsFrom = state.compactedIndex.next
    }

    /// Opens (or creates) the group's storage in `directory`. `bootstrap` is the membership of a
    /// brand-new group (empty for a node that will be added later); it is ignored when the
    /// directory already holds a group.
    public static func open(directory: String, fileSystem: FileSystem = PosixFileSystem(),
                            config: RaftLogStorageConfig = RaftLogStorageConfig(),
                            bootstrap: ConfState = ConfState()) throws -> StreamLogRaftStorage {
        try mapped {
            try fileSystem.makeDirectory(directory)
            for name in try fileSystem.list(directory) where name.hasSuffix(".tmp") {
                try fileSystem.remove(StateFiles.join(directory, name))
            }
            let snapBytes = try StateFiles.read(fileSystem, directory: directory, name: StateFiles.snapshotName)
            let stateBytes = try StateFiles.read(fileSystem, directory: directory, name: StateFiles.stateName)
            // No subject index: entries are read by index only, and a compaction then drops a
            // prefix without reading it back (it read every compacted entry: 4.6% of a
            // three-node cluster's CPU samples under a publish load).
            let logConfig = StreamLogConfig(segmentMaxBytes: max(4096, config.segmentMaxBytes), fsync: .manual,
                                            compression: config.compression, preallocateBytes: config.preallocateBytes,
                                            indexesSubjects: false,
                                            // A compaction's dropped segments are removed by
                                            // `backgroundJob`, off the owner's thread, or kept
                                            // for the next tails to take over: four at most
                                            // (compaction every 2 s drops one or two under a
                                            // 70,000 msgs/s publish load).
                                            defersFileRemoval: true, spareSegments: 4)
            let log = try StreamLog.open(directory: StateFiles.join(directory, "log"), fileSystem: fileSystem,
                                         config: logConfig, clock: { 0 })
            do {
                let storage = try recover(directory: directory, fs: fileSystem, log: log, snapBytes: snapBytes,
                                          stateBytes: stateBytes, bootstrap: bootstrap, config: config)
                return storage
            } catch {
                try? log.close()
                throw error
            }
        }
    }

    private static func recover(directory: String, fs: FileSystem, log: StreamLog, snapBytes: [UInt8]?,
                                stateBytes: [UInt8]?, bootstrap: ConfState, config: RaftLogStorageConfig) throws -> StreamLogRaftStorage {
        if let bad = log.recoveryReport.corruptions.first {
            throw RaftLogStorageError.corrupt("log damaged: \(bad)")
        }
        let info = try log.state()
        guard info.deletedCount == 0 else {
            throw RaftLogStorageError.corrupt("log has \(info.deletedCount) holes between \(info.firstSequence) and \(info.lastSequence)")
        }
        guard let snapBytes else {
            // A new group: nothing may exist yet besides an empty log.
            guard info.lastSequence == 0, stateBytes == nil else {
                throw RaftLogStorageError.corrupt("\(StateFiles.snapshotName) is missing but the group has state")
            }
            let snap = Snapshot(metadata: SnapshotMetadata(conf: bootstrap))
            let s = StreamLogRaftStorage(directory: directory, fs: fs, log: log, snap: snap, state: PersistentState(),
                                         cacheBytes: config.entryCacheBytes)
            try s.writeSnapshotFile(snap)
            try s.writeStateFile(PersistentState())
            return s
        }
        guard let snap = StateFiles.decodeSnapshot(snapBytes) else {
            throw RaftLogStorageError.corrupt("\(StateFiles.snapshotName) is damaged")
        }
        var state = PersistentState()
        if let stateBytes {
            guard let decoded = StateFiles.decodeState(stateBytes) else {
                throw RaftLogStorageError.corrupt("\(StateFiles.stateName) is damaged")
            }
            state = decoded
        } else if !snap.isEmpty || info.lastSequence > 0 {
            throw RaftLogStorageError.corrupt("\(StateFiles.stateName) is missing")
        }
        let s = StreamLogRaftStorage(directory: directory, fs: fs, log: log, snap: snap, state: state,
                                     cacheBytes: config.entryCacheBytes)
        s.openScanEntries = config.openScanEntries
        try s.reconcile(first: LogIndex(info.firstSequence), last: LogIndex(info.lastSequence))
        return s
    }

    /// Brings the log, the compaction point and the snapshot into agreement after a crash, and
    /// rebuilds the term index. `first...logLast` is what the log holds (empty when first > logLast).
    private func reconcile(first: LogIndex, last logLast: LogIndex) throws {
        let s = snap.metadata.index, ts = snap.metadata.term
        guard persisted.compactedIndex <= s else {
            throw RaftLogStorageError.corrupt("compaction point \(persisted.compactedIndex) is past the snapshot \(s)")
        }
        var floor = persisted.compactedIndex
        var floorTerm = persisted.compactedTerm
        if first.prev > floor {
            // The log starts later than `raft.state` says: only a finished reset to the snapshot
            // (a crash before `raft.state` was rewritten) leaves that.
            guard first.prev == s else { throw RaftLogStorageError.missingEntry(floor.next) }
            floor = s
            floorTerm = ts
        }
        compactedIndex = floor
        compactedTerm = floorTerm
        if logLast < floor {
            // The log ends below the compaction point: only possible around a reset.
            guard floor == s else { throw RaftLogStorageError.missingEntry(logLast.next) }
            try replaceLog(with: snap)
            return
        }
        last = logLast
        // The newest entries are read (and checked) now; older terms on demand.
        let scanFloor = last.rawValue >= UInt64(openScanEntries) ? LogIndex(last.rawValue - UInt64(openScanEntries) + 1) : .zero
        try rebuildTerms(from: max(first, max(floor.next, scanFloor)))
        // A snapshot the log does not lead up to (a crash inside `applySnapshot` before the
        // reset): the log is stale next to it and is replaced, as `applySnapshot` would have.
        // A log holding the snapshot's (index, term) continues it (log matching) and is kept.
        // (A read error there is thrown, not taken as "stale": replacing would drop entries.)
        if s > floor {
            let matches = s <= last ? try term(at: s) == ts : false
            if !matches {
                try replaceLog(with: snap)
                return
            }
        }
        if first <= floor {
            // A compaction recorded in `raft.state` but not yet done in the log.
            try mapped { _ = try log.compact(upTo: StreamSequence(floor.rawValue + 1)) }
        }
        terms.compact(upTo: floor)
        termsFrom = max(termsFrom, floor.next)
        if last == floor { terms.removeAll() }
        if floor != persisted.compactedIndex || floorTerm != persisted.compactedTerm {
            var st = persisted
            st.compactedIndex = floor
            st.compactedTerm = floorTerm
            try writeStateFile(st)
        }
    }

    /// Reads every entry from `from` to `last` once: checks there is no gap, that every record
    /// sits at its index and that terms never go back, and records the term runs.
    private func rebuildTerms(from: LogIndex) throws {
        terms.removeAll()
        termsFrom = from
        var next = from
        var rounds = 0
        while next <= last {
            let chunk = try mapped { try log.messages(from: StreamSequence(next.rawValue), maxMessages: 4096) }
            guard !chunk.isEmpty else { throw RaftLogStorageError.missingEntry(next) }
            for m in chunk {
                let e = try EntryCodec.entry(m, expected: next)
                if next.prev == compactedIndex && e.term < compactedTerm && next.prev != .zero {
                    throw RaftLogStorageError.corrupt("entry \(next) has term \(e.term) below the compaction point's \(compactedTerm)")
                }
                guard terms.append(index: next, term: e.term) else {
                    throw RaftLogStorageError.corrupt("entry \(next) has term \(e.term) below an earlier entry's")
                }
                next = next.next
            }
            rounds += 1
            precondition(rounds < 1 << 40, "unbounded log scan")
        }
    }

    // MARK: read side

    public func initialState() -> (hardState: HardState, conf: ConfState) {
        var hs = hardState
        // A lazily persisted commit never points past the log (and at least covers the snapshot).
        hs.commit = min(max(hs.commit, snap.metadata.index), last)
        return (hs, snap.metadata.conf)
    }

    public var firstIndex: LogIndex { compactedIndex.next }
    public var lastIndex: LogIndex { last }

    public func term(at index: LogIndex) throws -> Term {
        if index < compactedIndex { throw StorageError.compacted }
        if index == compactedIndex { return compactedTerm }
        if index > last { throw StorageError.unavailable }
        if index >= termsFrom, let t = terms.term(at: index) { return t }
        // Older than the in-memory index (not read at open): one point read from the log.
        guard let m = try mapped({ try log.message(StreamSequence(index.rawValue)) }) else {
            throw RaftLogStorageError.missingEntry(index)
        }
        return try EntryCodec.entry(m, expected: index).term
    }

    public func entries(from: LogIndex, to: LogIndex, maxBytes: Int) throws -> [Entry] {
        if from < firstIndex { throw StorageError.compacted }
        if to > last.next { throw StorageError.unavailable }
        guard from < to else { return [] }
        if let hit = cache.entries(from: from, to: to, maxBytes: maxBytes) { return hit }
        var out: [Entry] = []
        var bytes = 0
        var next = from
        while next < to {
            // Every entry counts at least 24 bytes: no need to decode more than can fit.
            let want = min(to - next, 1024, maxBytes / 24 + 1)
            let chunk = try mapped { try log.messages(from: StreamSequence(next.rawValue), maxMessages: want) }
            guard !chunk.isEmpty else { throw RaftLogStorageError.missingEntry(next) }
            for m in chunk {
                let e = try EntryCodec.entry(m, expected: next)
                if !out.isEmpty && bytes + e.sizeBytes > maxBytes { return out }
                bytes += e.sizeBytes
                out.append(e)
                next = next.next
            }
        }
        return out
    }

    public func snapshot() -> Snapshot { snap }

    /// What opening the log found (a torn tail that was cut off, rebuilt indexes); worth logging.
    public var recoveryReport: RecoveryReport { log.recoveryReport }

    // MARK: write side

    /// Appends (first truncating any suffix from `entries[0].index`). Written, not yet durable:
    /// call `sync()` before sending messages that depend on it.
    public func append(_ entries: [Entry]) throws {
        try checkOpen()
        guard let first = entries.first else { return }
        if first.index > last.next { throw StorageError.gap(expected: last.next, got: first.index) }
        for (i, e) in entries.enumerated() where e.index != first.index + i {
            throw StorageError.gap(expected: first.index + i, got: e.index)
        }
        // Entries already compacted away are skipped; they are committed and therefore equal.
        let toAdd = entries.drop { $0.index < firstIndex }
        guard let f = toAdd.first else { return }
        if f.index <= last { try truncate(after: f.index.prev) }
        var probe = terms
        for e in toAdd where !probe.append(index: e.index, term: e.term) {
            throw RaftLogStorageError.corrupt("append of \(e.index) in \(e.term) after a later term")
        }
        try mapped { _ = try log.append(toAdd.map(EntryCodec.record)) }
        terms = probe
        last = toAdd[toAdd.endIndex - 1].index
        cache.append(toAdd)
        unsynced = true
    }

    /// Drops entries after `index`. Durable on return (StreamLog truncation fsyncs).
    public func truncate(after index: LogIndex) throws {
        try checkOpen()
        if index < compactedIndex { throw StorageError.compacted }
        guard index < last else { return }
        try mapped { try log.truncate(after: StreamSequence(index.rawValue)) }
        last = index
        terms.truncate(after: index)
        termsFrom = min(termsFrom, index.next)
        cache.truncate(after: index)
    }

    /// Records the hard state; `sync()` makes term and vote durable (commit lazily, see above).
    public func setHardState(_ hardState: HardState) {
        self.hardState = hardState
    }

    /// True when `sync()` has something to do for the current Ready round.
    public var needsSync: Bool { unsynced || hardStateNeedsSync }

    /// True when term or vote changed since `raft.state` was last written.
    public var hardStateNeedsSync: Bool {
        hardState.term != persisted.hardState.term || hardState.vote != persisted.hardState.vote
    }

    /// Makes everything appended so far durable with one fsync of the log, then (only when term
    /// or vote changed) writes `raft.state`. Call once per Ready round, before sending its messages.
    public func sync() throws {
        try checkOpen()
        // Also when `unsynced` is clear: a `beginSync` job may still be running elsewhere
        // (StreamLog.sync returns at once when everything is durable).
        try mapped { try log.sync() }
        unsynced = false
        if hardState.term != persisted.hardState.term || hardState.vote != persisted.hardState.vote {
            var st = persisted
            st.hardState = hardState
            try writeStateFile(st)
        }
    }

    /// `sync()` for a driver that fsyncs off its own thread: a term or vote change (rare) is
    /// made durable now, log first, as `sync()` does, and nil returned. Otherwise returns one
    /// fsync of the log, to run on any thread (StreamLog is thread-safe), which covers every
    /// entry appended before this call; nil when nothing was appended since the last one.
    public func beginSync() throws -> (() throws -> Void)? {
        try checkOpen()
        if hardState.term != persisted.hardState.term || hardState.vote != persisted.hardState.vote {
            try sync()
            return nil
        }
        guard unsynced else { return nil }
        unsynced = false
        let log = self.log
        return { try Self.mapped { try log.sync() } }
    }

    /// What the log can do off the owner's thread now, to run on any thread while the owner
    /// goes on: its next step of zeros (`StreamLog.prefillJob`) and the segments a compaction
    /// dropped, made spares or removed (`StreamLog.removalJob`). Nil when neither is due or it
    /// is closed.
    public func backgroundJob() -> (() -> Void)? {
        guard !isClosed else { return nil }
        let fill = log.prefillJob(), removal = log.removalJob()
        if fill == nil && removal == nil { return nil }
        return { fill?(); removal?() }
    }

    /// The removal of the log's spare segments that no new tail took over since the last call
    /// (`StreamLog.releaseIdleSpares`), to run on any thread; nil when there is none.
    public func idleSparesJob() -> (() -> Void)? {
        isClosed ? nil : log.releaseIdleSpares()
    }

    /// `sync()` plus the commit index, even when only the commit changed.
    public func flush() throws {
        try sync()
        if hardState != persisted.hardState {
            var st = persisted
            st.hardState = hardState
            try writeStateFile(st)
        }
    }

    /// Replaces the whole log with a leader's snapshot. Durable on return.
    public func applySnapshot(_ snapshot: Snapshot) throws {
        try checkOpen()
        if snapshot.metadata.index <= snap.metadata.index && !snap.isEmpty { throw StorageError.snapshotOutOfDate }
        // The snapshot file first: from here on, recovery finishes the replacement.
        try writeSnapshotFile(snapshot)
        snap = snapshot
        try replaceLog(with: snapshot)
    }

    /// Empties the log so that the next entry is `snapshot.index + 1`, and records the snapshot
    /// as the compaction point.
    private func replaceLog(with snapshot: Snapshot) throws {
        let s = snapshot.metadata.index
        try mapped {
            if try log.state().lastSequence > s.rawValue { try log.truncate(after: StreamSequence(s.rawValue)) }
            try log.reset(nextSequence: StreamSequence(s.rawValue + 1))
        }
        compactedIndex = s
        compactedTerm = snapshot.metadata.term
        last = s
        terms.removeAll()
        termsFrom = s.next
        cache.removeAll()
        unsynced = false
        var st = persisted
        st.compactedIndex = s
        st.compactedTerm = snapshot.metadata.term
        st.hardState = hardState
        st.hardState.commit = s
        try writeStateFile(st)
    }

    /// Records a snapshot of the application at `index` (applied already). Durable on return.
    public func createSnapshot(index: LogIndex, conf: ConfState, data: [UInt8]) throws {
        try checkOpen()
        if index <= snap.metadata.index { throw StorageError.snapshotOutOfDate }
        let t = try term(at: index)
        let s = Snapshot(metadata: SnapshotMetadata(index: index, term: t, conf: conf), data: data)
        try writeSnapshotFile(s)
        snap = s
    }

    /// Discards entries up to and including `index` (covered by the snapshot). Durable on return.
    public func compact(upTo index: LogIndex) throws {
        try checkOpen()
        guard index <= snap.metadata.index else { throw StorageError.unavailable }
        guard index > compactedIndex else { return }
        let t = try term(at: index)
        // The compaction point first: a crash before the log compaction is finished on open.
        var st = persisted
        st.compactedIndex = index
        st.compactedTerm = t
        st.hardState = hardState
        try writeStateFile(st)
        try mapped { _ = try log.compact(upTo: StreamSequence(index.rawValue + 1)) }
        compactedIndex = index
        compactedTerm = t
        terms.compact(upTo: index)
        termsFrom = max(termsFrom, index.next)
        cache.compact(upTo: index)
        if last == index { terms.removeAll() }
    }

    /// Persists everything (including the commit index) and closes the log. The log is closed
    /// even when persisting fails (a full disk, a failed fsync): left open, it would live on
    /// beside the log its group reopens on the same files (a zero-fill job still writing into
    /// them, a state snapshot written at its deinit). The first error is thrown.
    public func close() throws {
        guard !isClosed else { return }
        defer { isClosed = true }
        var firstError: Error?
        do { try flush() } catch { firstError = error }
        do { try mapped { try log.close() } } catch { firstError = firstError ?? error }
        log.removalJob()?()
        if let firstError { throw firstError }
    }

    // MARK: files

    /// Writes `raft.state` after making the log durable, so the commit it records is on disk.
    private func writeStateFile(_ st: PersistentState) throws {
        // Unconditionally: a `beginSync` job may still be running (a no-op when all is durable).
        try mapped { try log.sync() }
        unsynced = false
        var s = st
        s.hardState.commit = min(s.hardState.commit, last)
        try Self.mapped { try StateFiles.writeAtomically(fs, directory: directory, name: StateFiles.stateName, bytes: StateFiles.encode(s)) }
        persisted = s
    }

    private func writeSnapshotFile(_ s: Snapshot) throws {
        try Self.mapped {
            try StateFiles.writeAtomically(fs, directory: directory, name: StateFiles.snapshotName, bytes: StateFiles.encode(s))
        }
    }

    private func checkOpen() throws {
        if isClosed { throw RaftLogStorageError.closed }
    }

    private func mapped<T>(_ body: () throws -> T) throws -> T { try Self.mapped(body) }

    /// Converts StreamLog and file-system errors into `RaftLogStorageError`.
    static func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as StreamLogError {
            if case .storage(let fe) = e { throw RaftLogStorageError.storage(fe) }
            if case .corrupt = e { throw RaftLogStorageError.corrupt("\(e)") }
            throw RaftLogStorageError.log(e)
        } catch let e as FileSystemError {
            throw RaftLogStorageError.storage(e)
        }
    }
}
