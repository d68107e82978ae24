import XCTest
@testable import ClusterServer

final class VersionTests: XCTestCase {
    func test_reportedVersion_isAtLeast2_12() {
        let parts = ServerVersion.nats.split(separator: ".").compactMap { Int($0) }
        XCTAssertGreaterThanOrEqual(parts[0] * 100 + parts[1], 212)
    }
}
