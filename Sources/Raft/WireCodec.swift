/// Binary encoding of the messages one node sends another (route frames between nodes).
///
/// Layout (version 1): a version byte, then LEB128 varints for every integer, one byte for each
/// enum tag or flag set, and length-prefixed byte strings:
///
///     batch      = version from to count heartbeat* count heartbeatResponse* count message*
///     heartbeat  = group header [term] [commit] [roundDelta]   (see `encodeHeartbeats`)
///     message    = group from to term tag body
///
/// Varints and omitted repeated fields keep a coalesced heartbeat at a few bytes (thousands per
/// flush are normal). The decoder accepts exactly what `encode`
/// produces: minimal varints, known tags and flag bits, sorted membership lists, no trailing
/// bytes. So a decoded batch re-encodes to the same bytes, and hostile input cannot allocate more
/// than the input's own size (every count is checked against the remaining bytes first).
public enum RaftWireCodec {
    /// The format version written first; a decoder rejects any other.
    public static let version: UInt8 = 1

    /// Encodes a batch (messages of many groups plus coalesced heartbeats/responses).
    public static func encode(_ batch: MessageBatch) -> [UInt8] {
        var w = WireWriter()
        w.bytes.reserveCapacity(estimatedSize(batch))
        w.bytes.append(version)
        w.varint(batch.from.rawValue)
        w.varint(batch.to.rawValue)
        encodeHeartbeats(batch.heartbeats, &w)
        encodeHeartbeats(batch.heartbeatResponses, &w)
        w.varint(UInt64(batch.messages.count))
        for m in batch.messages { encodeMessage(m, &w) }
        return w.bytes
    }

    /// Decodes what `encode` produced; throws `RaftWireError` on truncated, oversized or garbage
    /// input, never traps.
    public static func decode(_ bytes: [UInt8]) throws -> MessageBatch {
        try bytes.withUnsafeBytes { try decode($0) }
    }

