import XCTest
@testable import ServerConfig

final class DurationAndSizeTests: XCTestCase {
    // MARK: parseDuration (Go's time.ParseDuration grammar)

    func test_parseDuration_everyUnitAndCombination() throws {
        let cases: [(String, Duration)] = [
            ("0", .zero), ("-0", .zero), ("1ns", .nanoseconds(1)), ("2us", .microseconds(2)),
            ("3\u{00B5}s", .microseconds(3)), ("4\u{03BC}s", .microseconds(4)), ("500ms", .milliseconds(500)),
            ("10s", .seconds(10)), ("2m", .seconds(120)), ("1h", .seconds(3600)),
            ("1h30m", .seconds(5400)), ("1h2m3s4ms", .milliseconds(3_723_004)), ("1.5s", .milliseconds(1500)),
            (".5s", .milliseconds(500)), ("1.s", .seconds(1)), ("-2m", .seconds(-120)), ("+3s", .seconds(3)),
            ("0.000000001s", .nanoseconds(1)), ("2562047h", .seconds(2_562_047 * 3600)),
            ("1m0.25s", .milliseconds(60_250)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parseDuration(text), expected, text)
        }
    }

    func test_parseDuration_rejectsMalformedText_withReason() {
        let cases: [(String, String)] = [
            ("", "invalid duration \"\": use a number and a unit, e.g. \"500ms\", \"10s\", \"2m\" or \"1h30m\""),
            ("10", "missing unit in duration \"10\" (use ns, us, ms, s, m or h)"),
            ("5d", "unknown unit \"d\" in duration \"5d\" (use ns, us, ms, s, m or h)"),
            ("1h30", "missing unit in duration \"1h30\" (use ns, us, ms, s, m or h)"),
            ("s", "invalid duration \"s\": use a number and a unit, e.g. \"500ms\", \"10s\", \"2m\" or \"1h30m\""),
            (".s", "invalid duration \".s\": use a number and a unit, e.g. \"500ms\", \"10s\", \"2m\" or \"1h30m\""),
            ("-", "invalid duration \"-\": use a number and a unit, e.g. \"500ms\", \"10s\", \"2m\" or \"1h30m\""),
            ("1 s", "unknown unit \" s\" in duration \"1 s\" (use ns, us, ms, s, m or h)"),
            ("3000000h", "duration \"3000000h\" is out of range"),
            ("99999999999999999999ns", "duration \"99999999999999999999ns\" is out of range"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try parseDuration(text), text) { error in
                XCTAssertEqual((error as? ConfigValueError)?.description, message, text)
            }
        }
    }

    // MARK: durations from config values

    func test_duration_quotedString_usesGoSyntax() throws {
        let root = try parseConfig("ping_interval: \"2m\"\nshort: 500ms\nhm: 1h30m")
        XCTAssertEqual(try root.duration("ping_interval"), .seconds(120))
        XCTAssertEqual(try root.duration("short"), .milliseconds(500))
        XCTAssertEqual(try root.duration("hm"), .seconds(5400))
    }

    func test_duration_bareInteger_isSeconds_likeNatsPingInterval() throws {
        XCTAssertEqual(try parseConfig("ping_interval: 30").duration("ping_interval"), .seconds(30))
    }

    /// nats-server lexes an unquoted `2m` as the size 2,000,000 and then reads it as
    /// seconds; we keep that compatibility but make the strict form explain it.
    func test_duration_unquotedMinuteSuffix_isASize_andStrictModeExplains() throws {
        let root = try parseConfig("ping_interval: 2m\nlame_duck_duration: 2m")
        XCTAssertEqual(try root.duration("ping_interval"), .seconds(2_000_000))
        XCTAssertThrowsError(try root.duration("lame_duck_duration", bareIntegerSeconds: false)) { error in
            XCTAssertEqual("\(error)", "lame_duck_duration: expected a duration string such as \"30s\" or \"2m\", found integer 2000000; write durations quoted (an unquoted 2m is the size 2000000)")
        }
    }

    func test_duration_wrongTypeAndBadText_nameTheKey() throws {
        let root = try parseConfig("a: true\nb: \"7 days\"\nc: [1]")
        XCTAssertThrowsError(try root.duration("a")) { XCTAssertEqual("\($0)", "a: expected a duration string such as \"30s\", found boolean true") }
        XCTAssertThrowsError(try root.duration("b")) { XCTAssertEqual("\($0)", "b: unknown unit \" days\" in duration \"7 days\" (use ns, us, ms, s, m or h)") }
        XCTAssertThrowsError(try root.duration("c")) { XCTAssertEqual("\($0)", "c: expected a duration string such as \"30s\", found array of 1 element") }
        XCTAssertNil(try root.duration("absent"))
    }

    // MARK: sizes

    func test_parseSize_stringForm_isBinaryKMGTLikeGetStorageSize() throws {
        let cases: [(String, Int64)] = [
            ("", 0), ("1024", 1024), ("1K", 1024), ("2M", 2 << 20), ("3G", 3 << 30), ("4T", 4 << 40), ("-1G", -(1 << 30)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parseSize(text), expected, text)
        }
    }

    func test_parseSize_stringForm_rejectsOtherSuffixes() {
        for text in ["1k", "1GB", "1Gi", "G", "1.5G", "one"] {
            XCTAssertThrowsError(try parseSize(text), text) { error in
                XCTAssertEqual((error as? ConfigValueError)?.reason,
                               .invalidSize("invalid size \"\(text)\": a size string must be an integer followed by K, M, G or T (binary units, \"1G\" = 1073741824); unquoted sizes such as 1G, 1GB or 1GiB are also accepted"))
            }
        }
        XCTAssertThrowsError(try parseSize("9999999999T")) { XCTAssertEqual("\($0)", "invalid size \"9999999999T\": does not fit in a 64-bit integer") }
    }

    func test_size_fromValues_integerStringAndWrongType() throws {
        let root = try parseConfig("a: 1GB\nb: \"1G\"\nc: 1G\nd: 1.5\ne: \"1 GB\"")
        XCTAssertEqual(try root.size("a"), 1 << 30)
        XCTAssertEqual(try root.size("b"), 1 << 30)
        XCTAssertEqual(try root.size("c"), 1_000_000_000)
        XCTAssertThrowsError(try root.size("d")) { XCTAssertEqual("\($0)", "d: expected a size such as 1GB or \"1G\", found float 1.5") }
        XCTAssertThrowsError(try root.size("e")) { XCTAssertTrue("\($0)".hasPrefix("e: invalid size \"1 GB\"")) }
    }

    func test_sizeUnits_table_matchesNats() {
        XCTAssertEqual(SizeUnits.multiplier(forSuffix: "k"), 1000)
        XCTAssertEqual(SizeUnits.multiplier(forSuffix: "KIB"), 1024)
        XCTAssertEqual(SizeUnits.multiplier(forSuffix: "e"), 1_000_000_000_000_000_000)
        XCTAssertEqual(SizeUnits.multiplier(forSuffix: "eib"), 1 << 60)
        XCTAssertNil(SizeUnits.multiplier(forSuffix: "kbb"))
        XCTAssertNil(SizeUnits.multiplier(forSuffix: "x"))
        XCTAssertNil(SizeUnits.multiplier(forSuffix: ""))
    }
}
