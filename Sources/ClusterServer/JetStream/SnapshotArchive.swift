import StreamLog

/// The bytes of a stream snapshot (`$JS.API.STREAM.SNAPSHOT`), as a client stores them and
/// sends them back to `$JS.API.STREAM.RESTORE`. clusterd's own layout (nats-server's is an S2
/// tar of its store files; the `nats` CLI only keeps the bytes):
///
///     magic "CLUSTERD-SNAPSHOT\n" + version byte
///     frames: tag u8 | body length u32 LE | body | CRC32C u32 LE of tag, length and body
///
/// A messages frame is LZ4-compressed when that makes it smaller (tag 5: the raw length, u32,
/// then the block).
///
/// Frames, in this order: one `meta`, any number of `messages` (ascending sequences), one
/// `consumer` per consumer, one `end` with the counts. A restore refuses anything else, so a
/// truncated, reordered or corrupted archive never restores as a shorter stream.
enum SnapshotArchive {
    static let magic: [UInt8] = Array("CLUSTERD-SNAPSHOT\n".utf8) + [1]
    /// No frame is bigger (one message of the largest payload a server takes fits well).
    static let maxFrameBytes = 80 << 20
    /// Sequences above this are refused (a hostile archive must not bring a stream near the
    /// end of the sequence space, where `lastSeq + 1` would trap).
    static let maxSeq: UInt64 = 1 << 62

    enum Frame: Equatable {
        /// JSON: `{"config": ..., "state": ..., "created": ...}` of the stream when snapshotted.
        case meta([UInt8])
        case messages([CatchupMessage])
        /// A consumer's record (`ConsumerRecord`): its config and ack state.
        case consumer([UInt8])
        case end(messages: UInt64, consumers: UInt32)
    }

    static func encode(_ frame: Frame) -> [UInt8] {
        var w = CatchupWire.Writer()
        let tag: UInt8
        switch frame {
        case let .meta(json): tag = 1; w.bytes = json
        case let .messages(msgs):
            w.messages(msgs)
            if let packed = w.bytes.withUnsafeBytes({ LZ4Codec.compress($0) }) {
                tag = 5
                var c = CatchupWire.Writer()
                c.u32(UInt32(w.bytes.count))
                c.bytes += packed
                w = c
            } else {
                tag = 2
            }
        case let .consumer(record): tag = 3; w.bytes = record
        case let .end(messages, consumers): tag = 4; w.u64(messages); w.u32(consumers)
        }
        var out: [UInt8] = [tag]
        out.reserveCapacity(w.bytes.count + 9)
        withUnsafeBytes(of: UInt32(w.bytes.count).littleEndian) { out.append(contentsOf: $0) }
        out += w.bytes
        let crc = out.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads frames from bytes fed in pieces of any size. Pure: the caller does the reading.
    struct Decoder {
        private var buffer: [UInt8] = []
        private var at = 0
        private var sawMagic = false

        mutating func feed(_ bytes: [UInt8]) {
            if at > 0 && at >= buffer.count / 2 {
                buffer.removeFirst(at)
                at = 0
            }
            buffer += bytes
        }

        /// Bytes fed and not yet read as a frame.
        var pending: Int { buffer.count - at }

        /// The next whole frame, nil when it needs more bytes; throws on anything malformed.
        mutating func next() throws -> Frame? {
            if !sawMagic {
                guard pending >= magic.count else {
                    if !magic.starts(with: buffer[at...]) { throw FormatError(description: "not a clusterd snapshot") }
                    return nil
                }
                guard buffer[at..<(at + magic.count)].elementsEqual(magic) else {
                    throw FormatError(description: "not a clusterd snapshot (or of another version)")
                }
                at += magic.count
                sawMagic = true
            }
            guard pending >= 5 else { return nil }
            let length = buffer[(at + 1)..<(at + 5)].reversed().reduce(0) { $0 << 8 | Int($1) }
            guard length <= SnapshotArchive.maxFrameBytes else { throw FormatError(description: "frame of \(length) bytes") }
            guard pending >= 9 + length else { return nil }
            let end = at + 5 + length
            let crc = buffer[end..<(end + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let actual = buffer.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[at..<end])) }
            guard crc == actual else { throw FormatError(description: "checksum mismatch") }
            let tag = buffer[at]
            let body = Array(buffer[(at + 5)..<end])
            at = end + 4
            var r = CatchupWire.Reader(bytes: body)
            let frame: Frame
            do {
                switch tag {
                case 1: frame = .meta(body); r.at = body.count
                case 2: frame = .messages(try r.messages())
                case 5:
                    let raw = Int(try r.u32())
                    guard raw <= SnapshotArchive.maxFrameBytes,
                          let bytes = body[4...].withUnsafeBytes({ LZ4Codec.decompress($0, rawSize: raw) }) else {
                        throw FormatError(description: "a compressed frame that does not decompress")
                    }
                    r.at = body.count
                    var inner = CatchupWire.Reader(bytes: bytes)
                    frame = .messages(try inner.messages())
                    guard inner.at == bytes.count else { throw FormatError(description: "trailing bytes in a frame") }
                case 3: frame = .consumer(body); r.at = body.count
                case 4: frame = .end(messages: try r.u64(), consumers: try r.u32())
                default: throw FormatError(description: "unknown frame \(tag)")
                }
            } catch let e as CatchupWireError {
                throw FormatError(description: e.description)
            }
            guard r.at == body.count else { throw FormatError(description: "trailing bytes in a frame") }
            return frame
        }
    }

