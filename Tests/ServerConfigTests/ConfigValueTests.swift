import XCTest
@testable import ServerConfig

final class ConfigValueTests: XCTestCase {
    func test_maps_compareKeysInOrder() {
        let a = ConfigValue.map([(key: "a", value: .integer(1)), (key: "b", value: .bool(true))])
        let b = ConfigValue.map([(key: "b", value: .bool(true)), (key: "a", value: .integer(1))])
        XCTAssertEqual(a, a)
        XCTAssertNotEqual(a, b)
    }
}
