import XCTest
@testable import Gossip

final class MemberStatusTests: XCTestCase {
    func test_supersedes_suspectOverridesAliveOfSameIncarnation() {
        XCTAssertTrue(MemberStatus.suspect(Incarnation(3)).supersedes(.alive(Incarnation(3))))
        XCTAssertFalse(MemberStatus.alive(Incarnation(3)).supersedes(.suspect(Incarnation(3))))
    }

    func test_supersedes_refutationNeedsHigherIncarnation() {
        XCTAssertTrue(MemberStatus.alive(Incarnation(4)).supersedes(.suspect(Incarnation(3))))
        XCTAssertFalse(MemberStatus.suspect(Incarnation(2)).supersedes(.alive(Incarnation(3))))
    }

    func test_supersedes_deadOverridesSameIncarnation_andIsRefutedOnlyByHigher() {
        XCTAssertTrue(MemberStatus.dead(Incarnation(9)).supersedes(.alive(Incarnation(9))))
        XCTAssertTrue(MemberStatus.dead(Incarnation(9)).supersedes(.suspect(Incarnation(9))))
        XCTAssertFalse(MemberStatus.alive(Incarnation(9)).supersedes(.dead(Incarnation(9))))
        XCTAssertTrue(MemberStatus.alive(Incarnation(10)).supersedes(.dead(Incarnation(9))))
        XCTAssertFalse(MemberStatus.dead(Incarnation(1)).supersedes(.dead(Incarnation(1))))
        XCTAssertTrue(MemberStatus.left(Incarnation(1)).supersedes(.dead(Incarnation(1))))
    }

    func test_supersedes_isATotalOrder_soMergeOrderDoesNotMatter() {
        let all: [MemberStatus] = (0..<3).flatMap { i in
            [MemberStatus.alive(Incarnation(i)), .suspect(Incarnation(i)), .dead(Incarnation(i)), .left(Incarnation(i))]
        }
        for a in all {
            for b in all where a != b {
                XCTAssertNotEqual(a.supersedes(b), b.supersedes(a), "\(a) vs \(b)")
            }
            XCTAssertFalse(a.supersedes(a))
        }
    }

    func test_rankRoundTrips_andUnknownRankIsRejected() {
        for s in [MemberStatus.alive(Incarnation(1)), .suspect(Incarnation(2)), .dead(Incarnation(3)), .left(Incarnation(4))] {
            XCTAssertEqual(MemberStatus(rank: s.rank, incarnation: s.incarnation), s)
        }
        XCTAssertNil(MemberStatus(rank: 4, incarnation: Incarnation(0)))
    }
}
