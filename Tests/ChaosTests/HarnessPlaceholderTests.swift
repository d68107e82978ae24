import XCTest

final class ChaosHarnessTests: XCTestCase {
    func test_seedParsing() {
        XCTAssertEqual(UInt64("42"), 42)
    }
}
