import Foundation
import StreamLog

/// `storage: file` streams on the project's StreamLog (segmented, LZ4, CRC-checked, group
/// commit). Appends are written at once and made durable by `sync()`, which waits for the
/// log's fsync of everything appended so far; the JetStream service only sends a positive
/// PubAck after that. Count limits (max_msgs, max_bytes, max_msgs_per_subject, discard) are
/// enforced inside the log on append.
final class StreamLogStore: MessageStore {
    private let log: StreamLog
    private var lastTicket: UInt64 = 0
    private var durableTicket: UInt64 = 0
    let directory: String
    /// The first corrupt block a read met (reads never serve it; the replica repairs).
    private var corruptRead: CorruptRange?
    /// Called (on the reading thread) when a read meets the first corrupt block since open or
    /// the last `clearReadCorruption`.
    private var readCorruptionHandler: (() -> Void)?
    private let corruptLock = NSLock()

    /// Segment size of stream logs: 64 MiB, or `CLUSTERD_STREAM_SEGMENT_BYTES` (a test setting:
    /// small segments make short chaos runs seal some, see docs/chaos.md; at least 4096).
    static let segmentMaxBytes: UInt64 = {
        if let v = ProcessInfo.processInfo.environment["CLUSTERD_STREAM_SEGMENT_BYTES"], let n = UInt64(v) {
            return max(4096, n)
        }
        return StreamLogConfig().segmentMaxBytes
    }()

    /// `fileSystem` is the log's file seam (tests pass a fault-injecting one). `fsync`: group
    /// commit on the log's own thread (one node), or `.manual` for a clustered replica whose
    /// durability is its Raft log's (no thread per stream; `sync()` fsyncs on the caller).
    init(directory: String, config: StreamConfig, fileSystem: FileSystem = PosixFileSystem(),
         fsync: FsyncPolicy = .always) throws {
        self.directory = directory
        do {
            log = try StreamLog.open(directory: directory, fileSystem: fileSystem,
                                     config: StreamLogConfig(segmentMaxBytes: Self.segmentMaxBytes, fsync: fsync,
                                                             compression: Self.compresses(config),
                                                             limits: StreamLogStore.limits(config)),
                                     clock: JSTime.nowNanos)
        } catch {
            throw StoreError.io("\(error)")
        }
    }

    static func limits(_ c: StreamConfig) -> RetentionLimits {
        RetentionLimits(maxMessages: c.maxMsgs > 0 ? UInt64(c.maxMsgs) : nil,
                        maxBytes: c.maxBytes > 0 ? UInt64(c.maxBytes) : nil,
                        maxAgeNanos: nil, // age is applied by the stream's tick (consumers are told)
                        maxMessagesPerSubject: c.maxMsgsPerSubject > 0 ? UInt64(c.maxMsgsPerSubject) : nil,
                        maxMessageSize: c.maxMsgSize > 0 ? UInt64(c.maxMsgSize) : nil,
                        discard: c.discard == .new ? .new : .old,
                        discardNewPerSubject: c.discardNewPerSubject)
    }

    var enforcesLimits: Bool { true }

    /// Whether blocks are LZ4-compressed: only when the stream asks (`compression: s2`, the
    /// name NATS clients send; clusterd's block codec is LZ4). `none`, NATS' default, stores
    /// raw blocks, so a stream that did not ask pays no compression CPU on its appends.
    static func compresses(_ c: StreamConfig) -> Bool { c.compression == "s2" }

    /// A stream update: new limits (applied at once) and compression (for later blocks).
    func configure(_ config: StreamConfig) throws {
        log.setCompression(Self.compresses(config))
        do { try log.updateLimits(StreamLogStore.limits(config)) } catch { throw map(error) }
    }

    var storedBytes: UInt64 { log.storedBytes }

