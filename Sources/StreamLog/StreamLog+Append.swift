/// Where an appended batch landed, and the ticket to wait on for its durability.
public struct AppendResult: Equatable, Sendable {
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    /// Pass to `waitUntilDurable`; the batch is durable once the log's durable ticket reaches it.
    public var ticket: UInt64
}

extension StreamLog {
    /// Appends a batch as one block. Returns once written (readable), not necessarily durable:
    /// use `appendAndWait`, `waitUntilDurable(result.ticket)` or the `onDurable` variant.
    /// The batch is all-or-nothing: limit rejections and storage errors leave the log unchanged.
    @discardableResult
    public func append(_ batch: [NewMessage]) throws -> AppendResult {
        try append(batch, onDurable: nil)
    }

    /// Appends and calls `onDurable` once the batch is durable under the log's fsync policy
    /// (at once for `.never`). The callback runs on the sync thread or inline; keep it short.
    @discardableResult
    public func append(_ batch: [NewMessage], onDurable: ((Result<Void, StreamLogError>) -> Void)?) throws -> AppendResult {
        try append(batch, at: nil, onDurable: onDurable)
    }

    /// Appends a batch whose first message takes sequence `first` (above the last one; nil:
    /// the next), for a copy that keeps its origin's sequences (a mirror): the sequences
    /// skipped are gone, as deleted ones are, and come back so after a restart (the records
    /// carry their sequences).
    @discardableResult
    public func append(_ batch: [NewMessage], at first: UInt64?,
                       onDurable: ((Result<Void, StreamLogError>) -> Void)? = nil) throws -> AppendResult {
        var immediate = false
        let result: AppendResult = try lock.withLock {
            let r = try mapErrors { try appendLocked(batch, at: first) }
            if let onDurable {
                if config.fsync == .never { immediate = true } else { waiters.append((r.ticket, onDurable)) }
            }
            return r
        }
        if immediate { onDurable?(.success(())) }
        return result
    }

    /// Appends and blocks until the batch is durable (group commit shares the fsync).
    @discardableResult
    public func appendAndWait(_ batch: [NewMessage]) throws -> AppendResult {
        let r = try append(batch)
        try waitUntilDurable(r.ticket)
        return r
    }

    /// Blocks until every write up to `ticket` is durable, or throws when an fsync failed.
    public func waitUntilDurable(_ ticket: UInt64) throws {
        // A manual log has no sync thread: the waiter does the fsync itself.
        if lock.withLock({ config.fsync == .manual && durableTicket < ticket }) { try sync() }
        try lock.withLock {
            if config.fsync == .never { return }
            var rounds = 0
            while durableTicket < ticket {
                if let failure { throw StreamLogError.failed(failure) }
                if isClosed { throw StreamLogError.closed }
                lock.wait(timeoutNanos: 100_000_000)
                rounds += 1
                precondition(rounds < 36_000, "durability wait exceeded one hour")
            }
        }
    }

    func appendLocked(_ batch: [NewMessage], at requested: UInt64? = nil) throws -> AppendResult {
        try checkWritable()
        try validate(batch)
        if let requested, requested <= core.lastSeq {
            throw StreamLogError.invalidArgument("sequence \(requested) not above \(core.lastSeq)")
        }
        let first = requested ?? core.lastSeq + 1
        // The records go behind room for the block header: the block is sealed in place.
        var block = [UInt8](repeating: 0, count: BlockHeader.size)
        block.reserveCapacity(BlockHeader.size + batch.reduce(0) {
            $0 + RecordCodec.recordHeaderSize + $1.subject.utf8.count + $1.headers.count + $1.payload.count
        })
        var maxTs = Int64.min
        for (i, m) in batch.enumerated() {
            RecordCodec.append(m, seq: first + UInt64(i), to: &block)
            maxTs = max(maxTs, m.timestamp)
        }
        let rawSize = block.count - BlockHeader.size
        guard rawSize < Int(UInt32.max) else { throw StreamLogError.invalidArgument("batch too large") }
        let last = first + UInt64(batch.count) - 1
        let tryLZ4 = config.compression && compressionPolicy.shouldTry()
        BlockCodec.encodeInPlace(&block, kind: .messages, firstSeq: first, lastSeq: last, count: batch.count,
                                 firstRaftIndex: batch[0].raftIndex, maxTimestamp: maxTs, compress: tryLZ4)
        if tryLZ4 {
            let stored = block.count - BlockHeader.size
            compressionPolicy.record(rawSize: rawSize, compressedSize: stored < rawSize ? stored : nil)
        }
        let tomb = pendingTombstoneBlock()
        try writeBlocks(tomb.map { [$0, block] } ?? [block])
        pendingTombstones.removeAll()
        for (i, m) in batch.enumerated() {
            core.add(seq: first + UInt64(i), subject: m.subject, size: m.accountedSize)
        }
        if let ri = batch.last.map({ $0.raftIndex }), ri > 0 {
            core.lastRaftIndex = ri
            core.lastTerm = batch[batch.count - 1].term
        }
        core.lastTimestamp = batch[batch.count - 1].timestamp
        let ticket = writtenTicket
        if config.fsync == .never { durableTicket = ticket }
        // Limits (discard old) and age: removals become tombstones written with the next block.
        let l = config.limits
        if l.maxAgeNanos != nil || l.maxMessages != nil || l.maxBytes != nil || l.maxMessagesPerSubject != nil {
            let touched = l.maxMessagesPerSubject == nil ? Set<String>() : Set(batch.map(\.subject))
            try? enforceLimitsLocked(now: clock(), touched: touched)
        }
        try? rollIfNeeded()
        return AppendResult(firstSequence: first, lastSequence: last, ticket: ticket)
    }

