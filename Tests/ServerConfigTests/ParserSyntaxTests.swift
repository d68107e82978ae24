import XCTest
@testable import ServerConfig

final class ParserSyntaxTests: XCTestCase {
    func test_parse_separators_colonEqualsAndSpaceAllWork() throws {
        let root = try parseConfig("a: 1\nb = 2\nc 3\nd:4\ne=5\n")
        XCTAssertEqual(root, .block(["a": .integer(1), "b": .integer(2), "c": .integer(3), "d": .integer(4), "e": .integer(5)]))
    }

    func test_parse_nestedBlocks_withAndWithoutSeparator() throws {
        let root = try parseConfig("""
        cluster {
          name: c1
          inner: { x = 1 }
        }
        other: {
        }
        braceNextLine
        {
          y: 2
        }
        """)
        XCTAssertEqual(root, .block([
            "cluster": .block(["name": .string("c1"), "inner": .block(["x": .integer(1)])]),
            "other": .map([]),
            "braceNextLine": .block(["y": .integer(2)]),
        ]))
    }

    func test_parse_blockEntries_separatedByCommasSemicolonsAndNewlines() throws {
        let root = try parseConfig("b { x: 1, y: 2; z: 3\n w: 4 }")
        XCTAssertEqual(root["b"], .block(["x": .integer(1), "y": .integer(2), "z": .integer(3), "w": .integer(4)]))
    }

    func test_parse_arrays_commasNewlinesTrailingCommaAndComments() throws {
        let root = try parseConfig("""
        a: [1, 2, 3]
        b: [
          x   # first
          y,  // second
          z,
        ]
        c: []
        d [ [1, 2], {k: v}, "s" ]
        """)
        XCTAssertEqual(root["a"], .array([.integer(1), .integer(2), .integer(3)]))
        XCTAssertEqual(root["b"], .array([.string("x"), .string("y"), .string("z")]))
        XCTAssertEqual(root["c"], .array([]))
        XCTAssertEqual(root["d"], .array([.array([.integer(1), .integer(2)]), .block(["k": .string("v")]), .string("s")]))
    }

    func test_parse_comments_hashAndSlashEverywhere() throws {
        let root = try parseConfig("""
        # leading comment
        // another
        a: 1 # trailing
        b: 2 // trailing
        c {  # after brace
          # inside
          d: 3
        } // after block
        url: nats://host:4222
        pass: abc#def
        """)
        XCTAssertEqual(root, .block([
            "a": .integer(1), "b": .integer(2), "c": .block(["d": .integer(3)]),
            "url": .string("nats://host:4222"), "pass": .string("abc#def"),
        ]))
    }

