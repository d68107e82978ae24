/// The time `Nats-Msg-Id` duplicate windows run on (docs/jetstream-cluster.md, "Dedup clock").
///
/// Message timestamps are the leader's wall clock, which can jump: a forward jump larger than
/// `duplicate_window` would expire every remembered id at once, so a retried publish would be
/// stored twice. The leader therefore stamps each message entry with a second time, the dedup
/// time, from this clock: it follows the wall clock at a fixed offset (`skew`) as long as the wall
/// clock moves like the monotonic clock; when the two disagree by more than `tolerance` (a jump
/// either way) it takes the monotonic elapsed time instead and moves the offset. It never runs
/// backwards. Every replica uses the entry's dedup time as "now" at apply, so all decide alike.
/// Pure: the caller passes both clock readings.
struct DedupClock: Equatable {
    /// Wall-clock steps up to this size are taken as they are (NTP slewing, small corrections).
    static let defaultTolerance: Int64 = 2_000_000_000

    let tolerance: Int64
    /// The last dedup time stamped (or resumed from).
    private(set) var last: Int64
    /// Monotonic nanoseconds when `last` was stamped.
    private var lastMono: UInt64
    /// Dedup time minus wall time of the last stamp.
    private(set) var skew: Int64

    /// False until the first stamp of a clock that resumed from nothing (a new stream).
    private var started: Bool

    /// Starts (on becoming leader, or at open for a single node) after the newest dedup time the
    /// log holds, `time`, seen at monotonic `mono`, with the offset the stream last used. Nil
    /// when the stream has none yet: the first stamp is then the wall clock plus `skew`.
    init(resumingAt time: Int64?, skew: Int64, mono: UInt64, tolerance: Int64 = defaultTolerance) {
        self.last = time ?? .min
        self.started = time != nil
        self.lastMono = mono
        self.skew = skew
        self.tolerance = tolerance
    }

    /// The dedup time of an entry proposed now (`wall`: JetStream's wall clock, `mono`: the
    /// monotonic clock, both in nanoseconds). Never below the previous stamp.
    mutating func stamp(wall: Int64, mono: UInt64) -> Int64 {
        guard started else {
            started = true
            last = saturatingAdd(wall, skew)
            lastMono = mono
            return last
        }
        let elapsed = mono >= lastMono ? Int64(clamping: mono - lastMono) : 0
        let predicted = saturatingAdd(last, elapsed)
        var d = saturatingAdd(wall, skew)
        let off = d >= predicted ? d.subtractingReportingOverflow(predicted) : predicted.subtractingReportingOverflow(d)
        if d < last || off.overflow || off.partialValue > tolerance {
            // The wall clock jumped (or another node's clock took over): the elapsed time counts,
            // the jump does not.
            d = max(predicted, last)
            skew = d.subtractingReportingOverflow(wall).overflow ? 0 : d - wall
        }
        last = d
        lastMono = mono
        return d
    }
}

/// Where the dedup time of stored messages comes from after a restart or a stream copy: a
/// stored message's dedup time is its timestamp plus the offset in force at its sequence. The
/// offset changes only when the leader's wall clock jumps (or leaders with clocks far apart
/// take turns), so this is a short list of (first sequence, offset) marks, replicated by the
/// log (every replica adds the same marks at apply) and kept in `<stream>/dedup-skews`.
///
/// The same file keeps the one thing about ids the stored messages can lose: the `Nats-Msg-Id`
/// of the message at the last sequence once that message was removed (`removedLast`).
/// `Nats-Expected-Last-Msg-Id` compares with it; without it a restarted replica (or a copy)
/// would judge that header differently from its running peers.
struct DedupSkews: Equatable {
    struct Mark: Equatable {
        var seq: UInt64
        var skew: Int64
    }

    /// The id of the removed message at `seq`, the stream's last sequence when it was removed.
    /// Stale (and ignored) once a later sequence is stored.
    struct RemovedLast: Equatable {
        var seq: UInt64
        var id: String
    }

    /// Ascending by `seq`; sequences before the first mark have offset 0.
    private(set) var marks: [Mark] = []
    /// Old marks beyond this many are dropped (only a clock jumping all the time gets here).
    static let maxMarks = 4096
    static let fileName = "dedup-skews"

    var removedLast: RemovedLast?

