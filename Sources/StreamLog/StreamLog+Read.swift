/// Reads. Every read verifies the block CRC (a damaged block throws `.corrupt` with its exact
/// range) and goes through a small cache of decoded blocks.
extension StreamLog {
    /// The live message at `seq`, or nil when it was never written or is gone.
    public func message(_ seq: StreamSequence) throws -> StoredMessage? {
        try lock.withLock { try mapErrors { core.isLive(seq.rawValue) ? try messageLocked(seq.rawValue) : nil } }
    }

    /// The last live message on `subject` (KV get, last-by-subject).
    public func lastMessage(subject: String) throws -> StoredMessage? {
        try lock.withLock {
            try mapErrors {
                guard let seq = try resolvedLast(subject) else { return nil }
                return try messageLocked(seq)
            }
        }
    }

    /// Up to `maxMessages` live messages with sequence >= `from`, in order, optionally only those
    /// whose subject passes `filter`. Use the last returned sequence + 1 to continue.
    public func messages(from: StreamSequence, maxMessages: Int, filter: ((String) -> Bool)? = nil) throws -> [StoredMessage] {
        guard maxMessages > 0 else { return [] }
        return try lock.withLock {
            try mapErrors {
                var out: [StoredMessage] = []
                var seq = max(from.rawValue, core.floor)
                var scanned = 0
                while seq <= core.lastSeq && out.count < maxMessages {
                    guard let (seg, ref) = locate(seq) else { break }
                    for m in try blockMessages(seg, ref) where m.sequence.rawValue >= seq {
                        if core.isLive(m.sequence.rawValue) && (filter?(m.subject) ?? true) {
                            out.append(m)
                            if out.count == maxMessages { break }
                        }
                    }
                    seq = max(seq, ref.lastSeq + 1)
                    scanned += 1
                    precondition(scanned <= 1 << 40, "unbounded scan")
                }
                return out
            }
        }
    }

    /// The live message holding Raft index `index`, or nil.
    public func message(raftIndex index: UInt64) throws -> StoredMessage? {
        try lock.withLock {
            try mapErrors {
                guard let seq = try sequenceLocked(raftIndex: index) else { return nil }
                return core.isLive(seq) ? try messageLocked(seq) : nil
            }
        }
    }

    /// The stream sequence of the record with Raft index `index` (live or not), or nil.
    public func sequence(raftIndex index: UInt64) throws -> StreamSequence? {
        try lock.withLock { try mapErrors { try sequenceLocked(raftIndex: index).map(StreamSequence.init) } }
    }

    /// The first live sequence whose message has timestamp >= `timestamp` (by_start_time), or nil.
    public func firstSequence(atOrAfter timestamp: Int64) throws -> StreamSequence? {
        try lock.withLock {
            try mapErrors {
                var runningMax = Int64.min
                for seg in segments {
                    for ref in seg.blocks where ref.kind == .messages {
                        runningMax = max(runningMax, ref.maxTimestamp)
                        guard runningMax >= timestamp, ref.lastSeq >= core.floor else { continue }
                        for m in try blockMessages(seg, ref) where m.timestamp >= timestamp && core.isLive(m.sequence.rawValue) {
                            return m.sequence
                        }
                    }
                }
                return nil
            }
        }
    }

    /// Stream state for STREAM.INFO; `perSubject` adds the message count of every subject.
    /// The bytes of the live messages (`state().bytes`, without reading the first message).
    public var storedBytes: UInt64 { lock.withLock { core.bytes } }

    public func state(perSubject: Bool = false) throws -> StreamLogState {
        try lock.withLock {
            try mapErrors {
                let first = core.messages > 0 ? try messageLocked(core.floor) : nil
                let span = core.messages > 0 ? core.lastSeq - core.floor + 1 : 0
                return StreamLogState(
                    messages: core.messages, bytes: core.bytes, firstSequence: core.floor, lastSequence: core.lastSeq,
                    firstTimestamp: first?.timestamp ?? 0, lastTimestamp: core.messages > 0 ? core.lastTimestamp : 0,
                    subjectCount: core.subjects.count, deletedCount: span - core.messages,
                    subjects: perSubject ? core.subjects.mapValues(\.count) : nil)
            }
        }
    }

    /// Deleted sequences after the first live one up to the last sequence, ascending; nil when
    /// there are more than `limit` (a replica copying the stream bounds what it transfers).
    public func deletedSequences(limit: Int) -> [UInt64]? {
        lock.withLock {
            guard core.messages > 0 else { return [] }
            let inside = core.deleted.filter { $0 > core.floor && $0 <= core.lastSeq }
            return inside.count <= limit ? inside.sorted() : nil
        }
    }

    /// Last Raft index and term stored (0, 0 when none): what a Raft node needs on restart.
    public var lastRaftEntry: (index: UInt64, term: UInt64) {
        lock.withLock { (core.lastRaftIndex, core.lastTerm) }
    }

    /// Current limits; set `limits` through `updateLimits`.
    public var limits: RetentionLimits { lock.withLock { config.limits } }

    /// Damage found so far (on open, and by reads since).
    public func verify() throws -> [CorruptRange] {
        try lock.withLock {
            try mapErrors {
                var found: [CorruptRange] = []
                for seg in segments {
                    let scan = try seg.scan(resync: true)
                    if let bad = scan.badRange { found.append(bad) }
                }
                return found
            }
        }
    }