    var state: StoreState {
        guard let s = try? log.state() else { return StoreState() }
        var out = StoreState()
        out.messages = s.messages
        out.bytes = s.bytes
        out.firstSeq = s.messages == 0 ? s.lastSequence + 1 : s.firstSequence
        out.firstTime = s.firstTimestamp
        out.lastSeq = s.lastSequence
        out.lastTime = s.lastTimestamp
        out.numSubjects = s.subjectCount
        return out
    }

    func size(subject: String, headers: [UInt8]?, payload: [UInt8]) -> UInt64 {
        NewMessage(subject: subject, payload: payload, headers: headers ?? [], timestamp: 0).accountedSize
    }

    func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64) throws -> UInt64 {
        try append(subject: subject, headers: headers, payload: payload, time: time, raftIndex: 0)
    }

    var lastRaftIndex: UInt64 { log.lastRaftEntry.index }
    var lastRaftTerm: UInt64 { log.lastRaftEntry.term }

    /// Removes the messages whose Raft index is above `index` (durable on return).
    func truncate(afterRaftIndex index: UInt64) throws {
        do { try log.truncate(afterRaftIndex: index) } catch { throw StoreError.io("\(error)") }
    }

    func deletedSequences(limit: Int) -> [UInt64]? { log.deletedSequences(limit: limit) }

    /// Blocks found corrupt when the log was opened (their messages are not served).
    var corruptionsOnOpen: Int { log.recoveryReport.corruptions.count }
    var openCorruptions: [CorruptRange] { log.recoveryReport.corruptions }

    /// The sealed segment a damage report is in (repairable by range), nil for the tail.
    func sealedSegmentBase(of bad: CorruptRange) -> UInt64? { log.sealedSegmentBase(ofPath: bad.segment) }

    /// Seals the tail segment when `bad` lies in it, so a running replica repairs it by range
    /// like a sealed one (`StreamLog.sealTail(ifAt:)`); its base, or nil when `bad` is not in
    /// the tail. Throws when sealing failed (writing the segment's index, opening a new tail).
    func sealTail(holding bad: CorruptRange) throws -> UInt64? { try log.sealTail(ifAt: bad.segment) }

    /// The live messages a damaged sealed segment lost (see `StreamLog.damage(inSegment:)`).
    func damage(inSegment base: UInt64) throws -> SegmentDamage? { try log.damage(inSegment: base) }

    /// Rebuilds a damaged sealed segment with the lost messages fetched from another replica.
    func repairSegment(base: UInt64, with messages: [StoredMessage]) throws -> Int {
        try log.repairSegment(base: base, with: messages)
    }

    /// Forgets the damage reads met (after a repair; reads report new damage again).
    func clearReadCorruption() { corruptLock.withLock { corruptRead = nil } }
    /// Opening cut the last segment at a bad record (a torn write, or corruption in it).
    var tailCutOnOpen: Bool { log.recoveryReport.truncatedTail != nil }

    /// Sealed segments to scrub (`scrub(segment:)`), oldest first.
    var sealedSegments: [UInt64] { log.sealedSegmentBases() }

    /// CRC-checks one sealed segment: the first bad block, or nil (sound, gone, or closed).
    func scrub(segment base: UInt64) -> CorruptRange? {
        (try? log.verifySegment(base: base)) ?? nil
    }

    /// The first corrupt block a read has met since open, if any.
    var corruptionSeenByReads: CorruptRange? { corruptLock.withLock { corruptRead } }

    /// Sets what runs when reads meet a corrupt block (`corruptionSeenByReads` became set);
    /// runs it now if they already did.
    func onReadCorruption(_ handler: @escaping () -> Void) {
        let seen = corruptLock.withLock { () -> Bool in
            readCorruptionHandler = handler
            return corruptRead != nil
        }
        if seen { handler() }
    }

    /// A read: a corrupt block reads as absent (never served) and is remembered for repair.
    private func reading<T>(_ body: () throws -> T) -> T? {
        do {
            return try body()
        } catch StreamLogError.corrupt(let r) {
            let first = corruptLock.withLock { () -> (() -> Void)? in
                guard corruptRead == nil else { return nil }
                corruptRead = r
                return readCorruptionHandler ?? {}
            }
            first?()
            return nil
        } catch {
            return nil
        }
    }

    func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64) throws -> UInt64 {
        do {
            let r = try log.append([NewMessage(subject: subject, payload: payload, headers: headers ?? [], timestamp: time,
                                               raftIndex: raftIndex)])
            lastTicket = max(lastTicket, r.ticket)
            return r.lastSequence
        } catch {
            throw map(error)
        }
    }

    func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64, at seq: UInt64) throws {
        do {
            let r = try log.append([NewMessage(subject: subject, payload: payload, headers: headers ?? [], timestamp: time,
                                               raftIndex: raftIndex)], at: seq)
            lastTicket = max(lastTicket, r.ticket)
        } catch {
            throw map(error)
        }
    }

    var appendsBatches: Bool { true }

    /// One StreamLog block for the whole batch (the log's append is all-or-nothing).
    func appendBatch(_ messages: [(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64)]) throws -> UInt64 {
        do {
            let r = try log.append(messages.map {
                NewMessage(subject: $0.subject, payload: $0.payload, headers: $0.headers ?? [], timestamp: $0.time,
                           raftIndex: $0.raftIndex)
            })
            lastTicket = max(lastTicket, r.ticket)
            return r.firstSequence
        } catch {
            throw map(error)
        }
    }

    private func map(_ error: Error) -> StoreError {
        switch error as? StreamLogError {
        case .maxMessagesExceeded?: return .maxMessages
        case .maxBytesExceeded?: return .maxBytes
        case .maxMessagesPerSubjectExceeded?: return .maxMessagesPerSubject
        case .messageTooLarge?: return .messageTooLarge
        case .storage(let e)?: return StoreError(e)
        case .corrupt?: return .corrupt("\(error)")
        default: return .io("\(error)")
        }
    }

    private func convert(_ m: StoredMessage?) -> StreamMessage? {
        guard let m else { return nil }
        return StreamMessage(seq: m.sequence.rawValue, subject: m.subject, headers: m.headers.isEmpty ? nil : m.headers,
                             payload: m.payload, time: m.timestamp)
    }

    func load(_ seq: UInt64) -> StreamMessage? { convert(reading { try log.message(StreamSequence(seq)) } ?? nil) }

    func next(from seq: UInt64, filters: [String]) -> StreamMessage? {
        let all = filters.isEmpty || filters.contains(">")
        let filter: ((String) -> Bool)? = all ? nil : { s in filters.contains { Subject.matches(pattern: $0, subject: s) } }
        return convert(reading { try log.messages(from: StreamSequence(max(seq, 1)), maxMessages: 1, filter: filter) }?.first)
    }

    func last(matching filter: String) -> StreamMessage? {
        if !Subject.hasWildcard(filter) { return convert(reading { try log.lastMessage(subject: filter) } ?? nil) }
        let subjects = subjectCounts(matching: filter).keys
        var best: StreamMessage?
        for s in subjects {
            if let m = convert(reading { try log.lastMessage(subject: s) } ?? nil), m.seq > (best?.seq ?? 0) { best = m }
        }
        return best
    }

    func lastSequence(forSubject subject: String) -> UInt64? {
        (try? log.lastMessage(subject: subject))?.sequence.rawValue
    }

    func firstSequence(forSubject subject: String) -> UInt64? {
        next(from: state.firstSeq, filters: [subject])?.seq
    }

    func firstSequence(atOrAfter time: Int64) -> UInt64 {
        if let s = try? log.firstSequence(atOrAfter: time) { return s.rawValue }
        return state.lastSeq + 1
    }

    func count(from seq: UInt64, filters: [String]) -> UInt64 {
        guard let s = try? log.state() else { return 0 }
        if s.messages == 0 || seq > s.lastSequence { return 0 }
        let start = max(seq, s.firstSequence)
        let all = filters.isEmpty || filters.contains(">")
        if all && start == s.firstSequence { return s.messages }
        if all && s.deletedCount == 0 { return s.lastSequence - start + 1 }
        if !all && start <= s.firstSequence && filters.allSatisfy({ !Subject.hasWildcard($0) }),
           let subjects = (try? log.state(perSubject: true))?.subjects {
            return Set(filters).reduce(0) { $0 + (subjects[$1] ?? 0) }
        }
        // Scan in pages; bounded by the log's length.
        var n: UInt64 = 0
        var from = start
        let filter: ((String) -> Bool)? = all ? nil : { subj in filters.contains { Subject.matches(pattern: $0, subject: subj) } }
        while from <= s.lastSequence {
            guard let page = try? log.messages(from: StreamSequence(from), maxMessages: 4096, filter: filter), let last = page.last else { break }
            n += UInt64(page.count)
            from = last.sequence.rawValue + 1
        }
        return n
    }

    func subjectCounts(matching filter: String) -> [String: UInt64] {
        let subjects = (try? log.state(perSubject: true))?.subjects ?? [:]
        if filter.isEmpty || filter == ">" { return subjects }
        return subjects.filter { Subject.matches(pattern: filter, subject: $0.key) }
    }

    @discardableResult
    func remove(_ seq: UInt64) throws -> Bool {
        do { return try log.delete(StreamSequence(seq)) } catch { throw map(error) }
    }

    func purge(subject: String?, upTo: UInt64?, keep: UInt64?) throws -> UInt64 {
        do {
            guard let subject, Subject.hasWildcard(subject) else {
                let n = try log.purge(.init(subject: subject, keep: keep, upToSequence: upTo))
                // A whole-stream purge up to a sequence past the end moves the next one there
                // (nats-server's compact; probed against 2.15.1; the memory store does the same).
                if subject == nil, keep == nil, let upTo, state.messages == 0, upTo > state.lastSeq + 1 {
                    _ = try log.compact(upTo: StreamSequence(upTo))
                }
                return n
            }
            // The log purges one literal subject at a time; a wildcard keeps `keep` overall.
            var victims: [UInt64] = []
            var s = state.firstSeq
            while let m = next(from: s, filters: [subject]) {
                if let upTo, m.seq >= upTo { break }
                victims.append(m.seq)
                s = m.seq + 1
            }
            if let keep, keep > 0 { victims = Array(victims.dropLast(Int(min(UInt64(victims.count), keep)))) }
            var n: UInt64 = 0
            for v in victims where try log.delete(StreamSequence(v)) { n += 1 }
            return n
        } catch let e as StoreError {
            throw e
        } catch {
            throw map(error)
        }
    }

    func skip(toNext seq: UInt64) throws {
        guard state.messages == 0, seq > state.lastSeq + 1 else { return }
        do { _ = try log.compact(upTo: StreamSequence(seq)) } catch { throw map(error) }
    }

    func sync() throws {
        let ticket = lastTicket
        guard let job = syncJob() else { return }
        try job()
        durableTicket = ticket
    }

    /// The log's sync is thread-safe (its fsync runs outside the log's lock), so the job only
    /// carries the ticket to reach. Run elsewhere, it leaves `durableTicket` behind: the next
    /// `sync()` then finds the ticket durable and does nothing.
    func syncJob() -> (() throws -> Void)? {
        guard lastTicket > durableTicket else { return nil }
        let ticket = lastTicket, log = self.log
        return {
            do { try log.waitUntilDurable(ticket) } catch { throw self.map(error) }
        }
    }

    func close() { try? log.close() }

    func destroy() {
        try? log.close()
        AtomicFile.removeTree(directory)
    }
}