    /// Decodes from a buffer view without copying it first (e.g. a frame inside a receive buffer).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> MessageBatch {
        var r = WireReader(bytes)
        let v = try r.byte()
        guard v == version else { throw RaftWireError(.unsupportedVersion(v), at: 0) }
        var batch = MessageBatch(from: NodeID(try r.varint()), to: NodeID(try r.varint()))
        batch.heartbeats = try decodeHeartbeats(&r)
        batch.heartbeatResponses = try decodeHeartbeats(&r)
        let count = try r.count(minElementSize: MinSize.message)
        batch.messages.reserveCapacity(count)
        for _ in 0..<count { batch.messages.append(try decodeMessage(&r)) }
        guard r.remaining == 0 else { throw RaftWireError(.trailingBytes(r.remaining), at: r.pos) }
        return batch
    }

    // MARK: - Layout constants

    /// The fewest bytes one element can take; counts are checked against these before any
    /// allocation.
    private enum MinSize {
        static let heartbeat = 2      // group header
        static let message = 5        // group from to term tag
        static let entry = 4          // term index type length
    }

    private enum HeartbeatBit {
        static let quiesce: UInt8 = 1
        static let term: UInt8 = 2
        static let commit: UInt8 = 4
        static let round: UInt8 = 8
        static let all: UInt8 = 15
    }

    private enum Tag: UInt8 {
        case requestVote = 0, voteResponse, appendEntries, appendResponse, heartbeat,
             heartbeatResponse, installSnapshot, timeoutNow, readIndexRequest, readIndexResponse
    }

    private enum Flag {
        static let first: UInt8 = 1       // preVote / granted / reject / quiesce / hasContext
        static let second: UInt8 = 2      // transfer / preVote / hasContext
    }

    // MARK: - Encoding

    private static func estimatedSize(_ b: MessageBatch) -> Int {
        var n = 1 + 20 + 30 + 8 * (b.heartbeats.count + b.heartbeatResponses.count) + 24 * b.messages.count
        for m in b.messages {
            switch m.body {
            case .appendEntries(let a): for e in a.entries { n += e.data.count + 12 }
            case .installSnapshot(let s): n += s.data.count + 10 * s.metadata.conf.allMembers.count
            default: break
            }
        }
        return n
    }

    /// Each record is `group header [term] [commit] [roundDelta]`: the header's bits say which of
    /// the optional fields follow. Term and round are written only when they differ from the
    /// previous record's (one flush shares its round and most groups share a few terms), commit
    /// only when non-zero (always zero in responses).
    private static func encodeHeartbeats(_ hbs: [CoalescedHeartbeat], _ w: inout WireWriter) {
        w.varint(UInt64(hbs.count))
        var prevTerm: UInt64 = 0, prevRound: UInt64 = 0
        for h in hbs {
            let term = h.term.rawValue, commit = h.commit.rawValue
            var header: UInt8 = h.quiesce ? HeartbeatBit.quiesce : 0
            if term != prevTerm { header |= HeartbeatBit.term }
            if commit != 0 { header |= HeartbeatBit.commit }
            if h.round != prevRound { header |= HeartbeatBit.round }
            w.varint(h.group.rawValue)
            w.bytes.append(header)
            if term != prevTerm { w.varint(term) }
            if commit != 0 { w.varint(commit) }
            if h.round != prevRound { w.varint(zigzag(h.round &- prevRound)) }
            prevTerm = term
            prevRound = h.round
        }
    }

    private static func encodeMessage(_ m: Message, _ w: inout WireWriter) {
        w.varint(m.group.rawValue)
        w.varint(m.from.rawValue)
        w.varint(m.to.rawValue)
        w.varint(m.term.rawValue)
        switch m.body {
        case .requestVote(let v):
            w.bytes.append(Tag.requestVote.rawValue)
            w.varint(v.lastLogIndex.rawValue)
            w.varint(v.lastLogTerm.rawValue)
            w.bytes.append((v.preVote ? Flag.first : 0) | (v.transfer ? Flag.second : 0))
        case .voteResponse(let v):
            w.bytes.append(Tag.voteResponse.rawValue)
            w.bytes.append((v.granted ? Flag.first : 0) | (v.preVote ? Flag.second : 0))
        case .appendEntries(let a):
            w.bytes.append(Tag.appendEntries.rawValue)
            w.varint(a.prevLogIndex.rawValue)
            w.varint(a.prevLogTerm.rawValue)
            w.varint(a.commit.rawValue)
            w.varint(UInt64(a.entries.count))
            for e in a.entries {
                w.varint(e.term.rawValue)
                w.varint(e.index.rawValue)
                w.bytes.append(e.type.rawValue)
                w.data(e.data)
            }
        case .appendResponse(let r):
            w.bytes.append(Tag.appendResponse.rawValue)
            w.varint(r.index.rawValue)
            w.bytes.append(r.reject ? Flag.first : 0)
            w.varint(r.hintIndex.rawValue)
            w.varint(r.hintTerm.rawValue)
        case .heartbeat(let h):
            w.bytes.append(Tag.heartbeat.rawValue)
            w.varint(h.commit.rawValue)
            w.varint(h.round)
            w.bytes.append((h.quiesce ? Flag.first : 0) | (h.context != nil ? Flag.second : 0))
            if let c = h.context { w.data(c) }
        case .heartbeatResponse(let r):
            w.bytes.append(Tag.heartbeatResponse.rawValue)
            w.varint(r.round)
            w.bytes.append(r.context != nil ? Flag.first : 0)
            if let c = r.context { w.data(c) }
        case .installSnapshot(let s):
            w.bytes.append(Tag.installSnapshot.rawValue)
            w.varint(s.metadata.index.rawValue)
            w.varint(s.metadata.term.rawValue)
            w.nodes(s.metadata.conf.voters)
            w.nodes(s.metadata.conf.learners)
            w.data(s.data)
        case .timeoutNow:
            w.bytes.append(Tag.timeoutNow.rawValue)
        case .readIndexRequest(let context):
            w.bytes.append(Tag.readIndexRequest.rawValue)
            w.data(context)
        case .readIndexResponse(let index, let context):
            w.bytes.append(Tag.readIndexResponse.rawValue)
            w.varint(index.rawValue)
            w.data(context)
        }
    }

    // MARK: - Decoding

    private static func decodeHeartbeats(_ r: inout WireReader) throws -> [CoalescedHeartbeat] {
        let count = try r.count(minElementSize: MinSize.heartbeat)
        var out: [CoalescedHeartbeat] = []
        out.reserveCapacity(count)
        var prevTerm: UInt64 = 0, prevRound: UInt64 = 0
        for _ in 0..<count {
            let group = GroupID(try r.varint())
            let header = try r.flags(allowed: HeartbeatBit.all)
            var term = prevTerm, commit: UInt64 = 0, round = prevRound
            // A field marked present must carry what the encoder would have omitted otherwise.
            if header & HeartbeatBit.term != 0 {
                let at = r.pos
                term = try r.varint()
                guard term != prevTerm else { throw RaftWireError(.nonCanonical("repeated heartbeat term"), at: at) }
            }
            if header & HeartbeatBit.commit != 0 {
                let at = r.pos
                commit = try r.varint()
                guard commit != 0 else { throw RaftWireError(.nonCanonical("zero heartbeat commit"), at: at) }
            }
            if header & HeartbeatBit.round != 0 {
                let at = r.pos
                let delta = unzigzag(try r.varint())
                guard delta != 0 else { throw RaftWireError(.nonCanonical("repeated heartbeat round"), at: at) }
                round = prevRound &+ delta
            }
            prevTerm = term
            prevRound = round
            out.append(CoalescedHeartbeat(group: group, term: Term(term), commit: LogIndex(commit), round: round,
                                          quiesce: header & HeartbeatBit.quiesce != 0))
        }
        return out
    }

    private static func decodeMessage(_ r: inout WireReader) throws -> Message {
        let group = GroupID(try r.varint())
        let from = NodeID(try r.varint())
        let to = NodeID(try r.varint())
        let term = Term(try r.varint())
        let tagAt = r.pos
        let tagByte = try r.byte()
        guard let tag = Tag(rawValue: tagByte) else { throw RaftWireError(.unknownMessageType(tagByte), at: tagAt) }
        let body: MessageBody
        switch tag {
        case .requestVote:
            let index = LogIndex(try r.varint())
            let lastTerm = Term(try r.varint())
            let f = try r.flags(allowed: Flag.first | Flag.second)
            body = .requestVote(VoteRequest(lastLogIndex: index, lastLogTerm: lastTerm,
                                            preVote: f & Flag.first != 0, transfer: f & Flag.second != 0))
        case .voteResponse:
            let f = try r.flags(allowed: Flag.first | Flag.second)
            body = .voteResponse(VoteResponse(granted: f & Flag.first != 0, preVote: f & Flag.second != 0))
        case .appendEntries:
            let prevIndex = LogIndex(try r.varint())
            let prevTerm = Term(try r.varint())
            let commit = LogIndex(try r.varint())
            let count = try r.count(minElementSize: MinSize.entry)
            var entries: [Entry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let eTerm = Term(try r.varint())
                let eIndex = LogIndex(try r.varint())
                let typeAt = r.pos
                let typeByte = try r.byte()
                guard let type = EntryType(rawValue: typeByte) else {
                    throw RaftWireError(.unknownEntryType(typeByte), at: typeAt)
                }
                entries.append(Entry(term: eTerm, index: eIndex, type: type, data: try r.data()))
            }
            body = .appendEntries(AppendEntries(prevLogIndex: prevIndex, prevLogTerm: prevTerm,
                                                entries: entries, commit: commit))
        case .appendResponse:
            let index = LogIndex(try r.varint())
            let f = try r.flags(allowed: Flag.first)
            let hintIndex = LogIndex(try r.varint())
            let hintTerm = Term(try r.varint())
            body = .appendResponse(AppendResponse(index: index, reject: f & Flag.first != 0,
                                                  hintIndex: hintIndex, hintTerm: hintTerm))
        case .heartbeat:
            let commit = LogIndex(try r.varint())
            let round = try r.varint()
            let f = try r.flags(allowed: Flag.first | Flag.second)
            let context = f & Flag.second != 0 ? try r.data() : nil
            body = .heartbeat(Heartbeat(commit: commit, context: context, round: round, quiesce: f & Flag.first != 0))
        case .heartbeatResponse:
            let round = try r.varint()
            let f = try r.flags(allowed: Flag.first)
            let context = f & Flag.first != 0 ? try r.data() : nil
            body = .heartbeatResponse(HeartbeatResponse(context: context, round: round))
        case .installSnapshot:
            let index = LogIndex(try r.varint())
            let snapTerm = Term(try r.varint())
            let voters = try r.nodes()
            let learnersAt = r.pos
            let learners = try r.nodes()
            // ConfState would silently drop a learner that is also a voter; reject instead, so
            // that what decodes re-encodes to the same bytes.
            if let dup = firstCommon(voters, learners) {
                throw RaftWireError(.nonCanonical("learner \(dup) is also a voter"), at: learnersAt)
            }
            let conf = ConfState(voters: voters, learners: learners)
            body = .installSnapshot(Snapshot(metadata: SnapshotMetadata(index: index, term: snapTerm, conf: conf),
                                             data: try r.data()))
        case .timeoutNow:
            body = .timeoutNow
        case .readIndexRequest:
            body = .readIndexRequest(context: try r.data())
        case .readIndexResponse:
            let index = LogIndex(try r.varint())
            body = .readIndexResponse(index: index, context: try r.data())
        }
        return Message(group: group, from: from, to: to, term: term, body: body)
    }

    /// The first id in both ascending lists (a linear merge: hostile lists cannot make it quadratic).
    private static func firstCommon(_ a: [NodeID], _ b: [NodeID]) -> NodeID? {
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] { return a[i] }
            if a[i] < b[j] { i += 1 } else { j += 1 }
        }
        return nil
    }

    @inline(__always) private static func zigzag(_ v: UInt64) -> UInt64 {
        (v << 1) ^ UInt64(bitPattern: Int64(bitPattern: v) >> 63)
    }

    @inline(__always) private static func unzigzag(_ v: UInt64) -> UInt64 {
        (v >> 1) ^ (0 &- (v & 1))
    }
}