    // MARK: Internals (lock held)

    /// The segment and message block that would hold `seq`.
    func locate(_ seq: UInt64) -> (Segment, BlockRef)? {
        var lo = 0, hi = segments.count - 1, segIdx = -1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if segments[mid].base <= seq { segIdx = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        var i = max(segIdx, 0)
        while i < segments.count {
            let blocks = segments[i].blocks
            var l = 0, h = blocks.count
            while l < h {
                let mid = (l + h) / 2
                if blocks[mid].lastSeq < seq { l = mid + 1 } else { h = mid }
            }
            while l < blocks.count && blocks[l].kind != .messages { l += 1 }
            if l < blocks.count { return (segments[i], blocks[l]) }
            i += 1
        }
        return nil
    }

    func blockMessages(_ seg: Segment, _ ref: BlockRef) throws -> [StoredMessage] {
        let key = BlockKey(segment: seg.base, offset: ref.offset)
        if let hit = cache.get(key) { return hit }
        let msgs = try seg.readMessages(ref)
        cache.put(key, msgs)
        return msgs
    }

    func clearCaches() {
        cache.removeAll()
        rawCache.removeAll()
    }

    /// The stored record at `seq` (live or deleted-but-present), or throws `.notFound`.
    func messageLocked(_ seq: UInt64) throws -> StoredMessage {
        guard let (seg, ref) = locate(seq), ref.firstSeq <= seq else { throw StreamLogError.notFound }
        let key = BlockKey(segment: seg.base, offset: ref.offset)
        if cache.get(key) == nil {
            // Point read: decompress once (cached), decode only the wanted record.
            let raw: [UInt8]
            if let hit = rawCache.get(key) { raw = hit } else {
                raw = try seg.readRawBody(ref)
                rawCache.put(key, raw)
            }
            guard let m = RecordCodec.decodeOne(raw, seq: seq) else { throw StreamLogError.notFound }
            return m
        }
        let msgs = try blockMessages(seg, ref)
        var l = 0, h = msgs.count
        while l < h {
            let mid = (l + h) / 2
            if msgs[mid].sequence.rawValue < seq { l = mid + 1 } else { h = mid }
        }
        guard l < msgs.count, msgs[l].sequence.rawValue == seq else { throw StreamLogError.notFound }
        return msgs[l]
    }

    func sequenceLocked(raftIndex index: UInt64) throws -> UInt64? {
        guard index > 0 else { return nil }
        for seg in segments.reversed() {
            guard let firstRef = seg.blocks.first(where: { $0.kind == .messages }), firstRef.firstRaftIndex <= index,
                  firstRef.firstRaftIndex > 0 else { continue }
            let refs = seg.blocks.filter { $0.kind == .messages }
            var l = 0, h = refs.count
            while l < h {
                let mid = (l + h) / 2
                if refs[mid].firstRaftIndex <= index { l = mid + 1 } else { h = mid }
            }
            guard l > 0 else { return nil }
            return try blockMessages(seg, refs[l - 1]).first { $0.raftIndex == index }?.sequence.rawValue
        }
        return nil
    }

    /// The sequence of the last record whose Raft index is in 1...`index`, or nil when none is.
    func lastSequenceLocked(atOrBelowRaftIndex index: UInt64) throws -> UInt64? {
        guard index > 0 else { return nil }
        for seg in segments.reversed() {
            let refs = seg.blocks.filter { $0.kind == .messages && $0.firstRaftIndex > 0 && $0.firstRaftIndex <= index }
            // Raft indexes rise with the sequence: the last block starting at or below `index`
            // holds the answer.
            guard let ref = refs.last else { continue }
            return try blockMessages(seg, ref).last { $0.raftIndex > 0 && $0.raftIndex <= index }?.sequence.rawValue
        }
        return nil
    }

    /// The subject's last live sequence, repairing a stale entry by scanning backwards.
    func resolvedLast(_ subject: String) throws -> UInt64? {
        guard var info = core.subjects[subject] else { return nil }
        if info.lastStale {
            var found: UInt64?
            search: for seg in segments.reversed() where seg.base <= info.last {
                for ref in seg.blocks.reversed() where ref.kind == .messages && ref.firstSeq <= info.last {
                    if ref.lastSeq < core.floor { break search }
                    for m in try blockMessages(seg, ref).reversed() where m.sequence.rawValue <= info.last {
                        if m.subject == subject && core.isLive(m.sequence.rawValue) { found = m.sequence.rawValue; break search }
                    }
                }
            }
            guard let found else { return nil }
            info.last = found
            info.lastStale = false
            core.subjects[subject] = info
        }
        return info.last
    }

    /// The subject's first live sequence, repairing a stale entry by scanning forwards.
    func resolvedFirst(_ subject: String) throws -> UInt64? {
        guard var info = core.subjects[subject] else { return nil }
        if info.firstStale {
            var seq = max(info.first, core.floor)
            var found: UInt64?
            while seq <= core.lastSeq && found == nil {
                guard let (seg, ref) = locate(seq) else { break }
                for m in try blockMessages(seg, ref) where m.sequence.rawValue >= seq {
                    if m.subject == subject && core.isLive(m.sequence.rawValue) { found = m.sequence.rawValue; break }
                }
                seq = ref.lastSeq + 1
            }
            guard let found else { return nil }
            info.first = found
            info.firstStale = false
            core.subjects[subject] = info
        }
        return info.first
    }
}
