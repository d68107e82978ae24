/// Removal: deletes, purges, compaction, retention limits and age.
extension StreamLog {
    /// Deletes one message. With `secure`, its block is rewritten in place without it (NATS
    /// "secure delete"): its bytes no longer exist in the segment. Returns false when not live.
    @discardableResult
    public func delete(_ seq: StreamSequence, secure: Bool = false) throws -> Bool {
        let ticket: UInt64? = try lock.withLock {
            try checkWritable()
            return try mapErrors {
                let s = seq.rawValue
                guard core.isLive(s) else { return nil }
                let m = try messageLocked(s)
                let t = try writeTombstones([.delete(s)])
                core.remove(seq: s, subject: m.subject, size: m.accountedSize)
                if secure {
                    // Make the delete durable and covered by the snapshot before the record's
                    // bytes vanish, so recovery never needs to read the erased record.
                    try syncTailNow()
                    try writeSnapshot()
                    try overwriteInPlace(removing: s)
                }
                try? rollIfNeeded()
                return t
            }
        }
        guard let ticket else { return false }
        try waitUntilDurable(ticket)
        return true
    }

    /// What to purge: everything, or narrowed by subject, kept tail, or sequence.
    public struct PurgeRequest: Sendable {
        /// Only messages on this subject (exact match).
        public var subject: String?
        /// Keep this many of the newest matching messages.
        public var keep: UInt64?
        /// Remove matching messages with sequence below this.
        public var upToSequence: UInt64?

        public init(subject: String? = nil, keep: UInt64? = nil, upToSequence: UInt64? = nil) {
            self.subject = subject
            self.keep = keep
            self.upToSequence = upToSequence
        }
    }

    /// Purges and returns the number of messages removed.
    @discardableResult
    public func purge(_ request: PurgeRequest = PurgeRequest()) throws -> UInt64 {
        let (ticket, removed): (UInt64, UInt64) = try lock.withLock {
            try checkWritable()
            return try mapErrors {
                let r = try purgeLocked(request)
                try? rollIfNeeded()
                return r
            }
        }
        try waitUntilDurable(ticket)
        return removed
    }

    func purgeLocked(_ r: PurgeRequest) throws -> (UInt64, UInt64) {
        let before = core.messages
        guard let subject = r.subject else {
            var floor = core.lastSeq + 1
            if let keep = r.keep { floor = keep >= core.messages ? core.floor : try nthLiveFromEnd(keep) }
            if let up = r.upToSequence { floor = min(floor, up) }
            let t = try compactLocked(upTo: floor)
            return (t, before - core.messages)
        }
        guard let info = core.subjects[subject] else { return (writtenTicket, 0) }
        var toRemove = info.count
        if let keep = r.keep { toRemove = info.count > keep ? info.count - keep : 0 }
        var doomed: [StoredMessage] = []
        var seq = try resolvedFirst(subject) ?? core.lastSeq + 1
        var guardRounds = 0
        while UInt64(doomed.count) < toRemove && seq <= core.lastSeq {
            guard let (seg, ref) = locate(seq) else { break }
            for m in try blockMessages(seg, ref) where m.sequence.rawValue >= seq && UInt64(doomed.count) < toRemove {
                if let up = r.upToSequence, m.sequence.rawValue >= up { toRemove = UInt64(doomed.count); break }
                if m.subject == subject && core.isLive(m.sequence.rawValue) { doomed.append(m) }
            }
            seq = ref.lastSeq + 1
            guardRounds += 1
            precondition(guardRounds < 1 << 40)
        }
        guard !doomed.isEmpty else { return (writtenTicket, 0) }
        let t = try writeTombstones(doomed.map { .delete($0.sequence.rawValue) })
        for m in doomed { core.remove(seq: m.sequence.rawValue, subject: m.subject, size: m.accountedSize) }
        return (t, UInt64(doomed.count))
    }

    /// Sequence of the `n`-th newest live message (n >= 1).
    func nthLiveFromEnd(_ n: UInt64) throws -> UInt64 {
        if n == 0 { return core.lastSeq + 1 }
        var seen: UInt64 = 0
        var seq = core.lastSeq
        while seq >= core.floor {
            if core.isLive(seq) {
                seen += 1
                if seen == n { return seq }
            }
            seq -= 1
        }
        return core.floor
    }

    /// Removes every message below `seq` (retention, snapshots): whole segments are dropped,
    /// messages in the first kept segment are marked deleted by a floor tombstone.
    @discardableResult
    public func compact(upTo seq: StreamSequence) throws -> UInt64 {
        let (ticket, removed): (UInt64, UInt64) = try lock.withLock {
            try checkWritable()
            let before = core.messages
            let t = try mapErrors { try compactLocked(upTo: seq.rawValue) }
            try? rollIfNeeded()
            return (t, before - core.messages)
        }
        try waitUntilDurable(ticket)
        return removed
    }

    func compactLocked(upTo seq: UInt64) throws -> UInt64 {
        guard seq > core.floor else { return writtenTicket }
        let t = try writeTombstones([.floor(seq)])
        try advanceFloor(to: seq)
        try dropSegmentsBelowFloor()
        return t
    }