/// Why a route frame could not be decoded, and the byte offset where decoding stopped.
public struct RaftWireError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The input ended inside a value.
        case truncated
        /// The first byte is not a version this decoder knows.
        case unsupportedVersion(UInt8)
        case unknownMessageType(UInt8)
        case unknownEntryType(UInt8)
        /// A flag byte with bits this version does not define.
        case invalidFlags(UInt8)
        /// A varint longer than 64 bits or with redundant continuation bytes.
        case malformedVarint
        /// A count or length larger than the bytes that remain could hold.
        case lengthExceedsInput(UInt64)
        /// Well-formed but not what `encode` produces (e.g. unsorted membership).
        case nonCanonical(String)
        /// Bytes left over after a complete batch.
        case trailingBytes(Int)
    }

    public var kind: Kind
    /// Offset into the input of the value that failed.
    public var offset: Int

    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        let what: String
        switch kind {
        case .truncated: what = "input truncated"
        case .unsupportedVersion(let v): what = "unsupported version \(v) (expected \(RaftWireCodec.version))"
        case .unknownMessageType(let t): what = "unknown message type \(t)"
        case .unknownEntryType(let t): what = "unknown entry type \(t)"
        case .invalidFlags(let f): what = "invalid flags 0x\(String(f, radix: 16))"
        case .malformedVarint: what = "malformed varint"
        case .lengthExceedsInput(let n): what = "length \(n) exceeds the remaining input"
        case .nonCanonical(let why): what = "non-canonical encoding: \(why)"
        case .trailingBytes(let n): what = "\(n) trailing bytes after the batch"
        }
        return "raft wire: \(what) at byte \(offset)"
    }
}