    /// Checks the frames' order and counts as they come (`Decoder` checks each frame alone).
    struct Validator {
        private(set) var messages: UInt64 = 0
        private(set) var consumers: UInt32 = 0
        private var lastSeq: UInt64 = 0
        private var stage = 0 // 0 before meta, 1 messages, 2 consumers, 3 ended

        var ended: Bool { stage == 3 }

        /// A message the server could have stored: a sequence in range, a time since the epoch
        /// (ages are computed as `now - time`), a literal subject (it goes on a `MSG` line), a
        /// header block as a client's.
        static func checkStorable(_ m: CatchupMessage) throws {
            guard m.seq <= SnapshotArchive.maxSeq else { throw FormatError(description: "sequence \(m.seq) out of range") }
            guard m.time >= 0 else { throw FormatError(description: "message \(m.seq) has a time before 1970") }
            guard Subject.isValidLiteral(m.subject) else { throw FormatError(description: "message \(m.seq) has an invalid subject") }
            if let h = m.headers {
                guard h.count <= 65_536, h.starts(with: Array("NATS/1.0".utf8)), h.suffix(4).elementsEqual([13, 10, 13, 10]) else {
                    throw FormatError(description: "message \(m.seq) has a malformed header block")
                }
            }
        }

        mutating func check(_ f: Frame) throws {
            switch f {
            case .meta:
                guard stage == 0 else { throw FormatError(description: "a second meta frame") }
                stage = 1
            case let .messages(msgs):
                guard stage == 1 else { throw FormatError(description: "messages out of place") }
                for m in msgs {
                    guard m.seq > lastSeq else { throw FormatError(description: "sequence \(m.seq) not ascending") }
                    try Self.checkStorable(m)
                    lastSeq = m.seq
                }
                messages += UInt64(msgs.count)
            case .consumer:
                guard stage == 1 || stage == 2 else { throw FormatError(description: "consumer out of place") }
                stage = 2
                consumers += 1
            case let .end(m, c):
                guard stage == 1 || stage == 2 else { throw FormatError(description: "end out of place") }
                guard m == messages, c == consumers else {
                    throw FormatError(description: "archive holds \(messages) messages and \(consumers) consumers, its end says \(m) and \(c)")
                }
                stage = 3
            }
        }
    }
}
