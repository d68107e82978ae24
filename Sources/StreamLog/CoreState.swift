/// Per-subject summary: what last-by-subject, max_msgs_per_subject and purge-by-subject need.
/// `first`/`last` may be stale after removals; they are repaired lazily by a scan.
struct SubjectInfo: Equatable {
    var first: UInt64
    var last: UInt64
    var count: UInt64
    var firstStale = false
    var lastStale = false
}

/// The in-memory view of which sequences are live. Pure bookkeeping; no I/O.
struct CoreState: Equatable {
    /// Every sequence below this is gone; kept equal to the first live sequence.
    var floor: UInt64 = 1
    var lastSeq: UInt64 = 0
    var lastRaftIndex: UInt64 = 0
    var lastTerm: UInt64 = 0
    var lastTimestamp: Int64 = 0
    var messages: UInt64 = 0
    var bytes: UInt64 = 0
    /// Interior deletes: sequences in (floor, lastSeq] that are gone.
    var deleted = Set<UInt64>()
    var subjects: [String: SubjectInfo] = [:]
    /// false: `bytes` and `subjects` stay empty (`StreamLogConfig.indexesSubjects`).
    var indexesSubjects = true

    func isLive(_ seq: UInt64) -> Bool { seq >= floor && seq <= lastSeq && !deleted.contains(seq) }

    @inline(__always)
    static func bump(_ info: inout SubjectInfo, _ seq: UInt64) {
        info.last = seq
        info.lastStale = false
        info.count += 1
    }

    /// Records a new live message at `seq` (always the next sequence).
    mutating func add(seq: UInt64, subject: String, size: UInt64) {
        precondition(seq > lastSeq, "sequences only grow: \(seq) after \(lastSeq)")
        if messages == 0 && deleted.isEmpty && floor < seq { floor = seq }
        if seq > lastSeq + 1 {
            // From the floor: an empty log's skipped sequences are below it, not deleted.
            var s = max(lastSeq + 1, floor)
            while s < seq { deleted.insert(s); s += 1 }
        }
        lastSeq = seq
        messages += 1
        if indexesSubjects {
            bytes += size
            // One hash lookup: mutate in place (a new subject starts at this sequence).
            Self.bump(&subjects[subject, default: SubjectInfo(first: seq, last: seq, count: 0)], seq)
        }
        if !deleted.isEmpty { normalizeFloor() }
    }

    /// Raises the last sequence without a message (a tombstone block recorded a later last
    /// sequence than the records that survive): the skipped sequences are gone, not live.
    mutating func advanceLastSeq(to seq: UInt64) {
        guard seq > lastSeq else { return }
        for s in (lastSeq + 1)...seq where s >= floor { deleted.insert(s) }
        lastSeq = seq
        normalizeFloor()
    }

    /// Removes the live message at `seq` (caller read its subject and size). Idempotent.
    @discardableResult
    mutating func remove(seq: UInt64, subject: String, size: UInt64) -> Bool {
        guard isLive(seq) else { return false }
        if seq == floor { floor += 1 } else { deleted.insert(seq) }
        messages -= 1
        bytes -= min(bytes, size)
        if indexesSubjects, var info = subjects[subject] {
            info.count -= 1
            if info.count == 0 {
                subjects[subject] = nil
            } else {
                if seq == info.first { info.firstStale = true }
                if seq == info.last { info.lastStale = true }
                subjects[subject] = info
            }
        }
        normalizeFloor()
        return true
    }

    /// Moves the floor past deleted sequences so it names the first live one.
    mutating func normalizeFloor() {
        if messages == 0 {
            floor = max(floor, lastSeq + 1)
            deleted.removeAll(keepingCapacity: true)
            return
        }
        while deleted.remove(floor) != nil { floor += 1 }
    }

    /// Forgets everything below `newFloor` when no message there is live (purge all / compact past end).
    mutating func resetEmpty(floor newFloor: UInt64) {
        floor = max(floor, newFloor)
        if floor > lastSeq + 1 { lastSeq = floor - 1 }
        messages = 0
        bytes = 0
        deleted.removeAll()
        subjects.removeAll()
    }

    /// How many sequences below `seq` are live (`seq` at most `lastSeq + 1`).
    func liveCount(below seq: UInt64) -> UInt64 {
        guard seq > floor else { return 0 }
        return seq - floor - UInt64(deleted.lazy.filter { $0 < seq }.count)
    }

    /// Switches the subject index on or off; off drops what it held (a state loaded from a
    /// snapshot written with it on).
    mutating func setIndexesSubjects(_ on: Bool) {
        indexesSubjects = on
        if !on {
            bytes = 0
            subjects.removeAll()
        }
    }

    /// Drops bookkeeping for sequences above `seq` (after a suffix truncation removed them).
    mutating func dropDeleted(above seq: UInt64) {
        deleted = deleted.filter { $0 <= seq }
    }
}
