import Raft
import StreamLog

/// The two small files next to the log, each replaced atomically (temp file, fsync, rename,
/// directory fsync) and protected by a CRC32C:
/// - `raft.state`: the hard state (term, vote, commit) and the compaction point (index, term) —
///   the term of the entry just below the first one still in the log.
/// - `raft.snap`: the latest snapshot (index, term, membership, application data).
struct PersistentState: Equatable {
    var hardState = HardState()
    var compactedIndex = LogIndex.zero
    var compactedTerm = Term.zero
}

enum StateFiles {
    static let stateName = "raft.state"
    static let snapshotName = "raft.snap"
    static let stateMagic: UInt32 = 0x3153_5452  // "RTS1"
    static let snapMagic: UInt32 = 0x3153_4E52  // "RNS1"
    /// Upper bound on members in a decoded configuration (hostile or damaged files).
    static let maxMembers: UInt64 = 10_000

    // MARK: raft.state

    static func encode(_ s: PersistentState) -> [UInt8] {
        var w = Writer()
        w.u32(stateMagic)
        w.u64(s.hardState.term.rawValue)
        w.u8(s.hardState.vote == nil ? 0 : 1)
        w.u64(s.hardState.vote?.rawValue ?? 0)
        w.u64(s.hardState.commit.rawValue)
        w.u64(s.compactedIndex.rawValue)
        w.u64(s.compactedTerm.rawValue)
        return w.sealed()
    }

    static func decodeState(_ bytes: [UInt8]) -> PersistentState? {
        guard var r = Reader(sealed: bytes), r.u32() == stateMagic,
              let term = r.u64(), let hasVote = r.u8(), hasVote <= 1, let vote = r.u64(), let commit = r.u64(),
              let ci = r.u64(), let ct = r.u64(), r.atEnd else { return nil }
        return PersistentState(hardState: HardState(term: Term(term), vote: hasVote == 1 ? NodeID(vote) : nil,
                                                    commit: LogIndex(commit)),
                               compactedIndex: LogIndex(ci), compactedTerm: Term(ct))
    }

    // MARK: raft.snap

    static func encode(_ s: Snapshot) -> [UInt8] {
        var w = Writer()
        w.u32(snapMagic)
        w.u64(s.metadata.index.rawValue)
        w.u64(s.metadata.term.rawValue)
        w.u64(UInt64(s.metadata.conf.voters.count))
        for v in s.metadata.conf.voters { w.u64(v.rawValue) }
        w.u64(UInt64(s.metadata.conf.learners.count))
        for l in s.metadata.conf.learners { w.u64(l.rawValue) }
        w.u64(UInt64(s.data.count))
        w.bytes.append(contentsOf: s.data)
        return w.sealed()
    }

    static func decodeSnapshot(_ bytes: [UInt8]) -> Snapshot? {
        guard var r = Reader(sealed: bytes), r.u32() == snapMagic, let index = r.u64(), let term = r.u64() else { return nil }
        func members() -> [NodeID]? {
            guard let n = r.u64(), n <= maxMembers else { return nil }
            var out: [NodeID] = []
            for _ in 0..<n {
                guard let v = r.u64() else { return nil }
                out.append(NodeID(v))
            }
            return out
        }
        guard let voters = members(), let learners = members(), let n = r.u64(), let data = r.take(n), r.atEnd else { return nil }
        return Snapshot(metadata: SnapshotMetadata(index: LogIndex(index), term: Term(term),
                                                   conf: ConfState(voters: voters, learners: learners)),
                        data: data)
    }

    // MARK: files

    /// Replaces `directory/name` atomically and durably: a crash leaves the old or the new file.
    static func writeAtomically(_ fs: FileSystem, directory: String, name: String, bytes: [UInt8]) throws {
        try fs.writeAtomically(bytes, directory: directory, name: name)
    }

    /// The whole file, or nil when it does not exist.
    static func read(_ fs: FileSystem, directory: String, name: String) throws -> [UInt8]? {
        let path = join(directory, name)
        guard fs.fileExists(path) else { return nil }
        let f = try fs.open(path, create: false)
        defer { f.close() }
        return try f.read(count: Int(try f.size()), at: 0)
    }

    static func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }
}

/// Little-endian writer whose output ends with a CRC32C of everything before it.
struct Writer {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    func sealed() -> [UInt8] {
        var out = bytes
        withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { out.append(contentsOf: $0) }
        return out
    }
}

/// Bounds-checked little-endian reader over a CRC-verified body (nil on any mismatch).
struct Reader {
    private let bytes: [UInt8]
    private let end: Int
    private var pos = 0

    init?(sealed: [UInt8]) {
        guard sealed.count >= 4 else { return nil }
        end = sealed.count - 4
        var crc: UInt32 = 0
        for i in 0..<4 { crc |= UInt32(sealed[end + i]) << (8 * UInt32(i)) }
        guard CRC32C.checksum(Array(sealed[..<end])) == crc else { return nil }
        bytes = sealed
    }

    var atEnd: Bool { pos == end }

    mutating func u8() -> UInt8? {
        guard pos < end else { return nil }
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func u32() -> UInt32? { fixed(4).map { UInt32(truncatingIfNeeded: $0) } }
    mutating func u64() -> UInt64? { fixed(8) }

    private mutating func fixed(_ n: Int) -> UInt64? {
        guard end - pos >= n else { return nil }
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[pos + i]) << (8 * UInt64(i)) }
        pos += n
        return v
    }

    mutating func take(_ n: UInt64) -> [UInt8]? {
        guard n <= UInt64(end - pos) else { return nil }
        defer { pos += Int(n) }
        return Array(bytes[pos..<(pos + Int(n))])
    }
}
