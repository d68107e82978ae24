/// When to fsync.
public enum FsyncPolicy: Equatable, Sendable {
    /// Group commit: a sync thread fsyncs; each append learns when its batch is durable.
    case always
    /// The sync thread fsyncs at most this often (nanoseconds); completions fire after that fsync.
    case interval(nanoseconds: Int64)
    /// Never fsync (memory-like); completions fire at once and promise nothing.
    case never
    /// No sync thread: the owner makes appends durable with `sync()` (one fsync for everything
    /// written so far; `waitUntilDurable` also fsyncs, on the caller's thread). Structural
    /// changes (truncate, compact, segment roll, snapshot) fsync as with `.always`. For many
    /// small logs driven by one owner, e.g. Raft groups whose driver syncs once per round.
    case manual
}

/// What to do when a limit is reached.
public enum DiscardPolicy: Equatable, Sendable {
    /// Remove the oldest messages to make room.
    case old
    /// Reject the new message with the matching `StreamLogError`.
    case new
}

/// Stream limits (JetStream stream config). nil means unlimited. Changeable at runtime.
public struct RetentionLimits: Equatable, Sendable {
    public var maxMessages: UInt64?
    public var maxBytes: UInt64?
    /// Nanoseconds; messages older than this are removed by `expire(now:)` and on append.
    public var maxAgeNanos: Int64?
    public var maxMessagesPerSubject: UInt64?
    /// Largest headers + payload accepted (NATS `max_msg_size`).
    public var maxMessageSize: UInt64?
    public var discard: DiscardPolicy
    /// With discard new: apply the per-subject limit as a rejection too (NATS `discard_new_per_subject`).
    public var discardNewPerSubject: Bool

    public init(maxMessages: UInt64? = nil, maxBytes: UInt64? = nil, maxAgeNanos: Int64? = nil,
                maxMessagesPerSubject: UInt64? = nil, maxMessageSize: UInt64? = nil,
                discard: DiscardPolicy = .old, discardNewPerSubject: Bool = false) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.maxAgeNanos = maxAgeNanos
        self.maxMessagesPerSubject = maxMessagesPerSubject
        self.maxMessageSize = maxMessageSize
        self.discard = discard
        self.discardNewPerSubject = discardNewPerSubject
    }
}

/// Configuration of one log.
public struct StreamLogConfig: Sendable {
    /// A segment is sealed and a new one started once it reaches this size.
    public var segmentMaxBytes: UInt64
    public var fsync: FsyncPolicy
    /// LZ4-compress blocks when that saves space (appends back off on data where LZ4 does not
    /// pay: see `CompressionPolicy`).
    public var compression: Bool
    public var limits: RetentionLimits
    /// Maintenance rewrites sealed segments whose live fraction is below this...
    public var rewriteLiveFractionBelow: Double
    /// ...or whose average block holds fewer raw bytes than this.
    public var rewriteSmallBlockBytes: Int
    /// Target raw size of blocks written by maintenance.
    public var rewriteBlockBytes: Int
    /// 0: off. Otherwise the tail segment's file is extended with zeros ahead of the appends, by
    /// up to this many bytes at a time (by the file's own size while it is smaller, so a small
    /// log's file stays within twice its data). An append that fills space already in the file
    /// does not change the file's size, so its fsync does not also have to persist the inode
    /// (`fdatasync` on ext4 here: about half the time). Zeros after the last block are unused
    /// space at open, not a torn write; a sealed segment is cut to its blocks.
    public var preallocateBytes: UInt64
    /// false: the log keeps only which sequences are live, no per-subject index and no byte
    /// total (`state()` reports 0 bytes and subjects; subject reads, per-subject and byte
    /// limits are not for such a log). A prefix removal (`compact`) then needs no read of the
    /// blocks it drops, where a full log reads every record below the new floor to take its
    /// subject and size off the totals. The Raft log's mode: it asks nothing of subjects.
    public var indexesSubjects: Bool
    /// true: a segment dropped below the floor is renamed to `<name>.dropped` and left to
    /// `StreamLog.removalJob`, which the owner runs on a thread of its choosing (unlinking a
    /// cached 16 MiB segment took about 5 ms here); open removes leftovers of a crash.
    public var defersFileRemoval: Bool
    /// With `defersFileRemoval`: up to this many dropped segments are kept as spares instead of
    /// being removed, zeroed and fsync'd by the job, and a new tail segment takes one over
    /// (renamed into place, its zeros already allocated). Writing into a file whose pages are
    /// still cached avoids growing the page cache, which was this machine's dearest part of a
    /// write (see StreamLog+Recycle.swift). Costs up to this many segments of disk per log.
    public var spareSegments: Int

