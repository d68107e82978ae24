/// One stored stream message.
public struct StreamMessage: Sendable {
    public let seq: UInt64
    public let subject: String
    /// The NATS header block as published, or nil.
    public let headers: [UInt8]?
    public let payload: [UInt8]
    /// Wall-clock store time, nanoseconds since the Unix epoch.
    public let time: Int64

    public init(seq: UInt64, subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64) {
        self.seq = seq
        self.subject = subject
        self.headers = headers
        self.payload = payload
        self.time = time
    }
}

/// What a stream's store reports in `state` (StreamState of the API).
public struct StoreState: Equatable, Sendable {
    public var messages: UInt64 = 0
    public var bytes: UInt64 = 0
    /// First live sequence; when empty, `lastSeq + 1` (nats-server's convention).
    public var firstSeq: UInt64 = 0
    public var firstTime: Int64 = 0
    public var lastSeq: UInt64 = 0
    public var lastTime: Int64 = 0
    public var numSubjects: Int = 0
    /// Interior gaps between first and last sequence (deleted messages).
    public var numDeleted: Int { messages == 0 ? 0 : Int(lastSeq - firstSeq + 1 - messages) }
}

/// Exactly what JetStream needs from message storage. Implementations are not thread-safe: the
/// JetStream service calls them from its one serial queue.
///
/// Durability contract: after `sync()` returns, everything appended or removed before it
/// survives a crash (kill -9, power loss of a file store). A positive PubAck is only sent after
/// `sync()`.
public protocol MessageStore: AnyObject {
    var state: StoreState { get }
    /// `state.bytes`, without the rest of the state (the usage recount reads it per stream).
    var storedBytes: UInt64 { get }
    /// Appends at `lastSeq + 1` and returns that sequence.
    func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64) throws -> UInt64
    func load(_ seq: UInt64) -> StreamMessage?
    /// First message with sequence ≥ `seq` whose subject matches one of `filters` (none = all).
    func next(from seq: UInt64, filters: [String]) -> StreamMessage?
    /// Last message whose subject matches `filter` (a literal or wildcard subject).
    func last(matching filter: String) -> StreamMessage?
    /// Last sequence stored for a literal subject.
    func lastSequence(forSubject subject: String) -> UInt64?
    /// The first sequence whose time is ≥ `time` (lastSeq + 1 when none).
    func firstSequence(atOrAfter time: Int64) -> UInt64
    /// Messages with sequence ≥ `seq` matching `filters` (none = all).
    func count(from seq: UInt64, filters: [String]) -> UInt64
    /// Live messages per subject, for subjects matching `filter`.
    func subjectCounts(matching filter: String) -> [String: UInt64]
    /// Oldest live sequence of a literal subject.
    func firstSequence(forSubject subject: String) -> UInt64?
    /// Removes one message; false if it was not there.
    @discardableResult func remove(_ seq: UInt64) throws -> Bool
    /// Purges messages matching `subject` (nil = all) with sequence < `upTo` (nil = no bound),
    /// keeping the newest `keep` per the same scope when given. Returns how many went.
    func purge(subject: String?, upTo: UInt64?, keep: UInt64?) throws -> UInt64
    /// Sets the next sequence of an empty store (stream `first_seq`).
    func skip(toNext seq: UInt64) throws
    /// Makes everything so far durable.
    func sync() throws
    /// What `sync()` would do, as a job another thread may run while appends go on: it makes
    /// everything appended before this call durable (nil: nothing to do). Throws `StoreError`.
    func syncJob() -> (() throws -> Void)?
    func close()
    /// Deletes the store's files (stream delete).
    func destroy()
    /// Accounting size of one message (nats-server's formulas, so `bytes` agree).
    func size(subject: String, headers: [UInt8]?, payload: [UInt8]) -> UInt64
    var enforcesLimits: Bool { get }
    /// Takes a stream's (updated) config: limits it enforces, block compression.
    func configure(_ config: StreamConfig) throws
    /// Appends recording the Raft index of the entry that carried the message (clustered
    /// streams), so a restarted replica knows how far its store got.
    func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64) throws -> UInt64
    /// Appends at `seq` (above `lastSeq`; the sequences between are gone), for a mirror that
    /// keeps its origin's sequences. Throws `StoreError` as `append` does.
    func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64, at seq: UInt64) throws
    /// The Raft index of the last message appended with one (0 when none or not tracked).
    var lastRaftIndex: UInt64 { get }
    /// Sequences after `firstSeq` up to `lastSeq` that hold no message, ascending; nil when
    /// more than `limit` (what a replica's stream copy transfers, see `CatchupState`).
    func deletedSequences(limit: Int) -> [UInt64]?
    /// True when `appendBatch` writes a batch all-or-nothing (else it must not be called).
    var appendsBatches: Bool { get }
    /// Appends messages at `lastSeq + 1 ...` in one write, all or nothing, and returns the
    /// first one's sequence. Only when `appendsBatches`.
    func appendBatch(_ messages: [(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64)]) throws -> UInt64
}

extension MessageStore {
    public func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64) throws -> UInt64 {
        try append(subject: subject, headers: headers, payload: payload, time: time)
    }
    public var lastRaftIndex: UInt64 { 0 }
    public var appendsBatches: Bool { false }
    public var storedBytes: UInt64 { state.bytes }
    public func appendBatch(_ messages: [(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64)]) throws -> UInt64 {
        throw StoreError.io("this store does not append batches")
    }
    /// True when the store trims max_msgs / max_bytes / max_msgs_per_subject itself on append.
    public var enforcesLimits: Bool { false }
    /// Hands the stream's config to a store that uses it (no-op otherwise).
    public func configure(_ config: StreamConfig) throws {}

    /// By scanning the messages (bounded by the stream's length).
    public func deletedSequences(limit: Int) -> [UInt64]? {
        let st = state
        guard st.messages > 0 else { return [] }
        var out: [UInt64] = []
        var expect = st.firstSeq
        func gap(upTo end: UInt64) -> Bool {
            guard end > expect else { return true }
            guard out.count + Int(end - expect) <= limit else { return false }
            out.append(contentsOf: expect..<end)
            return true
        }
        while expect <= st.lastSeq, let m = next(from: expect, filters: []), m.seq <= st.lastSeq {
            guard gap(upTo: m.seq) else { return nil }
            expect = m.seq + 1
        }
        return gap(upTo: st.lastSeq + 1) ? out : nil
    }

    func size(of m: StreamMessage) -> UInt64 { size(subject: m.subject, headers: m.headers, payload: m.payload) }
}
