/// Where one block lives inside its segment, with what the indexes need to know about it.
struct BlockRef: Equatable {
    var offset: UInt64
    var length: UInt32
    var kind: BlockKind
    var count: UInt32
    var firstSeq: UInt64
    var lastSeq: UInt64
    var firstRaftIndex: UInt64
    var maxTimestamp: Int64

    init(offset: UInt64, header h: BlockHeader) {
        self.offset = offset
        self.length = UInt32(h.totalLength)
        self.kind = h.kind
        self.count = h.count
        self.firstSeq = h.firstSeq
        self.lastSeq = h.lastSeq
        self.firstRaftIndex = h.firstRaftIndex
        self.maxTimestamp = h.maxTimestamp
    }

    init(offset: UInt64, length: UInt32, kind: BlockKind, count: UInt32, firstSeq: UInt64, lastSeq: UInt64,
         firstRaftIndex: UInt64, maxTimestamp: Int64) {
        self.offset = offset
        self.length = length
        self.kind = kind
        self.count = count
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.firstRaftIndex = firstRaftIndex
        self.maxTimestamp = maxTimestamp
    }

    var end: UInt64 { offset + UInt64(length) }
}

/// A damaged byte range found in a segment: the exact bytes and, as far as known, the
/// sequences they held. The cluster layer repairs such ranges from a peer.
public struct CorruptRange: Equatable, Sendable, CustomStringConvertible {
    public var segment: String
    public var offset: UInt64
    public var length: UInt64
    /// Sequences that lived in the range (best knowledge: from the index or the neighbours).
    public var sequences: ClosedRange<UInt64>?

    public var description: String {
        "corrupt bytes \(offset)..<\(offset + length) in \(segment)" + (sequences.map { " (seqs \($0))" } ?? "")
    }
}

/// One segment file: `<20-digit first seq>.seg`, a sequence of blocks. The block table is
/// dense (one entry per block); `StreamLog` maintenance rewrites segments made of many small
/// blocks into few large ones, which also bounds this table.
final class Segment {
    let base: UInt64
    let path: String
    let file: StorageFile
    var blocks: [BlockRef] = []
    /// Bytes of valid blocks; appends go here.
    var size: UInt64 = 0
    /// Bytes the file holds, never below `size`: past `size` only zeros, written ahead of the
    /// tail's appends (`StreamLogConfig.preallocateBytes`). Sealed and rewritten segments have
    /// none, so theirs is `size`. Computed so that no path that grows or sets `size` can break it.
    var allocated: UInt64 {
        get { max(size, zeroedEnd) }
        set { zeroedEnd = newValue }
    }
    /// Where the zeros written ahead of the appends end (0 when none were written).
    private var zeroedEnd: UInt64 = 0
    var sealed = false

    init(base: UInt64, path: String, file: StorageFile) {
        self.base = base
        self.path = path
        self.file = file
    }

    static func fileName(base: UInt64) -> String {
        let digits = String(base)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".seg"
    }

    static func parseBase(_ name: String) -> UInt64? {
        guard name.hasSuffix(".seg"), name.count == 24 else { return nil }
        return UInt64(name.dropLast(4))
    }

    var indexPath: String { String(path.dropLast(4)) + ".idx" }
    var lastSeq: UInt64? { blocks.last?.lastSeq }
    var messageCount: Int { blocks.reduce(0) { $0 + ($1.kind == .messages ? Int($1.count) : 0) } }

    /// Reads and CRC-checks one block.
    func readBlock(_ ref: BlockRef) throws -> (BlockHeader, [UInt8]) {
        let bytes = try file.read(count: Int(ref.length), at: ref.offset)
        guard let header = bytes.withUnsafeBytes({ BlockHeader.decode($0) }),
              header.totalLength == Int(ref.length), BlockCodec.verify(bytes, header: header) else {
            throw StreamLogError.corrupt(CorruptRange(segment: path, offset: ref.offset, length: UInt64(ref.length),
                                                       sequences: ref.kind == .messages ? ref.firstSeq...max(ref.firstSeq, ref.lastSeq) : nil))
        }
        return (header, bytes)
    }

    /// The decompressed body of a message block (CRC-verified).
    func readRawBody(_ ref: BlockRef) throws -> [UInt8] {
        let (header, bytes) = try readBlock(ref)
        guard let raw = BlockCodec.rawBody(bytes, header: header) else {
            throw StreamLogError.corrupt(CorruptRange(segment: path, offset: ref.offset, length: UInt64(ref.length),
                                                       sequences: ref.firstSeq...max(ref.firstSeq, ref.lastSeq)))
        }
        return raw
    }