    init(marks: [Mark] = [], removedLast: RemovedLast? = nil) {
        self.marks = marks
        self.removedLast = removedLast
    }

    /// The removed last message's id when `lastSeq` is still the last sequence.
    func removedLastID(at lastSeq: UInt64) -> String? {
        removedLast.flatMap { $0.seq == lastSeq ? $0.id : nil }
    }

    /// The offset of the newest message.
    var current: Int64 { marks.last?.skew ?? 0 }

    /// The largest offset of any sequence (never below 0: unmarked sequences have 0).
    var maxSkew: Int64 { marks.reduce(0) { max($0, $1.skew) } }

    func skew(at seq: UInt64) -> Int64 {
        var lo = 0, hi = marks.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if marks[mid].seq <= seq { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? 0 : marks[lo - 1].skew
    }

    /// The message stored at `seq` (after every marked sequence) has `skew`. True when the
    /// marks changed (the caller persists them).
    mutating func note(seq: UInt64, skew: Int64) -> Bool {
        if let last = marks.last, last.seq >= seq {
            // A mark written for a sequence that was not stored after all (or is re-applied).
            marks.removeAll { $0.seq >= seq }
            if self.skew(at: seq) == skew { return true }
            marks.append(Mark(seq: seq, skew: skew))
            return true
        }
        guard skew != current else { return false }
        marks.append(Mark(seq: seq, skew: skew))
        if marks.count > Self.maxMarks { marks.removeFirst(marks.count - Self.maxMarks) }
        return true
    }

    /// Drops marks past `lastSeq` (written before a store append that a crash or power cut lost;
    /// the log replays it and writes them again).
    mutating func dropAbove(_ lastSeq: UInt64) {
        marks.removeAll { $0.seq > lastSeq }
        if let r = removedLast, r.seq != lastSeq { removedLast = nil }
    }

    /// Drops marks that no stored message needs (those before the one in force at `firstSeq`).
    mutating func dropBelow(_ firstSeq: UInt64) -> Bool {
        guard let i = marks.lastIndex(where: { $0.seq <= firstSeq }), i > 0 else { return false }
        marks.removeFirst(i)
        return true
    }

    /// Longest `removedLast` id written down; a longer one is not (header values have no
    /// limit of their own, but a header line this long is already absurd).
    static let maxRemovedLastIDBytes = 4096

    /// "DSK1" | u32 count | (u64 seq, i64 skew) per mark, then, with `removedLast`,
    /// u64 seq | u32 length | id bytes; little-endian.
    func encode() -> [UInt8] {
        var out = Array("DSK1".utf8)
        out.reserveCapacity(8 + 16 * marks.count)
        withUnsafeBytes(of: UInt32(marks.count).littleEndian) { out.append(contentsOf: $0) }
        for m in marks {
            withUnsafeBytes(of: m.seq.littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: m.skew.littleEndian) { out.append(contentsOf: $0) }
        }
        if let r = removedLast, r.id.utf8.count <= Self.maxRemovedLastIDBytes {
            let id = Array(r.id.utf8)
            withUnsafeBytes(of: r.seq.littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(id.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: id)
        }
        return out
    }

    /// Nil for anything `encode` cannot have produced (a torn or foreign file).
    static func decode(_ bytes: [UInt8]) -> DedupSkews? {
        guard bytes.count >= 8, Array(bytes[0..<4]) == Array("DSK1".utf8) else { return nil }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        let n = Int(UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 24)
        guard n <= maxMarks, bytes.count >= 8 + 16 * n else { return nil }
        var marks: [Mark] = []
        for i in 0..<n {
            let m = Mark(seq: u64(8 + 16 * i), skew: Int64(bitPattern: u64(16 + 16 * i)))
            if let prev = marks.last, prev.seq >= m.seq { return nil }
            marks.append(m)
        }
        let rest = 8 + 16 * n
        guard bytes.count > rest else { return DedupSkews(marks: marks) }
        guard bytes.count >= rest + 12 else { return nil }
        let len = (0..<4).reduce(0) { $0 | Int(bytes[rest + 8 + $1]) << (8 * $1) }
        guard len <= maxRemovedLastIDBytes, bytes.count == rest + 12 + len,
              let id = String(validating: bytes[(rest + 12)...], as: UTF8.self) else { return nil }
        return DedupSkews(marks: marks, removedLast: RemovedLast(seq: u64(rest), id: id))
    }
}
