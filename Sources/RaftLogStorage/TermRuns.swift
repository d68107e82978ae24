import Raft

/// The term of every entry in the log, run-length encoded: one `(firstIndex, term)` per run of
/// equal terms. Terms change only at elections, so the whole log's terms fit in a few runs and
/// `term(at:)` (hot in Raft: every append and every replication message asks) never touches
/// the disk. Pure bookkeeping; no I/O.
struct TermRuns: Equatable {
    /// Sorted by index; terms strictly increase from run to run.
    private(set) var runs: [(start: LogIndex, term: Term)] = []

    static func == (a: TermRuns, b: TermRuns) -> Bool {
        a.runs.count == b.runs.count && zip(a.runs, b.runs).allSatisfy { $0.start == $1.start && $0.term == $1.term }
    }

    /// Records that the entry at `index` (one past the previous last) has `term`. Returns false
    /// when the term goes back, which a valid Raft log never does.
    @discardableResult
    mutating func append(index: LogIndex, term: Term) -> Bool {
        if let last = runs.last {
            if term == last.term { return true }
            if term < last.term { return false }
        }
        runs.append((index, term))
        return true
    }

    /// The term at `index`, assuming the caller checked that `index` is in the log.
    func term(at index: LogIndex) -> Term? {
        // Fast path: most lookups are near the end of the log.
        if let last = runs.last, index >= last.start { return last.term }
        var lo = 0, hi = runs.count - 1, found = -1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if runs[mid].start <= index { found = mid; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found >= 0 ? runs[found].term : nil
    }

    /// Forgets entries after `index`.
    mutating func truncate(after index: LogIndex) {
        while let last = runs.last, last.start > index { runs.removeLast() }
    }

    /// Forgets entries up to and including `index` (the run holding `index + 1` now starts there).
    mutating func compact(upTo index: LogIndex) {
        var drop = 0
        while drop < runs.count - 1 && runs[drop + 1].start <= index.next { drop += 1 }
        if drop > 0 { runs.removeFirst(drop) }
        if let first = runs.first, first.start <= index { runs[0].start = index.next }
    }

    mutating func removeAll() { runs.removeAll() }
}
