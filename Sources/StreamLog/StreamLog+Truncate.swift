/// Suffix truncation (Raft conflict resolution) and in-place block rewrites (secure delete).
extension StreamLog {
    /// Removes every record with sequence > `seq`. Later segments are dropped, at most one block
    /// is rewritten (the one holding both kept and removed records). Durable on return (except
    /// with `.never`). Delete markers that lived in the removed suffix are re-appended.
    public func truncate(after seq: StreamSequence) throws {
        try lock.withLock {
            try checkWritable()
            try mapErrors { try truncateLocked(after: seq.rawValue) }
        }
    }

    /// Removes every record whose Raft index is > `index` (the Raft log's conflict rule).
    /// `index` need not be a record's own (a store holds only some of its log's entries): what
    /// stays ends at the last record at or below it.
    public func truncate(afterRaftIndex index: UInt64) throws {
        try lock.withLock {
            try checkWritable()
            try mapErrors {
                guard index < core.lastRaftIndex else { return }
                let firstSeq = segments.first?.blocks.first { $0.kind == .messages }?.firstSeq ?? 1
                try truncateLocked(after: try lastSequenceLocked(atOrBelowRaftIndex: index) ?? firstSeq - 1)
            }
        }
    }

    func truncateLocked(after i: UInt64) throws {
        guard i < core.lastSeq else { return }
        awaitFill()
        try flushPendingTombstones()
        var removed: [StoredMessage] = []
        var carry: [Tombstone] = []
        var droppedSegments = false
        func collect(_ seg: Segment, _ refs: ArraySlice<BlockRef>, keepUpTo: inout [StoredMessage]) throws {
            for ref in refs {
                switch ref.kind {
                case .messages:
                    for m in try seg.readMessages(ref) {
                        if m.sequence.rawValue <= i { keepUpTo.append(m) } else if core.isLive(m.sequence.rawValue) { removed.append(m) }
                    }
                case .tombstones:
                    let (h, bytes) = try seg.readBlock(ref)
                    for t in Tombstone.decodeAll(BlockCodec.rawBody(bytes, header: h) ?? []) ?? [] {
                        switch t {
                        case .delete(let s) where s <= i: carry.append(t)
                        case .floor(let s), .reset(let s): carry.append(.floor(min(s, i + 1)))
                        default: break
                        }
                    }
                }
            }
        }
        // Whole segments after the cut.
        while segments.count > 1 && tail.base > i {
            var none: [StoredMessage] = []
            try collect(tail, tail.blocks[...], keepUpTo: &none)
            let seg = segments.removeLast()
            try fs.remove(seg.path)
            try fs.remove(seg.indexPath)
            droppedSegments = true
        }
        if tail.base > i + 1 {
            // Only segment left and it starts after the cut (truncation below a compacted
            // prefix): replace it by an empty one named by the next sequence, keeping names ordered.
            var none: [StoredMessage] = []
            try collect(tail, tail.blocks[...], keepUpTo: &none)
            let seg = segments.removeLast()
            try fs.remove(seg.path)
            try fs.remove(seg.indexPath)
            try createSegment(base: i + 1)
            droppedSegments = true
        }
        let t = tail
        if t.sealed {
            t.sealed = false
            try fs.remove(t.indexPath)
        }
        // The first block reaching past `i` (records or delete markers), and everything after it.
        if let k = t.blocks.firstIndex(where: { $0.lastSeq > i }) {
            var kept: [StoredMessage] = []
            try collect(t, t.blocks[k...], keepUpTo: &kept)
            var end = t.blocks[k].offset
            var newRefs = Array(t.blocks[..<k])
            if !kept.isEmpty {
                var raw: [UInt8] = []
                for m in kept { RecordCodec.append(m, to: &raw) }
                let block = BlockCodec.encode(kind: .messages, raw: raw, firstSeq: kept[0].sequence.rawValue,
                                              lastSeq: kept[kept.count - 1].sequence.rawValue, count: kept.count,
                                              firstRaftIndex: kept[0].raftIndex,
                                              maxTimestamp: kept.map(\.timestamp).max()!, compress: config.compression)!
                try t.file.write(block, at: end)
                newRefs.append(BlockRef(offset: end, header: block.withUnsafeBytes { BlockHeader.decode($0)! }))
                end += UInt64(block.count)
            }
            try t.file.truncate(to: end)
            t.blocks = newRefs
            t.size = end
            t.allocated = end
        }
        clearCaches()
        for m in removed { core.remove(seq: m.sequence.rawValue, subject: m.subject, size: m.accountedSize) }
        core.lastSeq = i
        core.floor = min(core.floor, i + 1)
        core.dropDeleted(above: i)
        core.normalizeFloor()
        try restoreLastRecordInfo()
        if !carry.isEmpty { try writeTombstones(carry) }
        if config.fsync != .never { try t.file.sync() }
        durableTicket = writtenTicket
        if droppedSegments { try fs.syncDirectory(directory) }
        try writeSnapshot()
    }

