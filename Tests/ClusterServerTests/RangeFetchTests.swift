import XCTest
@testable import ClusterServer

/// `RangeFetch`: asking peers for the messages of a damaged range, one bounded chunk at a time,
/// and the next peer for what one lacked.
final class RangeFetchTests: XCTestCase {
    private func m(_ seq: UInt64) -> CatchupMessage {
        CatchupMessage(seq: seq, time: Int64(seq), subject: "s.\(seq)", headers: nil, payload: Array("p\(seq)".utf8))
    }

    func test_fetchesEveryRunInChunks_andAsksTheNextPeerForWhatOneLacked() throws {
        var f = RangeFetch(missing: [3...5, 9...9])
        XCTAssertEqual(f.next?.from, 3)
        XCTAssertEqual(f.next?.to, 5)
        // A chunk budget cut the answer after 3; 4 is not on this peer.
        try f.received(from: 3, next: 5, [m(3)])
        XCTAssertEqual(f.next?.from, 5)
        try f.received(from: 5, next: 6, [m(5)])
        XCTAssertEqual(f.next?.from, 9)
        XCTAssertEqual(f.next?.to, 9)
        try f.received(from: 9, next: 10, [m(9)])
        XCTAssertNil(f.next, "the pass is over")
        XCTAssertFalse(f.isComplete)
        XCTAssertEqual(f.lacking, [4...4])
        f.nextPeer()
        XCTAssertEqual(f.next?.from, 4)
        XCTAssertEqual(f.next?.to, 4)
        try f.received(from: 4, next: 5, [m(4)])
        XCTAssertTrue(f.isComplete)
        XCTAssertEqual(f.got.keys.sorted(), [3, 4, 5, 9])
    }

    func test_rejectsAnswersThatDoNotFitTheRequest() {
        var f = RangeFetch(missing: [10...12])
        XCTAssertThrowsError(try f.received(from: 11, next: 13, [m(11)]), "not where the request starts")
        XCTAssertThrowsError(try f.received(from: 10, next: 10, []), "no progress")
        XCTAssertThrowsError(try f.received(from: 10, next: 13, [m(11), m(11)]), "out of order")
        XCTAssertThrowsError(try f.received(from: 10, next: 20, [m(15)]), "outside the range asked")
        XCTAssertTrue(f.got.isEmpty || f.got.keys.allSatisfy { (10...12).contains($0) })
    }

    func test_nothingMissing_isCompleteAtOnce() {
        let f = RangeFetch(missing: [])
        XCTAssertNil(f.next)
        XCTAssertTrue(f.isComplete)
    }
}