/// Appends LEB128 varints and length-prefixed strings.
private struct WireWriter {
    var bytes: [UInt8] = []

    @inline(__always) mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func data(_ d: [UInt8]) {
        varint(UInt64(d.count))
        bytes.append(contentsOf: d)
    }

    mutating func nodes(_ ids: [NodeID]) {
        varint(UInt64(ids.count))
        for id in ids { varint(id.rawValue) }
    }
}

/// Reads from a borrowed buffer; every read is bounds-checked and throws instead of trapping.
private struct WireReader {
    let buf: UnsafeRawBufferPointer
    private(set) var pos = 0

    init(_ buf: UnsafeRawBufferPointer) { self.buf = buf }

    var remaining: Int { buf.count - pos }

    @inline(__always) mutating func byte() throws -> UInt8 {
        guard pos < buf.count else { throw RaftWireError(.truncated, at: pos) }
        let b = buf[pos]
        pos += 1
        return b
    }

    /// A minimal LEB128 varint of at most 64 bits.
    @inline(__always) mutating func varint() throws -> UInt64 {
        let start = pos
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw RaftWireError(.malformedVarint, at: start) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                // A zero final byte after others adds nothing: a second encoding of the same value.
                if b == 0 && pos - start > 1 { throw RaftWireError(.malformedVarint, at: start) }
                return result
            }
            shift += 7
        }
    }

    /// A flag byte, rejecting bits outside `allowed`.
    mutating func flags(allowed: UInt8) throws -> UInt8 {
        let at = pos
        let f = try byte()
        guard f & ~allowed == 0 else { throw RaftWireError(.invalidFlags(f), at: at) }
        return f
    }

    /// An element count, refused when that many elements could not fit in the remaining bytes,
    /// so that a hostile count never drives an allocation.
    mutating func count(minElementSize: Int) throws -> Int {
        let at = pos
        let n = try varint()
        guard n <= UInt64(remaining / minElementSize) else { throw RaftWireError(.lengthExceedsInput(n), at: at) }
        return Int(n)
    }

    mutating func data() throws -> [UInt8] {
        let n = try count(minElementSize: 1)
        let out = [UInt8](UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + n)]))
        pos += n
        return out
    }

    /// A strictly ascending list of node ids (as `ConfState` keeps them).
    mutating func nodes() throws -> [NodeID] {
        let n = try count(minElementSize: 1)
        var out: [NodeID] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let at = pos
            let id = NodeID(try varint())
            if let last = out.last, !(last < id) {
                throw RaftWireError(.nonCanonical("node ids not strictly ascending"), at: at)
            }
            out.append(id)
        }
        return out
    }

}
