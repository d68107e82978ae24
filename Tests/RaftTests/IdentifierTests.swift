import XCTest
@testable import Raft

final class IdentifierTests: XCTestCase {
    func test_terms_orderByRawValue() {
        XCTAssertLessThan(Term(1), Term(2))
        XCTAssertFalse(Term(3) < Term(3))
    }
}
