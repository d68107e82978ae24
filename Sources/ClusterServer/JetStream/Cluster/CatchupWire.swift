/// The route frames of a stream copy (namespace `jscatchup`): a replica that needs the stream's
/// state asks the stream leader for it, then for messages in bounded chunks, one request
/// outstanding at a time (so a big stream never sits in memory or in a route buffer at once).
enum CatchupFrame: Equatable {
    /// Follower: the stream state at the leader's applied index, which must be ≥ `minIndex`.
    case stateRequest(group: UInt64, request: UInt64, minIndex: UInt64)
    /// Follower: messages with sequences in `from...to`, at most about `maxBytes` of them.
    case messagesRequest(group: UInt64, request: UInt64, from: UInt64, to: UInt64, maxBytes: UInt32)
    case state(group: UInt64, request: UInt64, CatchupState)
    /// Leader: the present messages of `[from, next)`, ascending.
    case messages(group: UInt64, request: UInt64, from: UInt64, next: UInt64, [CatchupMessage])
    /// Leader (or a replica that is not the leader): cannot answer now.
    case refused(group: UInt64, request: UInt64, reason: String)

    var group: UInt64 {
        switch self {
        case let .stateRequest(g, _, _), let .messagesRequest(g, _, _, _, _), let .state(g, _, _),
             let .messages(g, _, _, _, _), let .refused(g, _, _): return g
        }
    }

    var request: UInt64 {
        switch self {
        case let .stateRequest(_, r, _), let .messagesRequest(_, r, _, _, _), let .state(_, r, _),
             let .messages(_, r, _, _, _), let .refused(_, r, _): return r
        }
    }
}

struct CatchupWireError: Error, CustomStringConvertible {
    let description: String
}

/// Binary layout: version byte, tag byte, then little-endian u64/i64 fields, u32 counts and
/// u32-length byte strings (0xFFFFFFFF = absent). Decoding checks every length and count
/// against the bytes left before allocating, so hostile input never traps or over-allocates.
enum CatchupWire {
    static let version: UInt8 = 1
    /// A state frame with dedup offset marks (`CatchupState.dedupSkews`): older readers refuse
    /// it as an unknown version instead of misreading it, and every other frame stays version 1.
    static let versionWithDedupMarks: UInt8 = 2
    /// A state frame with a removed last message's id (`CatchupState.removedLastMsgID`): the
    /// marks (maybe none) then the id. Sent only when there is one, so copies between versions
    /// fail only where the older one would lose it.
    static let versionWithRemovedLastID: UInt8 = 3
    /// A state frame with its leader's applied config (`CatchupState.config`): the marks (maybe
    /// none), the removed last message's id (maybe absent), then the config. Sent only to a
    /// replica that announced it reads one (`js_copy_config`).
    static let versionWithConfig: UInt8 = 4
    static let namespace = "jscatchup"
    static let absent = UInt32.max

