import XCTest
@testable import ServerConfig

final class AccessorTests: XCTestCase {
    func test_lookup_isCaseInsensitive_likeNatsOptionNames() throws {
        let root = try parseConfig("Server_Name: a\nCLUSTER { Port: 6222 }")
        XCTAssertEqual(try root.string("server_name"), "a")
        XCTAssertEqual(try root.block("cluster")?.int("PORT"), 6222)
    }

    func test_lookup_sameKeyTwoSpellings_lastWins() throws {
        XCTAssertEqual(try parseConfig("port: 1\nPORT: 2").int("Port"), 2)
    }

    func test_typedAccessors_returnNilWhenAbsent_andThrowOnWrongType() throws {
        let root = try parseConfig("s: x\ni: 1\nf: 2.5\nb: on\na: [1]\nm { k: v }")
        XCTAssertNil(try root.string("missing"))
        XCTAssertEqual(try root.double("i"), 1.0)
        XCTAssertEqual(try root.double("f"), 2.5)
        XCTAssertEqual(try root.bool("b"), true)
        XCTAssertEqual(try root.array("a"), [.integer(1)])
        XCTAssertEqual(try root.block("m")?.string("k"), "v")
        let mismatches: [(() throws -> Any?, String)] = [
            ({ try root.int("s") }, "s: expected an integer, found string \"x\""),
            ({ try root.string("i") }, "i: expected a string, found integer 1"),
            ({ try root.bool("s") }, "s: expected a boolean (true/false, yes/no, on/off), found string \"x\""),
            ({ try root.array("m") }, "m: expected an array, found block"),
            ({ try root.block("a") }, "a: expected a block, found array of 1 element"),
            ({ try root.double("b") }, "b: expected a number, found boolean true"),
        ]
        for (call, message) in mismatches {
            XCTAssertThrowsError(try call()) { XCTAssertEqual("\($0)", message) }
        }
    }

    func test_required_throwsMissing() throws {
        let root = try parseConfig("a: 1")
        XCTAssertEqual(try root.required("A"), .integer(1))
        XCTAssertThrowsError(try root.required("b")) { error in
            XCTAssertEqual(error as? ConfigValueError, ConfigValueError(key: "b", reason: .missing))
            XCTAssertEqual("\(error)", "b: required key is missing")
        }
    }

    func test_subscript_onNonBlock_isNil() {
        XCTAssertNil(ConfigValue.integer(1)["x"])
        XCTAssertNil(ConfigValue.array([])["x"])
    }

    func test_typeDescription_truncatesLongStrings() {
        let long = String(repeating: "a", count: 100)
        XCTAssertEqual(ConfigValue.string(long).typeDescription, "string \"\(String(repeating: "a", count: 40))…\"")
    }
}
