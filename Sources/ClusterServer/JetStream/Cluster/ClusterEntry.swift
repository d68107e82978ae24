import Foundation

/// The entries of a stream's Raft group. Messages are binary (they are the hot path); the rare
/// operations (purge, delete, consumer records) are JSON.
enum StreamEntry: Equatable {
    /// A publish accepted by the leader: the checks (dedup, expected-*) run again at apply on
    /// every replica against the same state, so every replica decides the same way.
    case message(subject: String, headers: [UInt8]?, payload: [UInt8], timestamp: Int64)
    case op([String: Any])

    static func == (a: StreamEntry, b: StreamEntry) -> Bool {
        switch (a, b) {
        case let (.message(s1, h1, p1, t1), .message(s2, h2, p2, t2)): return s1 == s2 && h1 == h2 && p1 == p2 && t1 == t2
        case let (.op(x), .op(y)): return JSJSON.encode(x) == JSJSON.encode(y)
        default: return false
        }
    }

    struct DecodeError: Error, CustomStringConvertible {
        let description: String
    }

    private static let messageTag: UInt8 = 1
    private static let opTag: UInt8 = 2

    /// tag | timestamp i64 | subject len u32 | subject | headers len u32 (0xFFFFFFFF = none) | headers | payload
    static func encodeMessage(subject: String, headers: [UInt8]?, payload: [UInt8], timestamp: Int64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(17 + subject.utf8.count + (headers?.count ?? 0) + payload.count)
        out.append(messageTag)
        withUnsafeBytes(of: timestamp.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(subject.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: subject.utf8)
        let hlen = headers.map { UInt32($0.count) } ?? UInt32.max
        withUnsafeBytes(of: hlen.littleEndian) { out.append(contentsOf: $0) }
        if let headers { out.append(contentsOf: headers) }
        out.append(contentsOf: payload)
        return out
    }

    static func encodeOp(_ body: [String: Any]) -> [UInt8] {
        [opTag] + JSJSON.encode(body)
    }

    static func decode(_ bytes: [UInt8]) throws -> StreamEntry {
        guard let tag = bytes.first else { throw DecodeError(description: "empty entry") }
        if tag == opTag {
            let o = try JSONObject.parse(Array(bytes[1...]), typeName: "StreamOp")
            return .op(o.fields)
        }
        guard tag == messageTag, bytes.count >= 17 else { throw DecodeError(description: "unknown entry tag \(tag)") }
        func u32(_ at: Int) -> Int {
            Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
        }
        var ts: UInt64 = 0
        for i in 0..<8 { ts |= UInt64(bytes[1 + i]) << (8 * UInt64(i)) }
        let slen = u32(9)
        guard 13 + slen + 4 <= bytes.count else { throw DecodeError(description: "truncated subject") }
        let subject = String(decoding: bytes[13..<(13 + slen)], as: UTF8.self)
        let hraw = UInt32(truncatingIfNeeded: u32(13 + slen))
        var at = 17 + slen
        var headers: [UInt8]?
        if hraw != UInt32.max {
            let hlen = Int(hraw)
            guard at + hlen <= bytes.count else { throw DecodeError(description: "truncated headers") }
            headers = Array(bytes[at..<(at + hlen)])
            at += hlen
        }
        return .message(subject: subject, headers: headers, payload: Array(bytes[at...]), timestamp: Int64(bitPattern: ts))
    }
}
