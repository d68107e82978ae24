import XCTest
@testable import Raft

final class IdentifierTests: XCTestCase {
    /// The rule a host uses to wake quiesced leaders when routes drop (`RaftHost.peersChanged`):
    /// losing one peer of three keeps a majority (nothing wakes), losing two does not.
    func test_confState_isMajority_twoOfThreeIs_oneIsNot() {
        let conf = ConfState(voters: [1, 2, 3].map(NodeID.init), learners: [NodeID(4)])
        XCTAssertEqual(conf.quorum, 2)
        XCTAssertTrue(conf.isMajority(Set([1, 2].map(NodeID.init)).contains))
        XCTAssertFalse(conf.isMajority(Set([1, 4].map(NodeID.init)).contains), "a learner does not count")
        XCTAssertEqual(ConfState(voters: (1...5).map(NodeID.init)).quorum, 3)
    }

    func test_terms_orderByRawValue() {
        XCTAssertLessThan(Term(1), Term(2))
        XCTAssertFalse(Term(3) < Term(3))
    }
}
