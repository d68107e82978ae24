/// A segmented, LZ4-compressed, crash-safe append log: the storage under every stream and
/// every Raft group.
///
/// Threading model: one lock guards all state. Any number of threads may call any method;
/// appends are serialized (one writer at a time) and readers see every append that returned.
/// fsync never runs under the lock: with `FsyncPolicy.always` a dedicated sync thread fsyncs
/// the tail segment and completes every batch written before that fsync began (group commit),
/// so concurrent appenders share one fsync. Blocking waits (`waitUntilDurable`, `appendAndWait`)
/// must not be called from the completion callbacks, which run on the sync thread.
public final class StreamLog {
    let fs: FileSystem
    public let directory: String
    var config: StreamLogConfig
    let clock: () -> Int64
    let lock = ConditionLock()

    var segments: [Segment] = []
    var core = CoreState()
    var cache = BlockCache<[StoredMessage]>(capacity: 64)
    /// Decompressed bodies for point reads, which decode one record instead of the block.
    var rawCache = BlockCache<[UInt8]>(capacity: 64)
    /// Whether appends try LZ4 (backs off on incompressible data; maintenance always tries).
    var compressionPolicy = CompressionPolicy()
    /// Tombstones produced by limits/age enforcement, written with the next block.
    var pendingTombstones: [Tombstone] = []
    var failure: String?
    var isClosed = false
    /// Deletes replayed at open whose message sits in a damaged block (still counted live;
    /// never served): `repairSegment` applies them.
    var unresolvedDeletes = Set<UInt64>()
    /// The live set was replayed past damaged blocks: which of their messages were live is
    /// unknown, so a range repair cannot tell what to fetch.
    var liveSetUnknown = false
    /// Group commit bookkeeping: every write gets a ticket; `durableTicket` trails behind.
    var writtenTicket: UInt64 = 0
    var durableTicket: UInt64 = 0
    var waiters: [(ticket: UInt64, done: (Result<Void, StreamLogError>) -> Void)] = []
    var syncThreadRunning = false
    var stopSync = false
    /// A `prefillJob` is writing zeros after the tail's `allocated` end (see
    /// StreamLog+Prefill.swift): nothing else writes or cuts the tail's file there meanwhile.
    var fillInFlight = false
    /// Segments dropped with `StreamLogConfig.defersFileRemoval`, still to be removed.
    var droppedFiles: [String] = []
    static let droppedSuffix = ".dropped"
    /// Zeroed, fsync'd segment files a new tail takes over (`StreamLogConfig.spareSegments`).
    var spareFiles: [String] = []
    /// Dropped files a `removalJob` is turning into spares right now.
    var sparesInFlight = 0
    /// The spares that were ready at the last `releaseIdleSpares` (the next one removes those
    /// still untaken).
    var sparesSeenIdle: Set<String> = []
    static let spareSuffix = ".spare"
    /// How many times an operation waited for a zero-fill (tests check the waits happen).
    var fillWaits = 0

    /// What `open` found (torn tail cut off, corruption, rebuilt indexes).
    public private(set) var recoveryReport = RecoveryReport()

    var tail: Segment { segments[segments.count - 1] }

    init(fs: FileSystem, directory: String, config: StreamLogConfig, clock: @escaping () -> Int64) {
        self.fs = fs
        self.directory = directory
        self.config = config
        self.clock = clock
        core.setIndexesSubjects(config.indexesSubjects)
    }

    /// Opens (or creates) the log in `directory`. Only blocks after the state snapshot are
    /// scanned (normally just the tail segment). A torn tail is cut off and reported in
    /// `recoveryReport`; it never makes `open` fail.
    public static func open(directory: String, fileSystem: FileSystem = PosixFileSystem(),
                            config: StreamLogConfig = StreamLogConfig(),
                            clock: @escaping () -> Int64 = StreamLog.systemClock) throws -> StreamLog {
        guard config.segmentMaxBytes >= 4096 else { throw StreamLogError.invalidArgument("segmentMaxBytes must be >= 4096") }
        try checkIndexNeeds(config.limits, indexesSubjects: config.indexesSubjects)
        let log = StreamLog(fs: fileSystem, directory: directory, config: config, clock: clock)
        do {
            try log.recover()
        } catch let e as FileSystemError {
            throw StreamLogError.storage(e)
        }
        log.startSyncThreadIfNeeded()
        return log
    }

