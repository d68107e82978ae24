import Foundation
import XCTest
@testable import ClusterServer

final class JSJSONStringTests: XCTestCase {
    private func reference(_ s: String) -> String {
        let d = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        let t = String(decoding: d, as: UTF8.self)
        return String(t.dropFirst().dropLast())
    }

    func test_string_matchesJSONSerialization_onEdgeCases() {
        let cases = ["", "ORDERS", "a/b", "quote\"in", "back\\slash", "tab\there", "nl\nx", "cr\r", "\u{08}\u{0C}",
                     "\u{01}\u{1F}", "ümlaut", "emoji 🚀", "mixed \"\\\n\u{02}/ü"]
        for s in cases { XCTAssertEqual(JSJSON.string(s), reference(s), s.debugDescription) }
    }

    func test_string_matchesJSONSerialization_onSeededRandomStrings() {
        var rng = SplitMix64(seed: 7)
        let alphabet: [Character] = ["a", "Z", "0", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", "ü", "€", " ", "."]
        for _ in 0..<2000 {
            let n = Int(rng.next() % 12)
            let s = String((0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            XCTAssertEqual(JSJSON.string(s), reference(s), s.debugDescription)
        }
    }
}
