/// The per-segment index file `<base>.idx`: the block table of a sealed segment, so opening a
/// log reads a small file per sealed segment instead of scanning it. Always rebuildable from
/// the segment; a missing, stale or damaged index is ignored and rebuilt.
///
/// Layout: magic u32 "SLI1" | blockCount u32 | segmentSize u64 | entries (52 bytes each) | crc32c u32.
enum SegmentIndexFile {
    static let magic: UInt32 = 0x3149_4C53
    static let entrySize = 52

    static func encode(blocks: [BlockRef], segmentSize: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + blocks.count * entrySize + 4)
        out.appendLE(magic)
        out.appendLE(UInt32(blocks.count))
        out.appendLE(segmentSize)
        for b in blocks {
            out.appendLE(b.offset)
            out.appendLE(b.length)
            out.appendLE(UInt32(b.kind.rawValue))
            out.appendLE(b.count)
            out.appendLE(b.firstSeq)
            out.appendLE(b.lastSeq)
            out.appendLE(b.firstRaftIndex)
            out.appendLE(b.maxTimestamp)
        }
        out.appendLE(CRC32C.checksum(out))
        return out
    }

    /// The block table, or nil when the file is damaged or does not describe `segmentSize` bytes.
    static func decode(_ bytes: [UInt8], segmentSize: UInt64) -> [BlockRef]? {
        guard bytes.count >= 20 else { return nil }
        return bytes.withUnsafeBytes { b -> [BlockRef]? in
            let n = Int(b.le(4, as: UInt32.self))
            guard b.le(0, as: UInt32.self) == magic, b.count == 16 + n * entrySize + 4,
                  b.le(8, as: UInt64.self) == segmentSize,
                  CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<(b.count - 4)])) == b.le(b.count - 4, as: UInt32.self)
            else { return nil }
            var blocks: [BlockRef] = []
            blocks.reserveCapacity(n)
            var expected: UInt64 = 0
            for i in 0..<n {
                let p = 16 + i * entrySize
                guard let kind = BlockKind(rawValue: UInt8(truncatingIfNeeded: b.le(p + 12, as: UInt32.self))) else { return nil }
                let ref = BlockRef(offset: b.le(p), length: b.le(p + 8), kind: kind, count: b.le(p + 16),
                                   firstSeq: b.le(p + 20), lastSeq: b.le(p + 28), firstRaftIndex: b.le(p + 36),
                                   maxTimestamp: b.le(p + 44))
                guard ref.offset == expected else { return nil }
                expected = ref.end
                blocks.append(ref)
            }
            return expected == segmentSize ? blocks : nil
        }
    }
}