    /// Drops every record and makes `nextSequence` (above the last sequence) the sequence of the
    /// next append; the last Raft index and term are forgotten, so the next append may carry any
    /// Raft index. This is a Raft log replaced by a snapshot ("next raft index = snapshot + 1").
    /// Durable on return. Crash-safe: the commit point is one fsync'd `.reset` marker in the
    /// tail; a crash before it leaves the old log, after it the reset log (recovery drops the
    /// old segments if the crash came before they were removed).
    public func reset(nextSequence: StreamSequence) throws {
        try lock.withLock {
            try checkWritable()
            let next = nextSequence.rawValue
            guard next > core.lastSeq else {
                throw StreamLogError.invalidArgument("reset to \(next) is not above the last sequence \(core.lastSeq)")
            }
            try mapErrors {
                try writeTombstones([.reset(next)])
                try advanceFloor(to: next)
                core.lastRaftIndex = 0
                core.lastTerm = 0
                try syncTailNow()
                // The new tail is named by the next sequence (unless the tail already is).
                if tail.base != next { try createSegment(base: next) }
                try dropSegmentsBelowFloor()
                clearCaches()
                try writeSnapshot()
            }
        }
    }

    /// Sets last raft index/term/timestamp from the last record physically present.
    func restoreLastRecordInfo() throws {
        for seg in segments.reversed() {
            if let ref = seg.blocks.last(where: { $0.kind == .messages && $0.count > 0 }),
               let m = try seg.readMessages(ref).last {
                core.lastRaftIndex = m.raftIndex
                core.lastTerm = m.term
                core.lastTimestamp = m.timestamp
                return
            }
        }
        core.lastRaftIndex = 0
        core.lastTerm = 0
    }

    /// Rewrites the block holding `seq` in place, at its old length, without that record.
    func overwriteInPlace(removing seq: UInt64) throws {
        guard let (seg, ref) = locate(seq), let idx = seg.blocks.firstIndex(of: ref) else { throw StreamLogError.notFound }
        let kept = try seg.readMessages(ref).filter { $0.sequence.rawValue != seq }
        var raw: [UInt8] = []
        for m in kept { RecordCodec.append(m, to: &raw) }
        let encode = { (forceRaw: Bool) in
            BlockCodec.encode(kind: .messages, raw: raw, firstSeq: ref.firstSeq, lastSeq: ref.lastSeq, count: kept.count,
                              firstRaftIndex: ref.firstRaftIndex, maxTimestamp: ref.maxTimestamp,
                              compress: self.config.compression, padTo: Int(ref.length), forceRaw: forceRaw)
        }
        guard let block = encode(false) ?? encode(true) else {
            throw StreamLogError.invalidArgument("secure delete: block \(ref.offset) in \(seg.path) cannot be rewritten in place")
        }
        try seg.file.write(block, at: ref.offset)
        if config.fsync != .never { try seg.file.sync() }
        seg.blocks[idx] = BlockRef(offset: ref.offset, header: block.withUnsafeBytes { BlockHeader.decode($0)! })
        if seg.sealed { try writeIndexFile(seg) }
        clearCaches()
    }
}