    static func encode(_ f: CatchupFrame) -> [UInt8] {
        var w = Writer()
        if case let .state(_, _, s) = f, s.config != nil {
            w.bytes.append(versionWithConfig)
        } else if case let .state(_, _, s) = f, s.removedLastMsgID != nil {
            w.bytes.append(versionWithRemovedLastID)
        } else if case let .state(_, _, s) = f, !s.dedupSkews.isEmpty {
            w.bytes.append(versionWithDedupMarks)
        } else {
            w.bytes.append(version)
        }
        switch f {
        case let .stateRequest(g, r, minIndex):
            w.bytes.append(1); w.u64(g); w.u64(r); w.u64(minIndex)
        case let .messagesRequest(g, r, from, to, maxBytes):
            w.bytes.append(2); w.u64(g); w.u64(r); w.u64(from); w.u64(to); w.u32(maxBytes)
        case let .state(g, r, s):
            w.bytes.append(3); w.u64(g); w.u64(r)
            w.u64(s.index); w.u64(s.term); w.list(s.voters); w.list(s.learners)
            w.u64(s.firstSeq); w.u64(s.lastSeq); w.list(s.deleted)
            w.u32(UInt32(s.consumers.count))
            for (name, record) in s.consumers.sorted(by: { $0.key < $1.key }) {
                w.data(Array(name.utf8)); w.data(record)
            }
            if !s.dedupSkews.isEmpty || s.removedLastMsgID != nil || s.config != nil {
                w.u32(UInt32(s.dedupSkews.count))
                for m in s.dedupSkews { w.u64(m.seq); w.u64(UInt64(bitPattern: m.skew)) }
            }
            if let config = s.config {
                if let id = s.removedLastMsgID { w.data(Array(id.utf8)) } else { w.u32(absent) }
                w.data(config)
            } else if let id = s.removedLastMsgID {
                w.data(Array(id.utf8))
            }
        case let .messages(g, r, from, next, msgs):
            w.bytes.append(4); w.u64(g); w.u64(r); w.u64(from); w.u64(next)
            w.messages(msgs)
        case let .refused(g, r, reason):
            w.bytes.append(5); w.u64(g); w.u64(r); w.data(Array(reason.utf8))
        }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> CatchupFrame {
        var r = Reader(bytes: bytes)
        let v = try r.byte()
        guard v == version || v == versionWithDedupMarks || v == versionWithRemovedLastID || v == versionWithConfig else {
            throw CatchupWireError(description: "unknown catch-up frame version")
        }
        let tag = try r.byte()
        guard v == version || tag == 3 else { throw CatchupWireError(description: "catch-up frame version \(v) for tag \(tag)") }
        let group = try r.u64(), request = try r.u64()
        let f: CatchupFrame
        switch tag {
        case 1:
            f = .stateRequest(group: group, request: request, minIndex: try r.u64())
        case 2:
            f = .messagesRequest(group: group, request: request, from: try r.u64(), to: try r.u64(), maxBytes: try r.u32())
        case 3:
            let index = try r.u64(), term = try r.u64()
            let voters = try r.list(), learners = try r.list()
            let first = try r.u64(), last = try r.u64()
            let deleted = try r.list()
            let n = try r.count(minSize: 8)
            var consumers: [String: [UInt8]] = [:]
            for _ in 0..<n {
                guard let name = try r.data(), let record = try r.data() else { throw CatchupWireError(description: "absent consumer field") }
                consumers[String(decoding: name, as: UTF8.self)] = record
            }
            var skews: [DedupSkews.Mark] = []
            var removedLastID: String?
            if v != version {
                let n = try r.count(minSize: 16)
                guard n > 0 || v != versionWithDedupMarks else { throw CatchupWireError(description: "dedup marks frame without marks") }
                for _ in 0..<n {
                    let m = DedupSkews.Mark(seq: try r.u64(), skew: Int64(bitPattern: try r.u64()))
                    guard skews.last.map({ $0.seq < m.seq }) ?? true else { throw CatchupWireError(description: "dedup marks out of order") }
                    skews.append(m)
                }
            }
            if v == versionWithRemovedLastID || v == versionWithConfig {
                let id = try r.data()
                if let id {
                    guard let text = String(validating: id, as: UTF8.self) else { throw CatchupWireError(description: "bad removed last message id") }
                    removedLastID = text
                } else if v == versionWithRemovedLastID {
                    throw CatchupWireError(description: "absent removed last message id")
                }
            }
            var config: [UInt8]?
            if v == versionWithConfig {
                guard let c = try r.data() else { throw CatchupWireError(description: "absent stream config") }
                config = c
            }
            f = .state(group: group, request: request,
                       CatchupState(index: index, term: term, voters: voters, learners: learners, firstSeq: first,
                                    lastSeq: last, deleted: deleted, consumers: consumers, dedupSkews: skews,
                                    removedLastMsgID: removedLastID, config: config))
        case 4:
            let from = try r.u64(), next = try r.u64()
            f = .messages(group: group, request: request, from: from, next: next, try r.messages())
        case 5:
            f = .refused(group: group, request: request, reason: String(decoding: try r.data() ?? [], as: UTF8.self))
        default:
            throw CatchupWireError(description: "unknown catch-up frame tag \(tag)")
        }
        guard r.at == bytes.count else { throw CatchupWireError(description: "trailing bytes in catch-up frame") }
        return f
    }

    /// Also used by `ForwardedPublish`.
    struct Writer {
        var bytes: [UInt8] = []
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func data(_ d: [UInt8]) { u32(UInt32(d.count)); bytes.append(contentsOf: d) }
        mutating func list(_ l: [UInt64]) { u32(UInt32(l.count)); for v in l { u64(v) } }
        /// Stored messages (a copy's chunk, a snapshot archive's frame).
        mutating func messages(_ msgs: [CatchupMessage]) {
            u32(UInt32(msgs.count))
            for m in msgs {
                u64(m.seq); u64(UInt64(bitPattern: m.time)); data(Array(m.subject.utf8))
                if let h = m.headers { data(h) } else { u32(CatchupWire.absent) }
                data(m.payload)
            }
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var at = 0
        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= bytes.count - at else { throw CatchupWireError(description: "truncated catch-up frame") }
            defer { at += n }
            return bytes[at..<(at + n)]
        }
        mutating func byte() throws -> UInt8 { try take(1).first! }
        mutating func u64() throws -> UInt64 {
            try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        mutating func u32() throws -> UInt32 {
            try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        /// A count whose elements take at least `minSize` bytes each: checked against what is left.
        mutating func count(minSize: Int) throws -> Int {
            let n = Int(try u32())
            guard n <= (bytes.count - at) / minSize else { throw CatchupWireError(description: "count \(n) exceeds the frame") }
            return n
        }
        mutating func data() throws -> [UInt8]? {
            let n = try u32()
            if n == CatchupWire.absent { return nil }
            return Array(try take(Int(n)))
        }
        mutating func list() throws -> [UInt64] {
            let n = try count(minSize: 8)
            var out: [UInt64] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try u64()) }
            return out
        }
        mutating func messages() throws -> [CatchupMessage] {
            let n = try count(minSize: 28)
            var msgs: [CatchupMessage] = []
            msgs.reserveCapacity(n)
            for _ in 0..<n {
                let seq = try u64(), time = Int64(bitPattern: try u64())
                guard let subject = try data() else { throw CatchupWireError(description: "message without subject") }
                let headers = try data()
                guard let payload = try data() else { throw CatchupWireError(description: "message without payload") }
                msgs.append(CatchupMessage(seq: seq, time: time, subject: String(decoding: subject, as: UTF8.self),
                                           headers: headers, payload: payload))
            }
            return msgs
        }
    }
}
