/// Fetching the messages of a damaged range (`StreamLog.damage(inSegment:)`) from one peer, as
/// pure state: which sequences to ask for next and which answers are acceptable. Messages are
/// immutable once stored and every replica stores the same message at the same sequence, so
/// any replica that holds a sequence can supply it; one a peer lacks (removed since, or not
/// applied yet there) is asked of the next peer with `nextPeer()`.
struct RangeFetch {
    /// Ascending, disjoint ranges still to fetch in this pass.
    private(set) var wanted: [ClosedRange<UInt64>]
    /// Fetched so far, by sequence.
    private(set) var got: [UInt64: CatchupMessage] = [:]
    private var run = 0
    private var cursor: UInt64

    init(missing: [ClosedRange<UInt64>]) {
        wanted = missing
        cursor = missing.first?.lowerBound ?? 0
    }

    /// The next request of this pass (`from...to`), or nil when the pass is over.
    var next: (from: UInt64, to: UInt64)? {
        run < wanted.count ? (cursor, wanted[run].upperBound) : nil
    }

    /// Sequences of the damaged range nobody supplied yet, as ranges.
    var lacking: [ClosedRange<UInt64>] {
        var out: [ClosedRange<UInt64>] = []
        for r in wanted {
            var start: UInt64?
            for s in r {
                if got[s] == nil { if start == nil { start = s } } else if let st = start { out.append(st...(s - 1)); start = nil }
            }
            if let st = start { out.append(st...r.upperBound) }
        }
        return out
    }

    var isComplete: Bool { lacking.isEmpty }

    /// An answer to `next`: the peer's present messages of `[from, nextSeq)`, ascending.
    mutating func received(from: UInt64, next nextSeq: UInt64, _ messages: [CatchupMessage]) throws {
        guard let (f, to) = next, from == f, nextSeq > from else {
            throw StreamCatchup.ProtocolError(description: "chunk [\(from), \(nextSeq)) does not answer the request")
        }
        var prev = from - 1
        for m in messages {
            guard m.seq > prev, m.seq < nextSeq, m.seq <= to else {
                throw StreamCatchup.ProtocolError(description: "message \(m.seq) out of order in chunk [\(from), \(nextSeq))")
            }
            prev = m.seq
            got[m.seq] = m
        }
        if nextSeq > to {
            run += 1
            if run < wanted.count { cursor = wanted[run].lowerBound }
        } else {
            cursor = nextSeq
        }
    }

    /// Starts a pass over what is still lacking (for another peer).
    mutating func nextPeer() {
        wanted = lacking
        run = 0
        cursor = wanted.first?.lowerBound ?? 0
    }
}
