import XCTest
@testable import StreamLog

/// `verifySegment(base:)`: the scrub that finds damage in sealed segments, which `open` does
/// not read (it trusts their index files).
final class ScrubTests: XCTestCase {
    func test_scrub_findsAFlipInASealedSegment_thatOpenDidNotSee() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        for i in 0..<120 { try log.append([msg("f", "payload-\(i)")]) }
        let bases = log.sealedSegmentBases()
        XCTAssertGreaterThan(bases.count, 1, "small segments: several sealed")
        XCTAssertFalse(bases.contains(log.segments[log.segments.count - 1].base), "the tail is not listed")
        for b in bases { XCTAssertNil(try log.verifySegment(base: b)) }
        let victim = log.segments[1]
        let ref = try XCTUnwrap(victim.blocks.first { $0.kind == .messages })
        try log.close()

        fs.flipBit(path: victim.path, byteOffset: Int(ref.offset) + 20, bit: 5)
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.corruptions.isEmpty, "open reads no sealed block")
        XCTAssertNil(log.recoveryReport.truncatedTail)
        XCTAssertNil(try log.verifySegment(base: bases[0]))
        let found = try XCTUnwrap(try log.verifySegment(base: victim.base))
        XCTAssertEqual(found.segment, victim.path)
        XCTAssertEqual(found.offset, ref.offset)
        XCTAssertEqual(found.sequences, ref.firstSeq...ref.lastSeq)
        XCTAssertNil(try log.verifySegment(base: 999_999), "a segment that is gone is not damage")
        try log.close()
        XCTAssertThrowsError(try log.verifySegment(base: victim.base)) { error in
            XCTAssertEqual(error as? StreamLogError, .closed)
        }
    }
}
