/// On-disk block layout (little-endian), 64-byte header then body then zero padding:
///
///     0 magic u32 "SLB1" | 4 kind u8 | 5 flags u8 | 6 reserved u16
///     8 firstSeq u64 | 16 lastSeq u64 | 24 count u32 | 28 rawSize u32 | 32 storedSize u32
///     36 padSize u32 | 40 firstRaftIndex u64 | 48 maxTimestamp i64 | 56 crc32c u32 | 60 reserved
///
/// The CRC32C covers the header (with the crc field zeroed), the body and the padding, so a
/// torn write or a flipped bit anywhere in a block is detected. Padding exists so a block can
/// be rewritten in place at its old length (secure delete).
enum BlockKind: UInt8 {
    /// Body holds records (`RecordCodec`). firstSeq/lastSeq are the first/last record's seq.
    case messages = 0
    /// Body holds delete markers (`Tombstone`). firstSeq = lastSeq = the log's last seq then.
    case tombstones = 1
}

struct BlockFlags: OptionSet {
    let rawValue: UInt8
    static let lz4 = BlockFlags(rawValue: 1)
}

struct BlockHeader: Equatable {
    static let size = 64
    static let magic: UInt32 = 0x3142_4C53  // "SLB1"

    var kind: BlockKind
    var flags: BlockFlags
    var firstSeq: UInt64
    var lastSeq: UInt64
    var count: UInt32
    var rawSize: UInt32
    var storedSize: UInt32
    var padSize: UInt32
    var firstRaftIndex: UInt64
    var maxTimestamp: Int64
    var crc: UInt32

    var totalLength: Int { Self.size + Int(storedSize) + Int(padSize) }

    static func == (a: BlockHeader, b: BlockHeader) -> Bool {
        a.kind == b.kind && a.flags == b.flags && a.firstSeq == b.firstSeq && a.lastSeq == b.lastSeq
            && a.count == b.count && a.rawSize == b.rawSize && a.storedSize == b.storedSize
            && a.padSize == b.padSize && a.firstRaftIndex == b.firstRaftIndex
            && a.maxTimestamp == b.maxTimestamp && a.crc == b.crc
    }

    /// Writes the header, crc included, over the first `size` bytes of `b`.
    func store(into b: UnsafeMutableRawBufferPointer) {
        b.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        b[4] = kind.rawValue
        b[5] = flags.rawValue
        b.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        b.storeBytes(of: firstSeq.littleEndian, toByteOffset: 8, as: UInt64.self)
        b.storeBytes(of: lastSeq.littleEndian, toByteOffset: 16, as: UInt64.self)
        b.storeBytes(of: count.littleEndian, toByteOffset: 24, as: UInt32.self)
        b.storeBytes(of: rawSize.littleEndian, toByteOffset: 28, as: UInt32.self)
        b.storeBytes(of: storedSize.littleEndian, toByteOffset: 32, as: UInt32.self)
        b.storeBytes(of: padSize.littleEndian, toByteOffset: 36, as: UInt32.self)
        b.storeBytes(of: firstRaftIndex.littleEndian, toByteOffset: 40, as: UInt64.self)
        b.storeBytes(of: maxTimestamp.littleEndian, toByteOffset: 48, as: Int64.self)
        b.storeBytes(of: crc.littleEndian, toByteOffset: 56, as: UInt32.self)
        b.storeBytes(of: UInt32(0), toByteOffset: 60, as: UInt32.self)
    }

    /// Parses a header; nil when the magic or kind is wrong (not a block start).
    static func decode(_ b: UnsafeRawBufferPointer) -> BlockHeader? {
        guard b.count >= size, b.le(0, as: UInt32.self) == magic, let kind = BlockKind(rawValue: b[4]) else { return nil }
        return BlockHeader(kind: kind, flags: BlockFlags(rawValue: b[5]), firstSeq: b.le(8), lastSeq: b.le(16),
                           count: b.le(24), rawSize: b.le(28), storedSize: b.le(32), padSize: b.le(36),
                           firstRaftIndex: b.le(40), maxTimestamp: b.le(48), crc: b.le(56))
    }
}

/// A delete marker. `.floor(s)` removes every message below `s` (compaction, purge, limits).
/// `.reset(s)` is a floor past the end that also forgets the last Raft index (`StreamLog.reset`).
enum Tombstone: Equatable {
    case delete(UInt64)
    case floor(UInt64)
    case reset(UInt64)

    static let entrySize = 9

    func encode(into out: inout [UInt8]) {
        switch self {
        case .delete(let s): out.append(1); out.appendLE(s)
        case .floor(let s): out.append(2); out.appendLE(s)
        case .reset(let s): out.append(3); out.appendLE(s)
        }
    }