    /// Byte and per-subject limits count what only the subject index tracks.
    static func checkIndexNeeds(_ limits: RetentionLimits, indexesSubjects: Bool) throws {
        guard !indexesSubjects, limits.maxBytes != nil || limits.maxMessagesPerSubject != nil else { return }
        throw StreamLogError.invalidArgument("max bytes and max messages per subject need the subject index")
    }

    /// An in-memory log for `storage: memory` streams: the same engine over in-memory files,
    /// never fsync'd. Contents vanish with the object.
    public static func memory(config: StreamLogConfig = StreamLogConfig(),
                              clock: @escaping () -> Int64 = StreamLog.systemClock) throws -> StreamLog {
        var c = config
        c.fsync = .never
        return try open(directory: "/memory", fileSystem: FaultyFileSystem(), config: c, clock: clock)
    }

    /// Wall clock in nanoseconds since the Unix epoch.
    public static func systemClock() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    // MARK: Recovery

    func recover() throws {
        try fs.makeDirectory(directory)
        let names = try fs.list(directory)
        let bases = names.compactMap(Segment.parseBase).sorted()
        // Leftovers of an atomic write, dropped segments whose removal a crash cut short, and
        // spares (only the log that made them uses them).
        for name in names where name.hasSuffix(".tmp") || name.hasSuffix(Self.droppedSuffix) || name.hasSuffix(Self.spareSuffix) {
            try fs.remove(joinPath(directory, name))
        }
        for base in bases {
            let path = joinPath(directory, Segment.fileName(base: base))
            segments.append(Segment(base: base, path: path, file: try fs.open(path, create: false)))
        }
        if segments.isEmpty {
            try createSegment(base: 1)
            try writeSnapshot()
            return
        }
        // Sealed segments: block tables from their index files (rebuilt when needed).
        for seg in segments.dropLast() {
            seg.sealed = true
            try loadBlockTable(seg)
        }
        // The tail: scanned, and cut at the first bad block.
        let t = tail
        let scan = try t.scan(resync: false)
        t.blocks = scan.blocks
        t.size = scan.validEnd
        t.allocated = scan.fileSize
        if scan.validEnd < scan.fileSize, try t.isZero(scan.validEnd..<scan.fileSize) {
            // Preallocated space that no append reached (or whose writes never became durable).
        } else if scan.validEnd < scan.fileSize {
            recoveryReport.truncatedTail = CorruptRange(segment: t.path, offset: scan.validEnd,
                                                        length: scan.fileSize - scan.validEnd,
                                                        sequences: scan.badRange?.sequences)
            try t.file.truncate(to: scan.validEnd)
            try t.file.sync()
            t.allocated = scan.validEnd
        }
        try? fs.remove(t.indexPath)
        let replayed = try replayFromSnapshotOrAll()
        // Rebuilt from the blocks while some were unreadable: their messages count as deleted.
        liveSetUnknown = recoveryReport.fullReplay && !recoveryReport.corruptions.isEmpty
        try enforceLimitsLocked(now: clock())
        let changed = replayed > 0 || !pendingTombstones.isEmpty || recoveryReport.truncatedTail != nil
        try flushPendingTombstones()
        if config.fsync != .never { try tail.file.sync() }
        // A crash inside compaction or `reset` can leave whole segments below the floor.
        let dropped = segments.count > 1 && segments[1].base <= core.floor
        try dropSegmentsBelowFloor()
        // A clean close left an exact snapshot: skip rewriting it (costly with 1M subjects).
        if changed && !dropped { try writeSnapshot() }
    }

    /// Loads a sealed segment's block table from its index file, or rebuilds it by scanning.
    func loadBlockTable(_ seg: Segment) throws {
        let size = try seg.file.size()
        if fs.fileExists(seg.indexPath), let bytes = try? readWholeFile(seg.indexPath),
           let blocks = SegmentIndexFile.decode(bytes, segmentSize: size) {
            seg.blocks = blocks
            seg.size = size
            return
        }
        let scan = try seg.scan(resync: true)
        seg.blocks = scan.blocks
        seg.size = size
        recoveryReport.rebuiltIndexes.append(seg.indexPath)
        if let bad = scan.badRange {
            recoveryReport.corruptions.append(bad)
        } else {
            try writeIndexFile(seg)
        }
    }