    func test_parse_strings_quotedEscapesAndBare() throws {
        let root = try parseConfig(#"""
        dq: "a \"q\" \\ \t\n\r \x41 é"
        sq: 'no \escapes "here"'
        bare: hello.world/x-y
        empty: ""
        multi: "line1
        line2"
        key_with_spaces_in_value: "a b c"
        "quoted key": 1
        'single key' = 2
        """#)
        XCTAssertEqual(try root.string("dq"), "a \"q\" \\ \t\n\r A é")
        XCTAssertEqual(try root.string("sq"), #"no \escapes "here""#)
        XCTAssertEqual(try root.string("bare"), "hello.world/x-y")
        XCTAssertEqual(try root.string("empty"), "")
        XCTAssertEqual(try root.string("multi"), "line1\nline2")
        XCTAssertEqual(try root.string("key_with_spaces_in_value"), "a b c")
        XCTAssertEqual(try root.int("quoted key"), 1)
        XCTAssertEqual(try root.int("single key"), 2)
    }

    func test_parse_parenBlockString_endsAtCloseParenAloneOnLine() throws {
        let root = try parseConfig("text (\nline one (x)\n  line two)\n)\nafter: 1\n")
        XCTAssertEqual(try root.string("text"), "\nline one (x)\n  line two)")
        XCTAssertEqual(try root.int("after"), 1)
    }

    func test_parse_booleans_allNatsSpellingsCaseInsensitive() throws {
        let root = try parseConfig("a: true\nb: FALSE\nc: yes\nd: No\ne: on\nf: OFF\ng: \"true\"")
        XCTAssertEqual(root, .block([
            "a": .bool(true), "b": .bool(false), "c": .bool(true), "d": .bool(false),
            "e": .bool(true), "f": .bool(false), "g": .string("true"),
        ]))
    }

    func test_parse_numbers_integersFloatsNegatives() throws {
        let root = try parseConfig("i: 42\nn: -7\nf: 1.5\nnf: -0.25\nbig: 9223372036854775807\nz: 0")
        XCTAssertEqual(root, .block([
            "i": .integer(42), "n": .integer(-7), "f": .double(1.5), "nf": .double(-0.25),
            "big": .integer(Int64.max), "z": .integer(0),
        ]))
    }

    func test_parse_sizeSuffixes_decimalSingleLetterBinaryWithBOrI() throws {
        let cases: [(String, Int64)] = [
            ("1k", 1000), ("1K", 1000), ("1kb", 1024), ("1KB", 1024), ("1ki", 1024), ("1KiB", 1024),
            ("2m", 2_000_000), ("2mb", 2 << 20), ("2MiB", 2 << 20), ("2Mi", 2 << 20),
            ("3g", 3_000_000_000), ("3GB", 3 << 30), ("3gib", 3 << 30), ("3Gi", 3 << 30),
            ("4t", 4_000_000_000_000), ("4TB", 4 << 40), ("4TiB", 4 << 40),
            ("5p", 5_000_000_000_000_000), ("5PB", 5 << 50), ("1e", 1_000_000_000_000_000_000),
            ("1EB", 1 << 60), ("7EiB", 7 << 60), ("-1k", -1000),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parseConfig("v: \(text)")["v"], .integer(expected), text)
        }
    }

    func test_parse_addressesAndDigitLedWords_stayStrings() throws {
        let root = try parseConfig("""
        listen: 0.0.0.0:4222
        ip: 10.0.0.1
        host: localhost:6222
        six: "[::1]:4222"
        dur: 10s
        hm: 1h30m
        ms: 500ms
        date: 2024-01-02T03:04:05Z
        """)
        XCTAssertEqual(try root.string("listen"), "0.0.0.0:4222")
        XCTAssertEqual(try root.string("ip"), "10.0.0.1")
        XCTAssertEqual(try root.string("host"), "localhost:6222")
        XCTAssertEqual(try root.string("six"), "[::1]:4222")
        XCTAssertEqual(try root.string("dur"), "10s")
        XCTAssertEqual(try root.string("hm"), "1h30m")
        XCTAssertEqual(try root.string("ms"), "500ms")
        XCTAssertEqual(try root.string("date"), "2024-01-02T03:04:05Z")
    }

    func test_parse_semicolonsAndTopLevelCommas_areOptionalTerminators() throws {
        let root = try parseConfig("a: 1;\nb: \"x\"; c: 3,\nd { e: 4; };\n")
        XCTAssertEqual(root, .block(["a": .integer(1), "b": .string("x"), "c": .integer(3), "d": .block(["e": .integer(4)])]))
    }

    func test_parse_jsonStyleFile_wrappedInBraces() throws {
        let root = try parseConfig(#"{ "port": 4222, "cluster": { "name": "c" }, "routes": ["a", "b"] }"#)
        XCTAssertEqual(root, .block([
            "port": .integer(4222), "cluster": .block(["name": .string("c")]), "routes": .array([.string("a"), .string("b")]),
        ]))
    }

    func test_parse_duplicateKey_lastValueWinsAtFirstPosition() throws {
        let root = try parseConfig("a: 1\nb: 2\na: 3\n")
        XCTAssertEqual(root, .block(["a": .integer(3), "b": .integer(2)]))
    }

    func test_parse_crlfLineEndings_areNewlines() throws {
        let root = try parseConfig("a: 1\r\nb {\r\n c: [1,\r\n 2]\r\n}\r\n")
        XCTAssertEqual(root, .block(["a": .integer(1), "b": .block(["c": .array([.integer(1), .integer(2)])])]))
    }

    func test_parse_emptyAndCommentOnlyFiles_giveEmptyBlock() throws {
        XCTAssertEqual(try parseConfig(""), .map([]))
        XCTAssertEqual(try parseConfig("  \n# nothing\n// here\n"), .map([]))
    }

    func test_parse_includeAsOrdinaryKey_whenFollowedBySeparator() throws {
        XCTAssertEqual(try parseConfig("include: 5")["include"], .integer(5))
    }

    func test_parse_escapeInBareWord_makesAString() throws {
        XCTAssertEqual(try parseConfig(#"v: tr\x75e"#)["v"], .string("true"))
    }
}

extension ParserSyntaxTests {
    func test_parse_blockOrArrayOpenerOnNextLine_isAccepted() throws {
        let root = try parseConfig("routes =\n[\n  a\n]\nc:\n  # comment\n  {\n x: 1 }\n")
        XCTAssertEqual(root, .block(["routes": .array([.string("a")]), "c": .block(["x": .integer(1)])]))
    }

    func test_parse_leadingByteOrderMark_isIgnored() throws {
        XCTAssertEqual(try parseConfig("\u{FEFF}server_name: a\n"), .block(["server_name": .string("a")]))
    }
}