    static func decodeAll(_ raw: [UInt8]) -> [Tombstone]? {
        guard raw.count % entrySize == 0 else { return nil }
        return raw.withUnsafeBytes { b -> [Tombstone]? in
            var out: [Tombstone] = []
            for i in stride(from: 0, to: b.count, by: entrySize) {
                let s: UInt64 = b.le(i + 1)
                switch b[i] {
                case 1: out.append(.delete(s))
                case 2: out.append(.floor(s))
                case 3: out.append(.reset(s))
                default: return nil
                }
            }
            return out
        }
    }
}

enum BlockCodec {
    /// Builds a complete block from a raw body; compresses when that saves space and allowed.
    static func encode(kind: BlockKind, raw: [UInt8], firstSeq: UInt64, lastSeq: UInt64, count: Int,
                       firstRaftIndex: UInt64, maxTimestamp: Int64, compress: Bool,
                       padTo totalLength: Int? = nil, forceRaw: Bool = false) -> [UInt8]? {
        var block = [UInt8](repeating: 0, count: BlockHeader.size)
        block.reserveCapacity(max(BlockHeader.size + raw.count, totalLength ?? 0))
        block.append(contentsOf: raw)
        let fits = encodeInPlace(&block, kind: kind, firstSeq: firstSeq, lastSeq: lastSeq, count: count,
                                 firstRaftIndex: firstRaftIndex, maxTimestamp: maxTimestamp,
                                 compress: compress && !forceRaw, padTo: totalLength)
        return fits ? block : nil
    }

    /// `encode` for a body built behind `BlockHeader.size` placeholder bytes (the append path
    /// builds its records there): `buffer` becomes the block in place, so the body is not
    /// copied again unless LZ4 makes it smaller (then a new array). False, and `buffer`
    /// unchanged, when the block does not fit in `totalLength`.
    @discardableResult
    static func encodeInPlace(_ buffer: inout [UInt8], kind: BlockKind, firstSeq: UInt64, lastSeq: UInt64, count: Int,
                              firstRaftIndex: UInt64, maxTimestamp: Int64, compress: Bool,
                              padTo totalLength: Int? = nil) -> Bool {
        let rawSize = buffer.count - BlockHeader.size
        var header = BlockHeader(kind: kind, flags: [], firstSeq: firstSeq, lastSeq: lastSeq, count: UInt32(count),
                                 rawSize: UInt32(rawSize), storedSize: UInt32(rawSize), padSize: 0,
                                 firstRaftIndex: firstRaftIndex, maxTimestamp: maxTimestamp, crc: 0)
        var compressed: [UInt8]?
        if compress, let c = buffer.withUnsafeBytes({ LZ4Codec.compress(UnsafeRawBufferPointer(rebasing: $0[BlockHeader.size...])) }) {
            header.flags.insert(.lz4)
            header.storedSize = UInt32(c.count)
            compressed = c
        }
        var pad = 0
        if let totalLength {
            pad = totalLength - BlockHeader.size - Int(header.storedSize)
            guard pad >= 0 else { return false }
            header.padSize = UInt32(pad)
        }
        if let compressed {
            var out = [UInt8](repeating: 0, count: BlockHeader.size)
            out.reserveCapacity(BlockHeader.size + compressed.count + pad)
            out.append(contentsOf: compressed)
            buffer = out
        }
        if pad > 0 { buffer.append(contentsOf: repeatElement(0, count: pad)) }
        seal(&buffer, header)
        return true
    }

    /// Writes `header` over the first bytes of `block` with the CRC of the whole block (header
    /// with a zero crc field, body, padding).
    private static func seal(_ block: inout [UInt8], _ header: BlockHeader) {
        var h = header
        h.crc = 0
        block.withUnsafeMutableBytes { b in
            h.store(into: b)
            h.crc = CRC32C.checksum(UnsafeRawBufferPointer(b))
            b.storeBytes(of: h.crc.littleEndian, toByteOffset: 56, as: UInt32.self)
        }
    }

    /// Verifies the CRC of a whole block (header + body + padding) read from disk.
    static func verify(_ block: [UInt8], header: BlockHeader) -> Bool {
        guard block.count == header.totalLength else { return false }
        return block.withUnsafeBytes { b -> Bool in
            var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<56]))
            let zero: [UInt8] = [0, 0, 0, 0]
            crc = zero.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[60...]), continuing: crc)
            return crc == header.crc
        }
    }

    /// The raw body of a verified block (decompressed when flagged); nil when malformed.
    static func rawBody(_ block: [UInt8], header: BlockHeader) -> [UInt8]? {
        let start = BlockHeader.size
        let end = start + Int(header.storedSize)
        guard block.count >= end else { return nil }
        if header.flags.contains(.lz4) {
            return block.withUnsafeBytes { LZ4Codec.decompress(UnsafeRawBufferPointer(rebasing: $0[start..<end]), rawSize: Int(header.rawSize)) }
        }
        guard header.rawSize == header.storedSize else { return nil }
        return Array(block[start..<end])
    }
}