    func readWholeFile(_ path: String) throws -> [UInt8] {
        let f = try fs.open(path, create: false)
        defer { f.close() }
        return try f.read(count: Int(try f.size()), at: 0)
    }

    func writeIndexFile(_ seg: Segment) throws {
        let tmp = seg.indexPath + ".tmp"
        let f = try fs.open(tmp, create: true)
        try f.truncate(to: 0)
        try f.write(SegmentIndexFile.encode(blocks: seg.blocks, segmentSize: seg.size), at: 0)
        if config.fsync != .never { try f.sync() }
        f.close()
        try fs.rename(tmp, to: seg.indexPath)
    }

    /// Returns the number of blocks replayed.
    func replayFromSnapshotOrAll() throws -> Int {
        let snapPath = joinPath(directory, StateSnapshot.fileName)
        if fs.fileExists(snapPath), let bytes = try? readWholeFile(snapPath),
           let snap = StateSnapshot.decode(bytes), let start = validatedStart(snap) {
            core = snap.state
            core.setIndexesSubjects(config.indexesSubjects)
            return try replay(fromSegment: start.segment, offset: start.offset)
        }
        recoveryReport.fullReplay = true
        return max(1, try replayAll())
    }

    /// Rebuilds the live-set bookkeeping from every block. `strict`: a damaged block throws
    /// instead of being skipped (whose messages would count as deleted).
    func replayAll(strict: Bool = false) throws -> Int {
        core = CoreState()
        core.setIndexesSubjects(config.indexesSubjects)
        unresolvedDeletes = []
        // The first stored record, wherever it is: a first segment that lost its bytes must not
        // pin the floor below records that are gone (state() reads the floor's record).
        core.floor = segments.lazy.compactMap { $0.blocks.first(where: { $0.kind == .messages })?.firstSeq }.first
            ?? segments[0].base
        core.lastSeq = core.floor - 1
        return try replay(fromSegment: 0, offset: 0, strict: strict)
    }

    /// Where to resume replay for a snapshot, or nil when the snapshot does not match the files.
    func validatedStart(_ snap: StateSnapshot) -> (segment: Int, offset: UInt64)? {
        // The snapshot's first message must still be stored. A sealed segment that lost its
        // bytes (finding 16: cut back to 0 bytes) is reported as corrupt, so a replica copies
        // the stream from its leader, and the log is rebuilt from the blocks that remain.
        let floor = snap.state.floor
        if snap.state.messages > 0 {
            let found = locate(floor)
            if found.map({ $0.1.kind != .messages || $0.1.firstSeq > floor }) ?? true {
                let seg = segments.last(where: { $0.base <= floor }) ?? segments[0]
                let next = found?.1.firstSeq ?? snap.state.lastSeq + 1
                recoveryReport.corruptions.append(CorruptRange(segment: seg.path, offset: seg.size, length: 0,
                                                               sequences: floor...max(floor, next - 1)))
                return nil
            }
        }
        guard let i = segments.firstIndex(where: { $0.base == snap.coveredSegment }) else { return nil }
        let seg = segments[i]
        if snap.coveredOffset == 0 {
            let prevLast = segments[..<i].last(where: { !$0.blocks.isEmpty })?.lastSeq
            guard prevLast == nil || prevLast == snap.state.lastSeq else { return nil }
            return (i, 0)
        }
        guard let b = seg.blocks.last(where: { $0.end <= snap.coveredOffset }), b.end == snap.coveredOffset,
              b.lastSeq == snap.state.lastSeq else { return nil }
        return (i, snap.coveredOffset)
    }

    /// Applies every block from a position on: messages first, then their tombstones.
    @discardableResult
    func replay(fromSegment first: Int, offset: UInt64, strict: Bool = false) throws -> Int {
        var tombstones: [Tombstone] = []
        var blocks = 0
        for i in first..<segments.count {
            let seg = segments[i]
            for ref in seg.blocks where i > first || ref.offset >= offset {
                blocks += 1
                switch ref.kind {
                case .messages:
                    let msgs: [StoredMessage]
                    do { msgs = try seg.readMessages(ref) } catch StreamLogError.corrupt(let r) {
                        if strict { throw StreamLogError.corrupt(r) }
                        if !recoveryReport.corruptions.contains(r) { recoveryReport.corruptions.append(r) }
                        continue
                    }
                    for m in msgs { applyReplayed(m) }
                case .tombstones:
                    let (h, bytes) = try seg.readBlock(ref)
                    guard let raw = BlockCodec.rawBody(bytes, header: h), let ts = Tombstone.decodeAll(raw) else { continue }
                    tombstones.append(contentsOf: ts)
                    core.advanceLastSeq(to: h.lastSeq)
                }
            }
        }
        for t in tombstones { try applyTombstone(t) }
        return blocks
    }

