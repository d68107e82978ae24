import Gossip
import XCTest
@testable import ClusterServer

/// `PublishHeaders` reads a block in one pass and must answer exactly what one
/// `NATSHeaderBlock.value` lookup per name answers, on well-formed and malformed blocks alike.
final class PublishHeadersTests: XCTestCase {
    private let names = ["Nats-Msg-Id", "Nats-Expected-Stream", "Nats-Expected-Last-Msg-Id", "Nats-Expected-Last-Sequence",
                         "Nats-Expected-Last-Subject-Sequence", "Nats-Expected-Last-Subject-Sequence-Subject", "Nats-Rollup",
                         "Nats-TTL", "Nats-Required-Api-Level", "Nats-Stream-Source"]

    private func fields(_ h: PublishHeaders) -> [String?] {
        [h.msgID, h.expectedStream, h.expectedLastMsgID, h.expectedLastSequence, h.expectedLastSubjectSequence,
         h.expectedLastSubjectSequenceSubject, h.rollup, h.ttl, h.requiredAPILevel, h.streamSource]
    }

    private func lookedUp(_ block: [UInt8]?) -> [String?] {
        names.map { name in
            let v = NATSHeaderBlock.value(name, in: block)
            return name == "Nats-Msg-Id" ? v.flatMap { $0.isEmpty ? nil : $0 } : v
        }
    }

    func test_examples() {
        let block = NATSHeaderBlock.make([("Nats-Msg-Id", " a b "), ("X", "1"), ("Nats-Msg-Id", "second"), ("Nats-TTL", "")])
        let h = PublishHeaders(block)
        XCTAssertEqual(h.msgID, "a b", "trimmed, the first one")
        XCTAssertEqual(h.ttl, "", "present though empty")
        XCTAssertTrue(h.readsStore)
        XCTAssertNil(PublishHeaders(NATSHeaderBlock.make([("Nats-Msg-Id", "")])).msgID, "an empty id is no id")
        XCTAssertFalse(PublishHeaders(NATSHeaderBlock.make([("Nats-Msg-Id", "x"), ("Other", "y")])).readsStore)
        XCTAssertEqual(PublishHeaders(nil), PublishHeaders.none)
        XCTAssertEqual(PublishHeaders([]), PublishHeaders.none)
        XCTAssertNil(PublishHeaders(NATSHeaderBlock.make([("nats-msg-id", "x")])).msgID, "names are case-sensitive")
        XCTAssertNil(PublishHeaders(NATSHeaderBlock.make([("Nats-Msg-Idx", "x")])).msgID)
    }

    /// Seeded random blocks from the names, near misses and broken lines, against the lookups.
    func test_matchesOneLookupPerName_onRandomBlocks() {
        var rng = Gossip.SplitMix64(seed: 7)
        let others = ["Nats-Msg-I", "Nats-Msg-Idd", "nats-msg-id", "X-Nats-Msg-Id", "Nats", "N", "Nats-", "Nats-TTL ", " Nats-TTL",
                      "Foo", "Nats-Expected-Last-Subject-Sequenc"]
        let values = ["", " ", "v", " padded\t", "a:b", "12", "\t", "ü-ñ", "x y"]
        for round in 0..<3000 {
            var text = ["NATS/1.0", "NATS/1.0 503", "NATS/1.0\r", "", "garbage"][rng.next(below: 5)]
            text += "\r\n"
            for _ in 0..<rng.next(below: 8) {
                let pool = rng.next(below: 3) == 0 ? others : names
                let name = pool[rng.next(below: pool.count)]
                let value = values[rng.next(below: values.count)]
                let line: [String]
                switch rng.next(below: 10) {
                case 0: line = [name, value, "\r\n"]      // no colon
                case 1: line = [name, ":", value, "\n"]    // bare LF
                case 2: line = ["\r\n"]                   // an early end of the block
                default: line = [name, ":", value, "\r\n"]
                }
                text += line.joined()
            }
            if rng.next(below: 4) > 0 { text += "\r\n" }
            var bytes = Array(text.utf8)
            if rng.next(below: 10) == 0, !bytes.isEmpty { bytes.removeLast(rng.next(below: min(4, bytes.count) + 1)) }
            let h = PublishHeaders(bytes)
            XCTAssertEqual(fields(h), lookedUp(bytes), "round \(round): \(text.debugDescription)")
            XCTAssertEqual(h.readsStore, lookedUp(bytes).dropFirst().contains { $0 != nil }, "round \(round)")
        }
    }
}
