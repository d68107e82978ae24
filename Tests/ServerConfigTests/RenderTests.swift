import XCTest
@testable import ServerConfig

final class RenderTests: XCTestCase {
    func test_rendered_realisticConfig_roundTrips() throws {
        let root = try parseConfig(RealisticConfigTests.classic, env: ["POD_NAME": "node-2"])
        XCTAssertEqual(try parseConfig(root.rendered()), root)
    }

    func test_rendered_awkwardKeysAndStrings_roundTrip() throws {
        let value = ConfigValue.map([
            (key: "include", value: .string("not a directive")),
            (key: "with space", value: .string("tab\t nl\n quote\" back\\ bell\u{7} é $X")),
            (key: "has\"quote", value: .array([])),
            (key: "", value: .map([])),
            (key: "#hash", value: .array([.map([(key: "k", value: .integer(Int64.min))]), .array([.bool(false)])])),
            (key: "n", value: .double(-0.25)),
        ])
        XCTAssertEqual(try parseConfig(value.rendered()), value)
    }

    func test_decimal_writesPlainDigitsForAnyMagnitude() {
        let cases: [(Double, String)] = [
            (1.5, "1.5"), (-0.25, "-0.25"), (2, "2.0"), (0.00001, "0.00001"), (1e16, "10000000000000000.0"),
            (123456.789, "123456.789"), (1.2345e-7, "0.00000012345"), (0, "0.0"),
        ]
        for (number, text) in cases {
            XCTAssertEqual(Renderer.decimal(number), text)
            XCTAssertEqual(try parseConfig("v: \(text)")["v"], .double(number), text)
        }
    }

    func test_rendered_keyNeedingQuotesWithBothQuoteKinds_isFlaggedNotExact() {
        XCTAssertTrue(ConfigValue.map([(key: "a\"b'c", value: .integer(1))]).isExactlyRenderable)
        XCTAssertFalse(ConfigValue.map([(key: "a \"b'c", value: .integer(1))]).isExactlyRenderable)
        XCTAssertFalse(ConfigValue.array([.double(.nan)]).isExactlyRenderable)
    }

    func test_rendered_scalarAtTopLevel_isOneLine() {
        XCTAssertEqual(ConfigValue.integer(5).rendered(), "5\n")
    }
}
