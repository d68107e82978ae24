import XCTest
@testable import ClusterServer

/// The sorted sequence set behind `Stream.neverExpires`.
final class AscendingSequencesTests: XCTestCase {
    func test_insertsInAnyOrder_findsAndDrops() {
        var s = AscendingSequences()
        XCTAssertTrue(s.isEmpty)
        for x: UInt64 in [5, 9, 12, 7, 9, 1] { s.insert(x) }
        XCTAssertEqual(s.seqs, [1, 5, 7, 9, 12], "sorted, no duplicates")
        XCTAssertTrue(s.contains(7))
        XCTAssertFalse(s.contains(8))
        XCTAssertEqual(s.first(atOrAfter: 8), 9)
        XCTAssertEqual(s.first(atOrAfter: 9), 9)
        XCTAssertNil(s.first(atOrAfter: 13))
        s.dropBelow(7)
        XCTAssertEqual(s.seqs, [7, 9, 12])
        s.dropBelow(100)
        XCTAssertTrue(s.isEmpty)
    }
}
