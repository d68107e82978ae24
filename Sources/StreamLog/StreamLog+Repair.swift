/// Repairing a damaged sealed segment in place from messages fetched elsewhere.
///
/// A bad block in a sealed segment (found by `verifySegment`, a read, or an index rebuild at
/// open) makes the live messages it held unreadable. The log cannot get them back itself, but
/// every replica of a stream holds the same message at the same sequence, so its owner fetches
/// exactly those (`damage(inSegment:)` names them) and hands them to `repairSegment`, which
/// rebuilds the segment from its readable blocks plus the fetched messages. No network I/O here.
public struct SegmentDamage: Equatable, Sendable {
    /// The damaged segment's first sequence (its file name).
    public var segment: UInt64
    /// Live sequences no readable block holds, as ascending disjoint ranges: what to fetch.
    public var missing: [ClosedRange<UInt64>]
    /// Blocks that failed their CRC (or are absent from the block table: skipped at open).
    public var badBlocks: Int
    /// A delete-marker block was among them (the rebuild writes the markers anew from the state).
    public var tombstonesLost: Bool

    /// How many messages `missing` names.
    public var missingCount: UInt64 { missing.reduce(0) { $0 + ($1.upperBound - $1.lowerBound + 1) } }
}

extension StreamLog {
    /// The sealed segment a damage report's file belongs to (`CorruptRange.segment`), or nil when
    /// the file is not a segment of this log, or is the tail (which `repairSegment` never rewrites).
    public func sealedSegmentBase(ofPath path: String) -> UInt64? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let base = Segment.parseBase(name) else { return nil }
        return lock.withLock { segments.dropLast().contains { $0.base == base && $0.path == path } ? base : nil }
    }

    /// Seals the tail segment when `path` names it, so that damage a read found in it is
    /// repaired like a sealed segment's (`damage(inSegment:)`, `repairSegment`) while appends go
    /// on in a new tail. Returns the sealed segment's base; nil when `path` is not this log's
    /// tail or the tail holds no message yet (a new tail would take its name).
    public func sealTail(ifAt path: String) throws -> UInt64? {
        try lock.withLock {
            if isClosed { throw StreamLogError.closed }
            let t = tail
            guard t.path == path, core.lastSeq >= t.base, !t.blocks.isEmpty else { return nil }
            try mapErrors { try roll() }
            return t.base
        }
    }

    /// What is damaged in the sealed segment starting at `base`: the live sequences its readable
    /// blocks do not hold. Nil when the segment is sound, gone (compacted) or the tail. Throws
    /// `.invalidArgument` when that cannot be known (the log was opened by replaying every block
    /// past damage): then only a copy of the whole log repairs it.
    public func damage(inSegment base: UInt64) throws -> SegmentDamage? {
        try lock.withLock {
            if isClosed { throw StreamLogError.closed }
            if liveSetUnknown {
                throw StreamLogError.invalidArgument("the live set was rebuilt past damaged blocks; what they held is unknown")
            }
            return try mapErrors {
                guard let i = sealedIndex(base) else { return nil }
                let d = try survey(i).damage
                return d.badBlocks == 0 && d.missing.isEmpty ? nil : d
            }
        }
    }

    /// Rebuilds the sealed segment starting at `base` from its readable blocks plus `fetched`,
    /// which must hold every sequence `damage(inSegment:)` names now (others are ignored, so a
    /// message deleted meanwhile is simply not written). Deleted sequences stay deleted: only
    /// live ones are written, and delete markers of the lost blocks are written anew from the
    /// state. Crash-safe: the new segment is written beside the old one, fsync'd and renamed over
    /// it (its stale index removed first, so a crash between the two never pairs them). Returns
    /// how many fetched messages were written; 0 when the segment is sound or gone.
    @discardableResult
    public func repairSegment(base: UInt64, with fetched: [StoredMessage]) throws -> Int {
        try lock.withLock {
            try checkWritable()
            if liveSetUnknown {
                throw StreamLogError.invalidArgument("the live set was rebuilt past damaged blocks; what they held is unknown")
            }
            return try mapErrors {
                guard let i = sealedIndex(base) else { return 0 }
                let s = try survey(i)
                guard s.damage.badBlocks > 0 || !s.damage.missing.isEmpty else { return 0 }
                var bySeq: [UInt64: StoredMessage] = [:]
                for m in fetched { bySeq[m.sequence.rawValue] = m }
                var replacements: [StoredMessage] = []
                for r in s.damage.missing {
                    for seq in r {
                        guard let m = bySeq[seq] else {
                            throw StreamLogError.invalidArgument("no replacement for sequence \(seq) of segment \(base)")
                        }
                        replacements.append(m)
                    }
                }
                // Deletes whose markers may sit in a lost block must be durable in the snapshot
                // first (as for a maintenance rewrite).
                try flushPendingTombstones()
                try syncTailNow()
                try writeSnapshot()
                try rebuild(i, survey: s, replacements: replacements)
                if unresolvedDeletes.contains(where: { $0 >= base && $0 <= s.last }) {
                    // Deletes whose subject and size were lost with the block: the rebuilt segment
                    // holds no record for them, so a replay of every block counts them right.
                    // Another damaged block would make that replay wrong: then the caller must
                    // replace the whole log (the segment written stays valid).
                    let (savedCore, savedDeletes) = (core, unresolvedDeletes)
                    do { _ = try replayAll(strict: true) } catch {
                        (core, unresolvedDeletes) = (savedCore, savedDeletes)
                        throw error
                    }
                    try writeSnapshot()
                }
                return replacements.count
            }
        }
    }

    private func sealedIndex(_ base: UInt64) -> Int? {
        guard let i = segments.firstIndex(where: { $0.base == base }), i < segments.count - 1 else { return nil }
        return i
    }

    /// One pass over a sealed segment: its readable blocks (with their bytes) and its damage.
    private struct Survey {
        var good: [(ref: BlockRef, bytes: [UInt8])] = []
        var damage: SegmentDamage
        /// The last sequence the segment can hold (the next segment's base - 1).
        var last: UInt64
    }

    /// Lock held.
    private func survey(_ i: Int) throws -> Survey {
        let seg = segments[i]
        let last = segments[i + 1].base - 1
        var s = Survey(damage: SegmentDamage(segment: seg.base, missing: [], badBlocks: 0, tombstonesLost: false), last: last)
        var held = Set<UInt64>()
        var expected: UInt64 = 0
        for ref in seg.blocks {
            // A gap in the table: bytes an index rebuild skipped as unreadable (they may have
            // held delete markers too).
            if ref.offset > expected { s.damage.badBlocks += 1; s.damage.tombstonesLost = true }
            expected = ref.end
            do {
                let (_, bytes) = try seg.readBlock(ref)
                if ref.kind == .messages {
                    for m in try seg.readMessages(ref) { held.insert(m.sequence.rawValue) }
                }
                s.good.append((ref, bytes))
            } catch StreamLogError.corrupt {
                s.damage.badBlocks += 1
                if ref.kind == .tombstones { s.damage.tombstonesLost = true }
            }
        }
        if try seg.file.size() > expected { s.damage.badBlocks += 1; s.damage.tombstonesLost = true }
        let lo = max(seg.base, core.floor), hi = min(last, core.lastSeq)
        if lo <= hi {
            var runStart: UInt64?
            for seq in lo...hi {
                let lost = core.isLive(seq) && !held.contains(seq) && !unresolvedDeletes.contains(seq)
                if lost, runStart == nil { runStart = seq }
                if !lost, let r = runStart { s.damage.missing.append(r...(seq - 1)); runStart = nil }
            }
            if let r = runStart { s.damage.missing.append(r...hi) }
        }
        return s
    }

    /// Writes the new segment: readable blocks as they are, in order, with the replacements
    /// placed by sequence between them, then (if markers were lost) one block of delete markers
    /// rebuilt from the state. Lock held.
    private func rebuild(_ i: Int, survey s: Survey, replacements: [StoredMessage]) throws {
        var out: [UInt8] = []
        var refs: [BlockRef] = []
        var next = 0
        // The log's last Raft index lives in its last record; when that record is rebuilt here,
        // it gets the index back (replay without the snapshot reads it from there).
        let holdsLastRecord = i == segments.count - 2 && !tail.blocks.contains { $0.kind == .messages }
            && replacements.last.map { r in !s.good.contains { $0.ref.kind == .messages && $0.ref.lastSeq > r.sequence.rawValue } } == true
        func emit(_ block: [UInt8]) {
            refs.append(BlockRef(offset: UInt64(out.count), header: block.withUnsafeBytes { BlockHeader.decode($0)! }))
            out.append(contentsOf: block)
        }
        func emitReplacements(before limit: UInt64) {
            var batch: [StoredMessage] = []
            var bytes = 0
            func flush() {
                guard !batch.isEmpty else { return }
                emit(messageBlock(batch, rawBytes: bytes))
                batch.removeAll()
                bytes = 0
            }
            while next < replacements.count, replacements[next].sequence.rawValue < limit {
                var m = replacements[next]
                next += 1
                if holdsLastRecord && next == replacements.count {
                    m.raftIndex = core.lastRaftIndex
                    m.term = core.lastTerm
                }
                batch.append(m)
                bytes += RecordCodec.recordHeaderSize + m.subject.utf8.count + m.headers.count + m.payload.count
                if bytes >= config.rewriteBlockBytes { flush() }
            }
            flush()
        }
        for (ref, bytes) in s.good {
            // A marker block's last sequence was the log's last when it was written: the
            // messages up to it come before it.
            emitReplacements(before: ref.kind == .messages ? ref.firstSeq : ref.lastSeq + 1)
            emit(bytes)
        }
        emitReplacements(before: UInt64.max)
        if s.damage.tombstonesLost {
            var raw: [UInt8] = []
            var markers: [Tombstone] = [.floor(core.floor)]
            markers += core.deleted.filter { $0 <= s.last }.sorted().map { .delete($0) }
            for t in markers { t.encode(into: &raw) }
            let lastSeq = max(refs.last?.lastSeq ?? 0, min(s.last, core.lastSeq))
            emit(BlockCodec.encode(kind: .tombstones, raw: raw, firstSeq: lastSeq, lastSeq: lastSeq, count: markers.count,
                                   firstRaftIndex: 0, maxTimestamp: 0, compress: config.compression)!)
        }

        try replaceSealedSegment(i, bytes: out, blocks: refs)
    }
}
