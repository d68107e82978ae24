import XCTest
@testable import StreamLog

final class StreamSequenceTests: XCTestCase {
    func test_sequences_orderByRawValue() {
        XCTAssertLessThan(StreamSequence(1), StreamSequence(2))
    }
}