    func applyReplayed(_ m: StoredMessage) {
        let seq = m.sequence.rawValue
        if m.raftIndex > 0 { core.lastRaftIndex = m.raftIndex; core.lastTerm = m.term }
        core.lastTimestamp = m.timestamp
        guard seq > core.lastSeq else { return }
        core.add(seq: seq, subject: m.subject, size: m.accountedSize)
    }

    func applyTombstone(_ t: Tombstone) throws {
        switch t {
        case .delete(let s):
            guard core.isLive(s) else { return }
            let m: StoredMessage
            do { m = try messageLocked(s) } catch StreamLogError.corrupt {
                // Its subject and size are in a damaged block: applied by `repairSegment`.
                unresolvedDeletes.insert(s)
                return
            } catch { return }
            core.remove(seq: s, subject: m.subject, size: m.accountedSize)
        case .floor(let s):
            try advanceFloor(to: s)
        case .reset(let s):
            // Replay applies tombstones after the records, so records appended after the reset
            // (same tail segment) were already replayed: the last Raft entry is theirs, if any.
            try advanceFloor(to: s)
            if core.messages > 0 {
                try restoreLastRecordInfo()
            } else {
                core.lastRaftIndex = 0
                core.lastTerm = 0
            }
        }
    }

    // MARK: Segments and snapshot

    func createSegment(base: UInt64) throws {
        if let old = segments.last { try trimPreallocation(old) }
        let path = joinPath(directory, Segment.fileName(base: base))
        if let seg = try takeOverSpare(as: path, base: base) {
            segments.append(seg)
        } else {
            let file = try fs.open(path, create: true)
            try file.truncate(to: 0)
            segments.append(Segment(base: base, path: path, file: file))
        }
        try fs.syncDirectory(directory)
    }

    /// Seals the tail once it is full (`roll`).
    func rollIfNeeded() throws {
        guard tail.size >= config.segmentMaxBytes else { return }
        try roll()
    }

    /// Seals the tail (fsync, index file) and starts a new one named by the next sequence.
    func roll() throws {
        let old = tail
        try trimPreallocation(old)
        if config.fsync != .never { try old.file.sync() }
        old.sealed = true
        try writeIndexFile(old)
        try createSegment(base: core.lastSeq + 1)
        try writeSnapshot()
    }

    /// Atomically replaces the state snapshot with the current state at the current tail end.
    func writeSnapshot() throws {
        let snap = StateSnapshot(coveredSegment: tail.base, coveredOffset: tail.size, state: core)
        let path = joinPath(directory, StateSnapshot.fileName)
        let tmp = path + ".tmp"
        let f = try fs.open(tmp, create: true)
        try f.truncate(to: 0)
        try f.write(snap.encode(), at: 0)
        if config.fsync != .never { try f.sync() }
        f.close()
        try fs.rename(tmp, to: path)
        if config.fsync != .never { try fs.syncDirectory(directory) }
    }

    /// Flushes, writes the snapshot and stops the sync thread. Further calls throw `.closed`.
    public func close() throws {
        defer { stopSyncThread() }
        try lock.withLock {
            guard !isClosed else { return }
            // A reopened log must not find a zero-fill of this one still writing.
            awaitFill()
            awaitSpares()
            // Spares are for this log's next segments only: the owner's `removalJob` removes
            // them with what is still dropped (or the next open does).
            droppedFiles += spareFiles
            spareFiles = []
            defer { isClosed = true; lock.broadcast(); lock.signalWork() }
            try mapErrors {
                try flushPendingTombstones()
                if config.fsync != .never && failure == nil { try tail.file.sync() }
                durableTicket = writtenTicket
                try writeSnapshot()
            }
        }
    }

    deinit {
        if !isClosed { try? close() }
    }

    /// Runs `body`, converting file-system errors into `StreamLogError.storage`.
    func mapErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as FileSystemError { throw StreamLogError.storage(e) }
    }

    func checkWritable() throws {
        if isClosed { throw StreamLogError.closed }
        if let failure { throw StreamLogError.failed(failure) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
