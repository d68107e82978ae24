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

    func test_supersedes_deadIsFinal() {
        XCTAssertTrue(MemberStatus.dead.supersedes(.alive(Incarnation(9))))
        XCTAssertFalse(MemberStatus.alive(Incarnation(100)).supersedes(.dead))
        XCTAssertFalse(MemberStatus.dead.supersedes(.dead))
    }
}
