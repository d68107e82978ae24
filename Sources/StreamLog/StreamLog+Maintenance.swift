/// Background maintenance: sealed segments that are mostly deleted, or made of many small
/// blocks (one per small append batch), are rewritten into a few large, well-compressed blocks.
/// Call `runMaintenance` from a background thread; each segment rewrite holds the log lock for
/// the time it takes to rewrite that one segment.
extension StreamLog {
    /// Rewrites up to `maxSegments` sealed segments that qualify; returns how many were rewritten.
    @discardableResult
    public func runMaintenance(maxSegments: Int = 1) throws -> Int {
        var done = 0
        var index = 0
        while done < maxSegments {
            let rewrote: Bool? = try lock.withLock {
                try checkWritable()
                guard index < segments.count - 1 else { return nil }
                let seg = segments[index]
                index += 1
                guard needsRewrite(seg) else { return false }
                try mapErrors { try rewrite(seg) }
                return true
            }
            guard let rewrote else { break }
            if rewrote { done += 1 }
        }
        return done
    }

    func needsRewrite(_ seg: Segment) -> Bool {
        let refs = seg.blocks.filter { $0.kind == .messages }
        let records = refs.reduce(0) { $0 + Int($1.count) }
        guard records > 0 else { return seg.blocks.count > 1 }
        var live = 0
        for ref in refs where ref.lastSeq >= core.floor {
            for s in ref.firstSeq...ref.lastSeq where core.isLive(s) { live += 1 }
        }
        let liveFraction = Double(min(live, records)) / Double(records)
        let averageBlock = Int(seg.size) / max(1, seg.blocks.count)
        return liveFraction < config.rewriteLiveFractionBelow
            || (averageBlock < config.rewriteSmallBlockBytes && seg.blocks.count > 2)
    }

    /// One block of already-sequenced records (a rewrite or repair); `rawBytes` sizes the body.
    func messageBlock(_ msgs: [StoredMessage], rawBytes: Int) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity(rawBytes)
        for m in msgs { RecordCodec.append(m, to: &raw) }
        return BlockCodec.encode(kind: .messages, raw: raw, firstSeq: msgs[0].sequence.rawValue,
                                 lastSeq: msgs[msgs.count - 1].sequence.rawValue, count: msgs.count,
                                 firstRaftIndex: msgs[0].raftIndex, maxTimestamp: msgs.map(\.timestamp).max()!,
                                 compress: config.compression)!
    }

    /// Replaces a sealed segment by a compacted copy (temp file, fsync, rename, fsync dir).
    func rewrite(_ seg: Segment) throws {
        precondition(seg.sealed, "only sealed segments are rewritten")
        // Every delete that made a record droppable must be covered by the snapshot first:
        // after the rewrite, replay could not read those records any more.
        try flushPendingTombstones()
        try syncTailNow()
        try writeSnapshot()
        var tombs: [Tombstone] = []
        var out: [UInt8] = []
        var refs: [BlockRef] = []
        var pending: [StoredMessage] = []
        var pendingBytes = 0
        func flush() {
            guard !pending.isEmpty else { return }
            let block = messageBlock(pending, rawBytes: pendingBytes)
            refs.append(BlockRef(offset: UInt64(out.count), header: block.withUnsafeBytes { BlockHeader.decode($0)! }))
            out.append(contentsOf: block)
            pending.removeAll()
            pendingBytes = 0
        }
        for ref in seg.blocks {
            switch ref.kind {
            case .messages:
                for m in try seg.readMessages(ref) where core.isLive(m.sequence.rawValue) {
                    pending.append(m)
                    pendingBytes += RecordCodec.recordHeaderSize + m.subject.utf8.count + m.headers.count + m.payload.count
                    if pendingBytes >= config.rewriteBlockBytes { flush() }
                }
            case .tombstones:
                let (h, bytes) = try seg.readBlock(ref)
                for t in Tombstone.decodeAll(BlockCodec.rawBody(bytes, header: h) ?? []) ?? [] {
                    if case .delete(let s) = t, s < core.floor { continue }
                    tombs.append(t)
                }
            }
        }
        flush()
        // A closing tombstone block keeps the segment's last sequence (block order and snapshot checks).
        var raw: [UInt8] = []
        for t in tombs { t.encode(into: &raw) }
        let lastSeq = seg.lastSeq ?? (seg.base - 1)
        let closing = BlockCodec.encode(kind: .tombstones, raw: raw, firstSeq: lastSeq, lastSeq: lastSeq, count: tombs.count,
                                        firstRaftIndex: 0, maxTimestamp: 0, compress: config.compression)!
        refs.append(BlockRef(offset: UInt64(out.count), header: closing.withUnsafeBytes { BlockHeader.decode($0)! }))
        out.append(contentsOf: closing)
        guard let i = segments.firstIndex(where: { $0 === seg }) else { return }
        try replaceSealedSegment(i, bytes: out, blocks: refs)
    }

    /// Swaps a rewritten sealed segment in, crash-safe: written beside it, fsync'd, renamed over
    /// it, the directory fsync'd, then its index. The old index goes before the rename, so a
    /// crash before the new one is written leaves no index (rebuilt by a scan), never a stale one.
    func replaceSealedSegment(_ i: Int, bytes out: [UInt8], blocks refs: [BlockRef]) throws {
        let seg = segments[i]
        let tmp = seg.path + ".tmp"
        let f = try fs.open(tmp, create: true)
        try f.truncate(to: 0)
        try f.write(out, at: 0)
        if config.fsync != .never { try f.sync() }
        try fs.remove(seg.indexPath)
        try fs.rename(tmp, to: seg.path)
        try fs.syncDirectory(directory)
        let replacement = Segment(base: seg.base, path: seg.path, file: f)
        replacement.blocks = refs
        replacement.size = UInt64(out.count)
        replacement.sealed = true
        segments[i] = replacement
        seg.file.close()
        try writeIndexFile(replacement)
        clearCaches()
    }
}