    /// Checks one batch against shape rules and the discard-new limits, before any write.
    func validate(_ batch: [NewMessage]) throws {
        guard !batch.isEmpty else { throw StreamLogError.invalidArgument("empty batch") }
        let l = config.limits
        var raftIndex = core.lastRaftIndex
        var bytes: UInt64 = 0
        var perSubject: [String: UInt64] = [:]
        for m in batch {
            guard !m.subject.isEmpty else { throw StreamLogError.invalidArgument("empty subject") }
            if m.raftIndex > 0 {
                guard m.raftIndex > raftIndex else {
                    throw StreamLogError.invalidArgument("raft index \(m.raftIndex) not above \(raftIndex)")
                }
                raftIndex = m.raftIndex
            }
            if let max = l.maxMessageSize, UInt64(m.headers.count + m.payload.count) > max {
                throw StreamLogError.messageTooLarge
            }
            bytes += m.accountedSize
            if l.discard == .new && l.discardNewPerSubject && l.maxMessagesPerSubject != nil {
                perSubject[m.subject, default: 0] += 1
            }
        }
        guard l.discard == .new else { return }
        if let max = l.maxMessages, core.messages + UInt64(batch.count) > max { throw StreamLogError.maxMessagesExceeded }
        if let max = l.maxBytes, core.bytes + bytes > max { throw StreamLogError.maxBytesExceeded }
        if let max = l.maxMessagesPerSubject {
            for (s, n) in perSubject where (core.subjects[s]?.count ?? 0) + n > max {
                throw StreamLogError.maxMessagesPerSubjectExceeded
            }
        }
    }

    /// Writes blocks contiguously at the tail in one call; on failure the tail is cut back so
    /// the log stays exactly as it was (ENOSPC leaves it usable).
    func writeBlocks(_ blocks: [[UInt8]]) throws {
        let t = tail
        let start = t.size
        let out = blocks.count == 1 ? blocks[0] : blocks.flatMap { $0 }
        // Writing past the filled space while a zero-fill runs there: wait for it, or its zeros
        // could land on these bytes.
        if start + UInt64(out.count) > t.allocated { awaitFill() }
        do {
            try out.withUnsafeBytes { try t.file.write($0, at: start) }
        } catch {
            awaitFill()
            try? t.file.truncate(to: start)
            t.allocated = start
            throw error
        }
        preallocate(t, past: start + UInt64(out.count))
        var offset = start
        for b in blocks {
            let header = b.withUnsafeBytes { BlockHeader.decode($0) }!
            t.blocks.append(BlockRef(offset: offset, header: header))
            offset += UInt64(b.count)
        }
        t.size = offset
        writtenTicket += 1
        lock.signalWork()  // wake the sync thread, not the durability waiters
    }

    /// The zeros `preallocate` writes, made once per process (a `static let` is initialised
    /// lazily and thread-safely) rather than per extension. As large as the largest step in use
    /// (Raft logs: 512 KiB); a larger step is written in chunks of it.
    static let zeros = [UInt8](repeating: 0, count: 1 << 20)

    /// Extends the tail's file with zeros when `end` reached the space already in it (see
    /// `StreamLogConfig.preallocateBytes`). Best effort: on failure (a full disk) the file keeps
    /// what was written, and the next append tries again.
    func preallocate(_ t: Segment, past end: UInt64) {
        guard end > t.allocated else { return }
        t.allocated = end
        let step = config.preallocateBytes
        guard step > 0 else { return }
        let extra = Int(min(step, max(4096, end)))
        do {
            try Self.writeZeros(t.file, at: end, count: extra)
            t.allocated = end + UInt64(extra)
        } catch {
            try? t.file.truncate(to: end)
        }
    }

    /// Cuts a segment that stops being the tail back to its blocks, so that no sealed segment
    /// ends in preallocated zeros (its index file and scans see the exact size; a scan would
    /// report them as damage). Durable before the next segment exists, so a crash cannot undo
    /// the cut of a segment that is no longer the tail.
    func trimPreallocation(_ seg: Segment) throws {
        awaitFill()
        guard seg.allocated > seg.size else { return }
        try seg.file.truncate(to: seg.size)
        if config.fsync != .never { try seg.file.sync() }
        seg.allocated = seg.size
    }

    /// The pending limit/age tombstones as one block (nil when there are none).
    func pendingTombstoneBlock() -> [UInt8]? {
        guard !pendingTombstones.isEmpty else { return nil }
        return tombstoneBlock(pendingTombstones)
    }

    func tombstoneBlock(_ entries: [Tombstone]) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity(entries.count * Tombstone.entrySize)
        for t in entries { t.encode(into: &raw) }
        return BlockCodec.encode(kind: .tombstones, raw: raw, firstSeq: core.lastSeq, lastSeq: core.lastSeq,
                                 count: entries.count, firstRaftIndex: 0, maxTimestamp: 0,
                                 compress: config.compression)!
    }

    /// Writes tombstones now (explicit deletes, purges, close); returns the write's ticket.
    @discardableResult
    func writeTombstones(_ entries: [Tombstone]) throws -> UInt64 {
        let all = pendingTombstones + entries
        guard !all.isEmpty else { return writtenTicket }
        try writeBlocks([tombstoneBlock(all)])
        pendingTombstones.removeAll()
        if config.fsync == .never { durableTicket = writtenTicket }
        // No roll here: the caller updates the state first, then rolls (the roll's snapshot
        // must include the effect of these tombstones).
        return writtenTicket
    }

    func flushPendingTombstones() throws {
        if !pendingTombstones.isEmpty { try writeTombstones([]) }
    }
}
