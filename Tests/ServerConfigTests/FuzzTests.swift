import Foundation
import XCTest
@testable import ServerConfig

/// Seeded mutation fuzzing: random edits of valid files must never crash the parser, and
/// every failure must be a one-line `ConfigError` whose position lies inside the input,
/// and every success must survive `rendered()` and a re-parse unchanged.
/// Replay a failure with `FUZZ_SEED=<seed> swift test --filter ServerConfigTests.FuzzTests`;
/// `FUZZ_ITERATIONS=<n>` runs a longer campaign.
final class FuzzTests: XCTestCase {
    /// SplitMix64: tiny, seedable, good enough to drive mutations.
    struct SeededRandom: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let fragments = [
        "{", "}", "[", "]", "\"", "'", "\\", "$", "$X", "$A", "$LIST", "$nope", ":", "=", ";", ",", "\n", "#", "//",
        "(", "\n)\n", "include a.conf", "include cyc1.conf", "include missing.conf", "\\x4", "\\x41", "1k", "2MiB", "5kbb",
        "-", ".", "1.", "é", "\r", "\r\n", "\t", " ", "2024-", "2024-01-02T03:04:05Z", "99999999999999999999", "\u{0}",
        "true", "1.2.3.4:5", "key", "\"q\"", "10E", "0.5s", "\u{FEFF}", "\u{2028}",
    ]

    static let corpus = [
        RealisticConfigTests.helmStyle, RealisticConfigTests.classic,
        "a: 1\nb = [1, 2, {c: d}]\nX: 5\ne { f: $X; g: 'h' }\n",
        "t (\nraw text\n)\ns: \"esc \\t \\x41\"\n// c\n# c\nv: 1.5\nw: -3k\n",
        "{ \"a\": [ \"b\", ], \"c\": { \"d\": true }, include a.conf }",
    ]

    static let files = [
        "a.conf": "inc: 1\n", "cyc1.conf": "include cyc2.conf", "cyc2.conf": "include cyc1.conf",
    ]
    static let env = ["X": "1", "A": "$B", "B": "$A", "LIST": "[1,", "POD_NAME": "p", "SERVER_NAME": "s", "NATS_TOKEN": "t", "SYS": "{}"]

    func test_parser_randomMutationsOfValidFiles_neverCrashAndReportInBoundsErrors() throws {
        let seed = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5EED_C0F1
        var random = SeededRandom(state: seed)
        var outcomes = (parsed: 0, failed: 0)
        let iterations = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap(Int.init) ?? 3000
        for iteration in 0..<iterations {
            let base = Self.corpus[Int(random.next() % UInt64(Self.corpus.count))]
            var scalars = Array(base.unicodeScalars)
            for _ in 0..<(1 + Int(random.next() % 4)) { mutate(&scalars, &random) }
            let text = String(String.UnicodeScalarView(scalars))
            let context = "seed \(seed) iteration \(iteration); replay: FUZZ_SEED=\(seed) swift test --filter ServerConfigTests.FuzzTests"
            if check(text, context: context) { outcomes.parsed += 1 } else { outcomes.failed += 1 }
        }
        // Both branches must be exercised, or the mutations are too weak or too strong.
        XCTAssertGreaterThan(outcomes.parsed, iterations / 30)
        XCTAssertGreaterThan(outcomes.failed, iterations / 30)
    }

    func test_parser_randomFragmentSoup_neverCrashes() {
        let seed = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap(UInt64.init) ?? 0xF00D
        var random = SeededRandom(state: seed)
        for iteration in 0..<2000 {
            var text = ""
            for _ in 0..<(Int(random.next() % 40)) {
                text += Self.fragments[Int(random.next() % UInt64(Self.fragments.count))]
            }
            _ = check(text, context: "soup seed \(seed) iteration \(iteration); replay: FUZZ_SEED=\(seed) swift test --filter ServerConfigTests.FuzzTests")
        }
    }

    private func mutate(_ scalars: inout [Unicode.Scalar], _ random: inout SeededRandom) {
        let position = scalars.isEmpty ? 0 : Int(random.next() % UInt64(scalars.count + 1))
        switch random.next() % 5 {
        case 0 where !scalars.isEmpty:
            let end = min(scalars.count, position + 1 + Int(random.next() % 8))
            scalars.removeSubrange(min(position, scalars.count)..<end)
        case 1:
            let fragment = Self.fragments[Int(random.next() % UInt64(Self.fragments.count))]
            scalars.insert(contentsOf: fragment.unicodeScalars, at: position)
        case 2 where !scalars.isEmpty:
            let start = min(position, scalars.count - 1)
            let end = min(scalars.count, start + 1 + Int(random.next() % 30))
            scalars.insert(contentsOf: Array(scalars[start..<end]), at: Int(random.next() % UInt64(scalars.count + 1)))
        case 3:
            scalars.removeSubrange(position...)
        default:
            guard scalars.count > 1 else { return }
            let other = Int(random.next() % UInt64(scalars.count))
            scalars.swapAt(min(position, scalars.count - 1), other)
        }
    }

    /// Parses `text` twice; returns whether it parsed. Fails the test on any broken promise.
    private func check(_ text: String, context: String) -> Bool {
        let first = outcome(text)
        let second = outcome(text)
        XCTAssertEqual(first, second, "parsing is not deterministic: \(context)")
        switch first {
        case let .success(value):
            XCTAssertNotNil(value.entries, "top level is not a block: \(context)")
            // Whatever parsed must survive a render/parse round trip unchanged.
            if value.isExactlyRenderable {
                let rendered = value.rendered()
                XCTAssertEqual(try? parseConfig(rendered), value, "round trip failed for:\n\(rendered)\n\(context)")
            }
            return true
        case let .failure(error):
            XCTAssertFalse(error.message.isEmpty, context)
            XCTAssertFalse(error.description.contains("\n"), "multi-line message \(error): \(context)")
            XCTAssertGreaterThanOrEqual(error.line, 1, context)
            XCTAssertGreaterThanOrEqual(error.column, 1, context)
            if error.file == "fuzz.conf" {
                let bounds = Self.extent(of: text)
                XCTAssertLessThanOrEqual(error.line, bounds.lines, "\(error): \(context)")
                XCTAssertLessThanOrEqual(error.column, bounds.widest + 1, "\(error): \(context)")
            }
            return false
        }
    }

    private func outcome(_ text: String) -> Result<ConfigValue, ConfigError> {
        do {
            return .success(try parseConfig(text, env: Self.env, files: Self.files, fileName: "fuzz.conf"))
        } catch let error as ConfigError {
            return .failure(error)
        } catch {
            XCTFail("non-ConfigError thrown: \(error)")
            return .failure(ConfigError(file: "", line: 0, column: 0, message: "\(error)"))
        }
    }

    /// Lines and widest line, counting newlines the way `SourceCursor` does.
    static func extent(of text: String) -> (lines: Int, widest: Int) {
        let scalars = Array(text.unicodeScalars)
        var lines = 1, width = 0, widest = 0
        for (index, scalar) in scalars.enumerated() {
            if scalar == "\n" || (scalar == "\r" && (index + 1 == scalars.count || scalars[index + 1] != "\n")) {
                lines += 1
                width = 0
            } else {
                width += 1
                widest = max(widest, width)
            }
        }
        return (lines, widest)
    }
}
