import XCTest
@testable import StreamLog

final class CodecTests: XCTestCase {
    func test_crc32c_knownVector_matchesCastagnoli() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
    }

    func test_crc32c_chainedParts_equalWhole() {
        var rng = SeededRNG(seed: 7)
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let a = CRC32C.checksum(Array(data[..<cut]))
            XCTAssertEqual(CRC32C.checksum(Array(data[cut...]), continuing: a), CRC32C.checksum(data), "cut \(cut)")
        }
    }

    func test_crc32c_softwarePath_knownVector() {
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32C.softwareChecksum($0) }, 0xE306_9283)
    }

    /// The hardware path (what `checksum` uses on this CPU) against the table-driven one: every
    /// length 0...200 at every start offset 0...15 (so every alignment), plus chained parts.
    func test_crc32c_hardwareMatchesSoftware_allLengthsOffsetsAndChaining() throws {
        try XCTSkipUnless(CRC32C.hardwareAvailable, "no CRC32C instruction on this CPU")
        var rng = SeededRNG(seed: 2026)
        let data = (0..<(200 + 16)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        data.withUnsafeBytes { all in
            for offset in 0..<16 {
                for length in 0...200 {
                    let b = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let seed = UInt32.random(in: 0...UInt32.max, using: &rng)
                    let hw = CRC32C.checksum(b, continuing: seed)
                    XCTAssertEqual(hw, CRC32C.softwareChecksum(b, continuing: seed), "offset \(offset) length \(length)")
                    XCTAssertEqual(CRC32C.checksum(b), CRC32C.softwareChecksum(b), "offset \(offset) length \(length)")
                    guard length > 0 else { continue }
                    let cut = Int.random(in: 0...length, using: &rng)
                    let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<cut]))
                    let chained = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[cut...]), continuing: first)
                    XCTAssertEqual(chained, CRC32C.softwareChecksum(b), "offset \(offset) length \(length) cut \(cut)")
                }
            }
        }
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }

    func test_lz4_roundTrip_andIncompressibleReturnsNil() {
        let text = Array(String(repeating: "{\"k\":\"value\"}", count: 100).utf8)
        let c = text.withUnsafeBytes { LZ4Codec.compress($0) }
        XCTAssertNotNil(c)
        XCTAssertLessThan(c!.count, text.count / 4)
        XCTAssertEqual(c!.withUnsafeBytes { LZ4Codec.decompress($0, rawSize: text.count) }, text)
        var rng = SeededRNG(seed: 1)
        let noise = (0..<256).map { _ in UInt8.random(in: 0...255, using: &rng) }
        XCTAssertNil(noise.withUnsafeBytes { LZ4Codec.compress($0) })
        XCTAssertNil(noise.withUnsafeBytes { LZ4Codec.decompress($0, rawSize: 1000) })
    }

    func test_block_encodeDecode_roundTripsRecords() throws {
        var raw: [UInt8] = []
        let ms = (0..<20).map { msg("orders.\($0 % 3)", String(repeating: "x", count: $0 * 10), ts: Int64($0), raft: UInt64($0 + 5), term: 2) }
        for (i, m) in ms.enumerated() { RecordCodec.append(m, seq: UInt64(100 + i), to: &raw) }
        let block = try XCTUnwrap(BlockCodec.encode(kind: .messages, raw: raw, firstSeq: 100, lastSeq: 119, count: 20,
                                                    firstRaftIndex: 5, maxTimestamp: 19, compress: true))
        let h = try XCTUnwrap(block.withUnsafeBytes { BlockHeader.decode($0) })
        XCTAssertTrue(h.flags.contains(.lz4))
        XCTAssertTrue(BlockCodec.verify(block, header: h))
        let decoded = try XCTUnwrap(RecordCodec.decodeAll(try XCTUnwrap(BlockCodec.rawBody(block, header: h)), expectedCount: 20))
        XCTAssertEqual(decoded.map(\.sequence.rawValue), Array(100...119))
        XCTAssertEqual(decoded[7].payload.count, 70)
        XCTAssertEqual(decoded[7].raftIndex, 12)
        XCTAssertEqual(decoded[7].subject, "orders.1")
    }

    func test_block_anyFlippedBit_failsVerification() throws {
        var raw: [UInt8] = []
        RecordCodec.append(msg("a", "hello world"), seq: 1, to: &raw)
        let block = try XCTUnwrap(BlockCodec.encode(kind: .messages, raw: raw, firstSeq: 1, lastSeq: 1, count: 1,
                                                    firstRaftIndex: 0, maxTimestamp: 0, compress: false, padTo: 200))
        for byte in 0..<block.count {
            var bad = block
            bad[byte] ^= 0x10
            let ok = bad.withUnsafeBytes { BlockHeader.decode($0) }.map { BlockCodec.verify(bad, header: $0) } ?? false
            XCTAssertFalse(ok, "flip at \(byte) not detected")
        }
    }

    func test_segmentIndexFile_roundTrip_andRejectsStaleSize() {
        let refs = [BlockRef(offset: 0, length: 100, kind: .messages, count: 3, firstSeq: 1, lastSeq: 3, firstRaftIndex: 1, maxTimestamp: 9),
                    BlockRef(offset: 100, length: 73, kind: .tombstones, count: 1, firstSeq: 3, lastSeq: 3, firstRaftIndex: 0, maxTimestamp: 0)]
        let bytes = SegmentIndexFile.encode(blocks: refs, segmentSize: 173)
        XCTAssertEqual(SegmentIndexFile.decode(bytes, segmentSize: 173), refs)
        XCTAssertNil(SegmentIndexFile.decode(bytes, segmentSize: 200))
        var bad = bytes
        bad[30] ^= 1
        XCTAssertNil(SegmentIndexFile.decode(bad, segmentSize: 173))
    }

    func test_stateSnapshot_roundTrip() {
        var st = CoreState()
        for i in 1...10 { st.add(seq: UInt64(i), subject: "s.\(i % 3)", size: 40) }
        st.remove(seq: 5, subject: "s.2", size: 40)
        let snap = StateSnapshot(coveredSegment: 1, coveredOffset: 999, state: st)
        XCTAssertEqual(StateSnapshot.decode(snap.encode()), snap)
        var bad = snap.encode()
        bad[bad.count / 2] ^= 4
        XCTAssertNil(StateSnapshot.decode(bad))
    }
}