    /// Decoded records of a message block (CRC-verified, decompressed).
    func readMessages(_ ref: BlockRef) throws -> [StoredMessage] {
        let (header, bytes) = try readBlock(ref)
        guard let raw = BlockCodec.rawBody(bytes, header: header),
              let msgs = RecordCodec.decodeAll(raw, expectedCount: Int(header.count)) else {
            throw StreamLogError.corrupt(CorruptRange(segment: path, offset: ref.offset, length: UInt64(ref.length),
                                                       sequences: ref.firstSeq...max(ref.firstSeq, ref.lastSeq)))
        }
        return msgs
    }

    /// Whether the file holds only zero bytes in `range` (preallocated space never written).
    func isZero(_ range: Range<UInt64>) throws -> Bool {
        var offset = range.lowerBound
        while offset < range.upperBound {
            let n = Int(min(range.upperBound - offset, 1 << 20))
            let bytes = try file.read(count: n, at: offset)
            guard bytes.count == n, !bytes.contains(where: { $0 != 0 }) else { return false }
            offset += UInt64(n)
        }
        return true
    }

    /// Outcome of scanning a segment from some offset.
    struct ScanResult {
        var blocks: [BlockRef] = []
        /// Offset just past the last good block.
        var validEnd: UInt64 = 0
        /// First bad block (offset, length to the end of the file) when the scan stopped early.
        var badRange: CorruptRange?
        /// Good blocks found after the bad range (sealed segments keep scanning past damage).
        var fileSize: UInt64 = 0
    }

    /// Scans blocks from `start`, verifying every CRC. With `resync`, continues past damage by
    /// searching for the next block that verifies (used for sealed segments, whose later blocks
    /// stay readable); otherwise stops at the first bad block (the tail: torn write).
    func scan(from start: UInt64 = 0, resync: Bool, visit: ((BlockRef, BlockHeader, [UInt8]) throws -> Void)? = nil) throws -> ScanResult {
        let fileSize = try file.size()
        var result = ScanResult(validEnd: start, fileSize: fileSize)
        var reader = ChunkReader(file: file, fileSize: fileSize)
        var offset = start
        while offset < fileSize {
            if let (header, bytes) = try reader.block(at: offset) {
                let ref = BlockRef(offset: offset, header: header)
                try visit?(ref, header, bytes)
                result.blocks.append(ref)
                offset = ref.end
                result.validEnd = offset
                continue
            }
            // Damage at `offset`: find where good blocks resume (or the end of the file).
            var next = fileSize
            if resync {
                var probe = offset + 1
                while probe + UInt64(BlockHeader.size) <= fileSize {
                    if try reader.block(at: probe) != nil { next = probe; break }
                    probe += 1
                }
            }
            let prevLast = result.blocks.last?.lastSeq
            result.badRange = result.badRange ?? CorruptRange(segment: path, offset: offset, length: next - offset,
                                                              sequences: prevLast.map { $0 + 1 }.map { $0...$0 })
            if !resync || next == fileSize { break }
            offset = next
        }
        return result
    }
}

/// Buffered sequential reader so scanning many small blocks costs few syscalls.
struct ChunkReader {
    let file: StorageFile
    let fileSize: UInt64
    var buffer: [UInt8] = []
    var bufferStart: UInt64 = 0
    static let chunk = 4 << 20

    init(file: StorageFile, fileSize: UInt64) {
        self.file = file
        self.fileSize = fileSize
    }

    mutating func bytes(at offset: UInt64, count: Int) throws -> ArraySlice<UInt8>? {
        guard offset + UInt64(count) <= fileSize else { return nil }
        let inBuffer = offset >= bufferStart && offset + UInt64(count) <= bufferStart + UInt64(buffer.count)
        if !inBuffer {
            buffer = try file.read(count: max(count, Self.chunk), at: offset)
            bufferStart = offset
            guard buffer.count >= count else { return nil }
        }
        let s = Int(offset - bufferStart)
        return buffer[s..<(s + count)]
    }

    /// A whole verified block at `offset`, or nil when there is none (damage or torn write).
    mutating func block(at offset: UInt64) throws -> (BlockHeader, [UInt8])? {
        guard let head = try bytes(at: offset, count: BlockHeader.size),
              let header = head.withUnsafeBytes({ BlockHeader.decode($0) }),
              let whole = try bytes(at: offset, count: header.totalLength) else { return nil }
        let block = Array(whole)
        return BlockCodec.verify(block, header: header) ? (header, block) : nil
    }
}
