@testable import ClusterServer
import XCTest

final class AckSubjectTests: XCTestCase {
    /// The old parser (split by `Character`), kept here as the reference for the byte scan.
    private func reference(_ subject: String) -> AckSubject? {
        let t = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let base: Int
        if t.count == 9 { base = 2 } else if t.count >= 11 { base = 4 } else { return nil }
        guard t[base + 3].allSatisfy(\.isASCII), t[base + 4].allSatisfy(\.isASCII),
              !t[base + 3].hasPrefix("+"), !t[base + 4].hasPrefix("+"),
              let sseq = UInt64(t[base + 3]), let cseq = UInt64(t[base + 4]) else { return nil }
        return AckSubject(stream: t[base], consumer: t[base + 1], streamSeq: sseq, consumerSeq: cseq)
    }

    func test_v1_and_v2_forms() {
        XCTAssertEqual(AckSubject("$JS.ACK.ORDERS.worker.1.42.7.1700000000000000000.3"),
                       .init(stream: "ORDERS", consumer: "worker", streamSeq: 42, consumerSeq: 7))
        XCTAssertEqual(AckSubject("$JS.ACK.hub.ACCHASH.ORDERS.worker.2.43.8.1700000000000000000.0"),
                       .init(stream: "ORDERS", consumer: "worker", streamSeq: 43, consumerSeq: 8))
        XCTAssertEqual(AckSubject("$JS.ACK.hub.ACCHASH.ORDERS.worker.2.43.8.1700000000000000000.0.rand"),
                       .init(stream: "ORDERS", consumer: "worker", streamSeq: 43, consumerSeq: 8))
    }

    func test_badSubjects_areRefused() {
        for bad in ["", "$JS.ACK", "$JS.ACK.S.C.1.2.3.4", "$JS.ACK.S.C.1.2.3.4.5.6",   // 8 and 10 tokens
                    "$JS.ACK.S.C.1.x.3.4.5", "$JS.ACK.S.C.1.2..4.5", "$JS.ACK.S.C.1.-2.3.4.5",
                    "$JS.ACK.S.C.1.+2.3.4.5", "$JS.ACK.S.C.1.18446744073709551616.3.4.5", "$JS.ACK.S.C.1.2.٣.4.5"] {
            XCTAssertNil(AckSubject(bad), bad)
        }
        XCTAssertEqual(AckSubject("$JS.ACK.S.C.1.18446744073709551615.0.4.5")?.streamSeq, .max)
        XCTAssertEqual(AckSubject("$JS.ACK.é.ü.1.2.3.4.5"), .init(stream: "é", consumer: "ü", streamSeq: 2, consumerSeq: 3))
    }

    /// Seeded random subjects of ack-like tokens: the byte scan agrees with the old split.
    func test_agreesWithTheSplitParser_onSeededRandomSubjects() {
        var rng = SplitMix64(seed: 0xACC)
        let pieces = ["$JS", "ACK", "S", "C", "", "1", "42", "007", "x", "9999999999999999999", "99999999999999999999", "é", "+1", "-1"]
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 13)
            let subject = (0...n).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined(separator: ".")
            XCTAssertEqual(AckSubject(subject), reference(subject), subject)
        }
    }

    func test_verbs() {
        func verb(_ s: String) -> AckVerb? { AckVerb.parse(Array(s.utf8))?.verb }
        XCTAssertEqual(verb(""), .ack)
        XCTAssertEqual(verb("+ACK"), .ack)
        XCTAssertEqual(verb("+OK"), .ack)
        XCTAssertEqual(verb("-NAK"), .nak)
        XCTAssertEqual(verb("-NAK {\"delay\": 5}"), .nak)
        XCTAssertEqual(verb("+WPI"), .inProgress)
        XCTAssertEqual(verb("+NXT {\"batch\":2}"), .next)
        XCTAssertEqual(verb("+TERM"), .term)
        XCTAssertEqual(verb("+TERM reason"), .term)
        XCTAssertNil(verb("+ACKX"))
        XCTAssertNil(verb("junk"))
        XCTAssertEqual(AckVerb.parse(Array("-NAK 5s".utf8)).map { Array($0.argument) }, Array(" 5s".utf8))
        XCTAssertEqual(AckVerb.parse(Array("+NXT{\"batch\":2}".utf8)).map { Array($0.argument) }, Array("{\"batch\":2}".utf8))
        XCTAssertEqual(AckVerb.parse(Array("+TERM".utf8)).map { Array($0.argument) }, [], "no reason: nothing after the word")
        XCTAssertEqual(AckVerb.parse(Array("+TERM bad payload".utf8)).map { Array($0.argument) }, Array(" bad payload".utf8))
    }
}
