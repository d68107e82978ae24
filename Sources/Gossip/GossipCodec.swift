/// Why a gossip frame was rejected. Decoding never traps: hostile or truncated input ends here.
public enum GossipCodecError: Error, Equatable, Sendable {
    case truncated
    case unsupportedVersion(UInt8)
    case unknownKind(UInt8)
    case unknownStatus(UInt8)
    case varintOverflow
    case stringTooLong(Int)
    case invalidUTF8
    case tooManyUpdates(Int)
    case trailingBytes(Int)
}

/// The compact binary encoding of `GossipMessage`:
///
/// ```
/// version u8 (1) | kind u8 | from member | incarnation varint | [seq varint] | [target member]
/// | update count varint | updates (member, status u8, incarnation varint)...
/// member = name str | address str | token str;  str = length varint + UTF-8 bytes
/// ```
/// Varints are LEB128 (at most 10 bytes). Limits bound what a hostile peer can make us allocate.
public enum GossipCodec {
    public static let version: UInt8 = 1
    public static let maxStringBytes = 1024
    public static let maxUpdates = 4096

    static let kindPing: UInt8 = 1, kindAck: UInt8 = 2, kindPingReq: UInt8 = 3, kindSync: UInt8 = 4, kindSyncReply: UInt8 = 5

    public static func encode(_ m: GossipMessage) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + m.updates.count * 48)
        out.append(version)
        switch m.kind {
        case .ping: out.append(kindPing)
        case .ack: out.append(kindAck)
        case .pingReq: out.append(kindPingReq)
        case .sync: out.append(kindSync)
        case .syncReply: out.append(kindSyncReply)
        }
        writeMember(m.from, into: &out)
        writeVarint(m.incarnation.rawValue, into: &out)
        switch m.kind {
        case let .ping(seq), let .ack(seq):
            writeVarint(seq, into: &out)
        case let .pingReq(seq, target):
            writeVarint(seq, into: &out)
            writeMember(target, into: &out)
        case .sync, .syncReply:
            break
        }
        writeVarint(UInt64(m.updates.count), into: &out)
        for u in m.updates {
            writeMember(u.member, into: &out)
            out.append(u.status.rank)
            writeVarint(u.status.incarnation.rawValue, into: &out)
        }
        return out
    }

    public static func decode<C: Collection>(_ bytes: C) throws -> GossipMessage where C.Element == UInt8 {
        try decode(Array(bytes))
    }

    /// Decodes one frame; any defect is a `GossipCodecError`.
    public static func decode(_ bytes: [UInt8]) throws -> GossipMessage {
        var r = Reader(bytes: bytes)
        let v = try r.byte()
        guard v == version else { throw GossipCodecError.unsupportedVersion(v) }
        let kindByte = try r.byte()
        let from = try r.member()
        let inc = Incarnation(try r.varint())
        let kind: GossipMessage.Kind
        switch kindByte {
        case kindPing: kind = .ping(seq: try r.varint())
        case kindAck: kind = .ack(seq: try r.varint())
        case kindPingReq:
            let seq = try r.varint()
            kind = .pingReq(seq: seq, target: try r.member())
        case kindSync: kind = .sync
        case kindSyncReply: kind = .syncReply
        default: throw GossipCodecError.unknownKind(kindByte)
        }
        let count = try r.varint()
        guard count <= UInt64(maxUpdates) else { throw GossipCodecError.tooManyUpdates(Int(clamping: count)) }
        var updates: [MemberUpdate] = []
        updates.reserveCapacity(min(Int(count), r.remaining / 4))
        for _ in 0..<Int(count) {
            let member = try r.member()
            let rank = try r.byte()
            let i = Incarnation(try r.varint())
            guard let status = MemberStatus(rank: rank, incarnation: i) else { throw GossipCodecError.unknownStatus(rank) }
            updates.append(MemberUpdate(member: member, status: status))
        }
        guard r.remaining == 0 else { throw GossipCodecError.trailingBytes(r.remaining) }
        return GossipMessage(from: from, incarnation: inc, kind: kind, updates: updates)
    }

    static func writeVarint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        let utf8 = s.utf8
        if utf8.count <= maxStringBytes {
            writeVarint(UInt64(utf8.count), into: &out)
            out.append(contentsOf: utf8)
            return
        }
        // Oversized strings are cut on encode (never produced by the shell); decode rejects them.
        var bytes = Array(utf8.prefix(maxStringBytes))
        while !bytes.isEmpty, String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
        writeVarint(UInt64(bytes.count), into: &out)
        out.append(contentsOf: bytes)
    }

    static func writeMember(_ m: MemberID, into out: inout [UInt8]) {
        writeString(m.name, into: &out)
        writeString(m.address, into: &out)
        writeString(m.token, into: &out)
    }

    struct Reader {
        let bytes: [UInt8]
        var pos = 0
        var remaining: Int { bytes.count - pos }

        mutating func byte() throws -> UInt8 {
            guard pos < bytes.count else { throw GossipCodecError.truncated }
            defer { pos += 1 }
            return bytes[pos]
        }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            for i in 0..<10 {
                let b = try byte()
                if i == 9 && b > 1 { throw GossipCodecError.varintOverflow }
                result |= UInt64(b & 0x7F) << (7 * UInt64(i))
                if b & 0x80 == 0 { return result }
            }
            throw GossipCodecError.varintOverflow
        }

        mutating func string() throws -> String {
            let n = try varint()
            guard n <= UInt64(maxStringBytes) else { throw GossipCodecError.stringTooLong(Int(clamping: n)) }
            guard Int(n) <= remaining else { throw GossipCodecError.truncated }
            let start = pos, end = pos + Int(n)
            pos = end
            let s: String? = bytes.withUnsafeBufferPointer { all in
                let part = UnsafeBufferPointer(rebasing: all[start..<end])
                // Names, addresses and tokens are ASCII in practice: skip full validation then.
                if part.allSatisfy({ $0 < 0x80 }) { return String(decoding: part, as: UTF8.self) }
                return String(validating: part, as: UTF8.self)
            }
            guard let s else { throw GossipCodecError.invalidUTF8 }
            return s
        }

        mutating func member() throws -> MemberID {
            let name = try string()
            let address = try string()
            return MemberID(name: name, address: address, token: try string())
        }
    }
}