    /// Applies a floor: removes the live messages below `seq` from the bookkeeping.
    func advanceFloor(to seq: UInt64) throws {
        guard seq > core.floor else { return }
        if seq > core.lastSeq {
            core.resetEmpty(floor: seq)
            return
        }
        if core.indexesSubjects {
            try removeBelowReadingBlocks(seq)
        } else {
            // Nothing to take off but the count: no block below the floor is read.
            core.messages -= min(core.messages, core.liveCount(below: seq))
        }
        core.floor = max(core.floor, seq)
        core.deleted = core.deleted.filter { $0 >= core.floor }
        core.normalizeFloor()
    }

    /// Takes every live message below `seq` off the bookkeeping, with the subject and size its
    /// record holds (the floor itself moves in `advanceFloor`).
    private func removeBelowReadingBlocks(_ seq: UInt64) throws {
        var s = core.floor
        while s < seq && core.messages > 0 {
            if core.isLive(s) {
                guard let (seg, ref) = locate(s) else { break }
                for m in try blockMessages(seg, ref) where m.sequence.rawValue >= s && m.sequence.rawValue < seq {
                    core.remove(seq: m.sequence.rawValue, subject: m.subject, size: m.accountedSize)
                }
                s = max(s, ref.lastSeq) + 1
            } else {
                s += 1
            }
            s = max(s, core.floor)
        }
    }

    /// Removes segment files every message of which is below the floor; the directory is fsync'd.
    /// With `StreamLogConfig.defersFileRemoval` a segment is renamed out of the log instead
    /// (`removalJob`).
    func dropSegmentsBelowFloor() throws {
        var dropped = false
        while segments.count > 1 && segments[1].base <= core.floor {
            let seg = segments.removeFirst()
            if config.defersFileRemoval {
                try fs.rename(seg.path, to: seg.path + Self.droppedSuffix)
                droppedFiles.append(seg.path + Self.droppedSuffix)
            } else {
                try fs.remove(seg.path)
            }
            try fs.remove(seg.indexPath)
            dropped = true
        }
        if dropped {
            clearCaches()
            try fs.syncDirectory(directory)
            try writeSnapshot()
        }
    }

    /// Whether later appends try LZ4 (a stream's `compression` changed). Blocks already
    /// written keep their form: each block's flag says how to read it.
    public func setCompression(_ on: Bool) {
        lock.withLock { config.compression = on }
    }

    /// Changes limits at runtime (stream update) and applies them at once (removing old
    /// messages whatever the discard policy, as NATS does on update).
    public func updateLimits(_ limits: RetentionLimits) throws {
        try lock.withLock {
            try checkWritable()
            try Self.checkIndexNeeds(limits, indexesSubjects: config.indexesSubjects)
            config.limits = limits
            try mapErrors {
                try enforceLimitsLocked(now: clock())
                try flushPendingTombstones()
                try dropSegmentsBelowFloor()
                try? rollIfNeeded()
            }
        }
    }

    /// Removes messages older than max_age at `now` (call from a timer); returns how many.
    @discardableResult
    public func expire(now: Int64) throws -> UInt64 {
        try lock.withLock {
            try checkWritable()
            let before = core.messages
            try mapErrors {
                try enforceLimitsLocked(now: now)
                try flushPendingTombstones()
                try dropSegmentsBelowFloor()
                try? rollIfNeeded()
            }
            return before - core.messages
        }
    }

    /// Applies age, count, byte and per-subject limits by removing the oldest messages. The
    /// removals become pending tombstones (written with the next block). `touched` narrows the
    /// per-subject check to subjects just appended (nil: all subjects).
    func enforceLimitsLocked(now: Int64, touched: Set<String>? = nil) throws {
        let l = config.limits
        var floorMoved = false
        func removeFirst() throws {
            let m = try messageLocked(core.floor)
            core.remove(seq: m.sequence.rawValue, subject: m.subject, size: m.accountedSize)
            floorMoved = true
        }
        if let age = l.maxAgeNanos {
            let cutoff = now - age
            while core.messages > 0, try messageLocked(core.floor).timestamp < cutoff { try removeFirst() }
        }
        if let max = l.maxMessages { while core.messages > max { try removeFirst() } }
        if let max = l.maxBytes { while core.bytes > max && core.messages > 0 { try removeFirst() } }
        if floorMoved { appendPending(.floor(core.floor)) }
        if let max = l.maxMessagesPerSubject {
            let subjects = touched.map(Array.init) ?? core.subjects.filter { $0.value.count > max }.map(\.key)
            for subject in subjects {
                var rounds: UInt64 = 0
                let bound = core.subjects[subject]?.count ?? 0
                while let info = core.subjects[subject], info.count > max, let first = try resolvedFirst(subject) {
                    let m = try messageLocked(first)
                    core.remove(seq: first, subject: subject, size: m.accountedSize)
                    appendPending(.delete(first))
                    rounds += 1
                    precondition(rounds <= bound, "per-subject enforcement did not converge")
                }
            }
        }
    }

    func appendPending(_ t: Tombstone) {
        if case .floor = t, let last = pendingTombstones.last, case .floor = last {
            pendingTombstones[pendingTombstones.count - 1] = t
        } else {
            pendingTombstones.append(t)
        }
    }
}