    public init(segmentMaxBytes: UInt64 = 64 << 20, fsync: FsyncPolicy = .always, compression: Bool = true,
                limits: RetentionLimits = RetentionLimits(), rewriteLiveFractionBelow: Double = 0.5,
                rewriteSmallBlockBytes: Int = 4096, rewriteBlockBytes: Int = 256 << 10, preallocateBytes: UInt64 = 0,
                indexesSubjects: Bool = true, defersFileRemoval: Bool = false, spareSegments: Int = 0) {
        self.indexesSubjects = indexesSubjects
        self.defersFileRemoval = defersFileRemoval
        self.spareSegments = max(0, spareSegments)
        self.preallocateBytes = preallocateBytes
        self.segmentMaxBytes = segmentMaxBytes
        self.fsync = fsync
        self.compression = compression
        self.limits = limits
        self.rewriteLiveFractionBelow = rewriteLiveFractionBelow
        self.rewriteSmallBlockBytes = rewriteSmallBlockBytes
        self.rewriteBlockBytes = rewriteBlockBytes
    }
}

/// Errors of the log. The limit errors carry the exact NATS wording in `description`.
public enum StreamLogError: Error, Equatable, CustomStringConvertible {
    case maxMessagesExceeded
    case maxBytesExceeded
    case maxMessagesPerSubjectExceeded
    case messageTooLarge
    /// A block failed its CRC (or would not decode): the exact range is given.
    case corrupt(CorruptRange)
    case storage(FileSystemError)
    /// An earlier fsync failed; the log refuses writes until reopened (fsync errors are sticky).
    case failed(String)
    case closed
    case invalidArgument(String)
    /// The message was removed (deleted, purged, truncated, or below the first sequence).
    case notFound

    public var description: String {
        switch self {
        case .maxMessagesExceeded: return "maximum messages exceeded"
        case .maxBytesExceeded: return "maximum bytes exceeded"
        case .maxMessagesPerSubjectExceeded: return "maximum messages per subject exceeded"
        case .messageTooLarge: return "message size exceeds maximum allowed"
        case .corrupt(let r): return "corrupt log: \(r)"
        case .storage(let e): return "storage error: \(e)"
        case .failed(let why): return "log failed: \(why)"
        case .closed: return "log is closed"
        case .invalidArgument(let why): return "invalid argument: \(why)"
        case .notFound: return "no message found"
        }
    }
}

/// Stream-level state (JetStream STREAM.INFO).
public struct StreamLogState: Equatable, Sendable {
    public var messages: UInt64
    public var bytes: UInt64
    /// First live sequence; `lastSequence + 1` when empty (as NATS reports after a purge).
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    public var subjectCount: Int
    /// Sequences between first and last that are gone.
    public var deletedCount: UInt64
    /// Messages per subject, when requested.
    public var subjects: [String: UInt64]?
}

/// What `open` found and did.
public struct RecoveryReport: Equatable, Sendable {
    /// A torn or corrupt tail that was cut off: the segment, offset and number of bytes dropped.
    public var truncatedTail: CorruptRange?
    /// Damage found inside sealed segments (never skipped silently; reads there throw).
    public var corruptions: [CorruptRange] = []
    /// Segment index files that were missing or damaged and rebuilt.
    public var rebuiltIndexes: [String] = []
    /// True when the state snapshot was missing, stale or damaged and every segment was replayed.
    public var fullReplay = false
}
