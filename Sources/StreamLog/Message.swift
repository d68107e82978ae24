/// One record to append. The log assigns the stream sequence.
public struct NewMessage: Sendable, Equatable {
    public var term: UInt64
    /// Raft index of the entry; 0 when the log is not used as a Raft log.
    public var raftIndex: UInt64
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    public var subject: String
    /// NATS header block (`NATS/1.0\r\n...`), empty when the message has none.
    public var headers: [UInt8]
    public var payload: [UInt8]

    public init(subject: String, payload: [UInt8], headers: [UInt8] = [], timestamp: Int64,
                term: UInt64 = 0, raftIndex: UInt64 = 0) {
        self.term = term
        self.raftIndex = raftIndex
        self.timestamp = timestamp
        self.subject = subject
        self.headers = headers
        self.payload = payload
    }

    /// Bytes counted against `maxBytes` (as NATS: subject + headers + payload + fixed overhead).
    public var accountedSize: UInt64 { StoredMessage.accountedSize(subject.utf8.count, headers.count, payload.count) }
}

/// A stored record as read back.
public struct StoredMessage: Sendable, Equatable {
    public var sequence: StreamSequence
    public var term: UInt64
    public var raftIndex: UInt64
    public var timestamp: Int64
    public var subject: String
    public var headers: [UInt8]
    public var payload: [UInt8]

    public init(sequence: StreamSequence, term: UInt64, raftIndex: UInt64, timestamp: Int64,
                subject: String, headers: [UInt8], payload: [UInt8]) {
        self.sequence = sequence
        self.term = term
        self.raftIndex = raftIndex
        self.timestamp = timestamp
        self.subject = subject
        self.headers = headers
        self.payload = payload
    }

    static func accountedSize(_ subject: Int, _ headers: Int, _ payload: Int) -> UInt64 {
        UInt64(subject + headers + payload + RecordCodec.recordHeaderSize)
    }

    public var accountedSize: UInt64 { Self.accountedSize(subject.utf8.count, headers.count, payload.count) }
}

/// Little-endian helpers over raw buffers.
extension Array where Element == UInt8 {
    @inline(__always) mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func le<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// Encoding of records inside a block body (before compression):
/// term u64 | raftIndex u64 | seq u64 | timestamp i64 | subjectLen u32 | headersLen u32 |
/// payloadLen u32 | subject | headers | payload.
enum RecordCodec {
    static let recordHeaderSize = 44

    static func append(_ m: NewMessage, seq: UInt64, to out: inout [UInt8]) {
        var subject = m.subject
        subject.withUTF8 { s in
            // The fixed fields in one append: seven appends checked capacity and uniqueness each.
            withUnsafeTemporaryAllocation(byteCount: recordHeaderSize, alignment: 8) { h in
                h.storeBytes(of: m.term.littleEndian, toByteOffset: 0, as: UInt64.self)
                h.storeBytes(of: m.raftIndex.littleEndian, toByteOffset: 8, as: UInt64.self)
                h.storeBytes(of: seq.littleEndian, toByteOffset: 16, as: UInt64.self)
                h.storeBytes(of: m.timestamp.littleEndian, toByteOffset: 24, as: Int64.self)
                h.storeBytes(of: UInt32(s.count).littleEndian, toByteOffset: 32, as: UInt32.self)
                h.storeBytes(of: UInt32(m.headers.count).littleEndian, toByteOffset: 36, as: UInt32.self)
                h.storeBytes(of: UInt32(m.payload.count).littleEndian, toByteOffset: 40, as: UInt32.self)
                out.append(contentsOf: UnsafeRawBufferPointer(h))
            }
            out.append(contentsOf: s)
        }
        out.append(contentsOf: m.headers)
        out.append(contentsOf: m.payload)
    }

    static func append(_ m: StoredMessage, to out: inout [UInt8]) {
        let n = NewMessage(subject: m.subject, payload: m.payload, headers: m.headers,
                           timestamp: m.timestamp, term: m.term, raftIndex: m.raftIndex)
        append(n, seq: m.sequence.rawValue, to: &out)
    }

    /// Decodes only the record with sequence `seq`, skipping the others by their lengths.
    static func decodeOne(_ raw: [UInt8], seq: UInt64) -> StoredMessage? {
        raw.withUnsafeBytes { buf -> StoredMessage? in
            var p = 0
            while buf.count - p >= recordHeaderSize {
                let sLen = Int(buf.le(p + 32, as: UInt32.self))
                let hLen = Int(buf.le(p + 36, as: UInt32.self))
                let pLen = Int(buf.le(p + 40, as: UInt32.self))
                let start = p + recordHeaderSize
                guard sLen <= buf.count - start, hLen <= buf.count - start - sLen,
                      pLen <= buf.count - start - sLen - hLen else { return nil }
                let s: UInt64 = buf.le(p + 16)
                if s == seq {
                    return StoredMessage(
                        sequence: StreamSequence(s), term: buf.le(p), raftIndex: buf.le(p + 8), timestamp: buf.le(p + 24),
                        subject: String(decoding: UnsafeRawBufferPointer(rebasing: buf[start..<(start + sLen)]), as: UTF8.self),
                        headers: [UInt8](buf[(start + sLen)..<(start + sLen + hLen)]),
                        payload: [UInt8](buf[(start + sLen + hLen)..<(start + sLen + hLen + pLen)]))
                }
                if s > seq { return nil }
                p = start + sLen + hLen + pLen
            }
            return nil
        }
    }

    /// Decodes every record of a raw body; nil when the body is malformed.
    static func decodeAll(_ raw: [UInt8], expectedCount: Int) -> [StoredMessage]? {
        raw.withUnsafeBytes { buf -> [StoredMessage]? in
            var out: [StoredMessage] = []
            out.reserveCapacity(expectedCount)
            var p = 0
            while p < buf.count {
                guard buf.count - p >= recordHeaderSize else { return nil }
                let sLen = Int(buf.le(p + 32, as: UInt32.self))
                let hLen = Int(buf.le(p + 36, as: UInt32.self))
                let pLen = Int(buf.le(p + 40, as: UInt32.self))
                let start = p + recordHeaderSize
                guard sLen <= buf.count - start, hLen <= buf.count - start - sLen,
                      pLen <= buf.count - start - sLen - hLen else { return nil }
                let subject = String(decoding: UnsafeRawBufferPointer(rebasing: buf[start..<(start + sLen)]), as: UTF8.self)
                let headers = [UInt8](buf[(start + sLen)..<(start + sLen + hLen)])
                let payload = [UInt8](buf[(start + sLen + hLen)..<(start + sLen + hLen + pLen)])
                out.append(StoredMessage(sequence: StreamSequence(buf.le(p + 16)), term: buf.le(p),
                                         raftIndex: buf.le(p + 8), timestamp: buf.le(p + 24),
                                         subject: subject, headers: headers, payload: payload))
                p = start + sLen + hLen + pLen
            }
            return out.count == expectedCount ? out : nil
        }
    }
}
