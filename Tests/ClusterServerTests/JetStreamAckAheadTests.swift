import Foundation
import XCTest
@testable import ClusterServer

/// Chaos finding 15: an ack of a delivery this consumer state never made (a previous stream
/// leader made it, and its record of the delivery never committed). Here one node plays the
/// new leader: the ack subject names a delivery it did not send.
final class JetStreamAckAheadTests: XCTestCase {
    var h: JSHarness!

    override func setUpWithError() throws {
        h = try JSHarness()
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        for i in 1...5 { _ = h.publish("s.a", "\(i)") }
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d",
                  "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\"}}")
    }
    override func tearDown() {
        h.stop()
        h.removeFiles()
    }

    /// The ack subject another leader would have sent with stream seq `sseq`, consumer seq `cseq`.
    private func otherLeadersAck(sseq: UInt64, cseq: UInt64) -> String {
        "$JS.ACK.S.d.1.\(sseq).\(cseq).\(JSTime.nowNanos()).2"
    }

    private func pullAll() -> [JSTestMessage] {
        h.pull("S", "d", "{\"batch\":10,\"expires\":400000000}", expect: 11, timeoutMs: 1500).filter { $0.status == nil }
    }

    private func consumerSeq(_ m: JSTestMessage) -> UInt64? {
        m.reply.flatMap { UInt64($0.split(separator: ".")[6]) }
    }

    func test_confirmedAckOfAnotherLeadersDelivery_isNeverDeliveredAgain() {
        let reply = h.requestRaw(otherLeadersAck(sseq: 3, cseq: 3), "+ACK")
        XCTAssertEqual(reply?.payload, "", "the double ack is confirmed")
        XCTAssertEqual(intValue(h.api("CONSUMER.INFO.S.d"), "num_pending"), 4)
        let got = pullAll()
        XCTAssertEqual(got.map(\.payload), ["1", "2", "4", "5"], "seq 3 was acked: not delivered again")
        // Consumer sequence 3 named the other leader's delivery; none of these reuses it.
        XCTAssertEqual(got.compactMap(consumerSeq), [4, 5, 6, 7])
        for m in got { h.ack(m, sync: true) }
        let info = h.api("CONSUMER.INFO.S.d")
        XCTAssertEqual(intValue(info, "num_pending"), 0)
        XCTAssertEqual(intValue(info, "num_ack_pending"), 0)
        XCTAssertEqual((info["ack_floor"] as? [String: Any])?["stream_seq"] as? Int, 5)
    }

    func test_termOfAnotherLeadersDelivery_isNeverDeliveredAgain() {
        XCTAssertEqual(h.requestRaw(otherLeadersAck(sseq: 1, cseq: 1), "+TERM")?.payload, "")
        XCTAssertEqual(pullAll().map(\.payload), ["2", "3", "4", "5"])
    }

    func test_ackAhead_isInTheRecord_andSurvivesARestart() throws {
        XCTAssertEqual(h.requestRaw(otherLeadersAck(sseq: 2, cseq: 2), "+ACK")?.payload, "")
        XCTAssertEqual(h.requestRaw(otherLeadersAck(sseq: 4, cseq: 4), "+ACK")?.payload, "")
        try h.restart()
        XCTAssertEqual(pullAll().map(\.payload), ["1", "3", "5"])
    }

    func test_ackOfASequenceNeverStored_isNotConfirmed() {
        XCTAssertNil(h.requestRaw(otherLeadersAck(sseq: 99, cseq: 99), "+ACK", timeoutMs: 300))
        XCTAssertEqual(pullAll().map(\.payload), ["1", "2", "3", "4", "5"])
    }

    func test_ackAll_pastTheCursor_acksEverythingUpToIt() {
        _ = h.api("CONSUMER.DURABLE.CREATE.S.all",
                  "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"all\",\"ack_policy\":\"all\"}}")
        let ack = "$JS.ACK.S.all.1.3.3.\(JSTime.nowNanos()).2"
        XCTAssertEqual(h.requestRaw(ack, "+ACK")?.payload, "")
        let got = h.pull("S", "all", "{\"batch\":10,\"expires\":400000000}", expect: 11, timeoutMs: 1500).filter { $0.status == nil }
        XCTAssertEqual(got.map(\.payload), ["4", "5"], "1-3 were acked by the ack of 3")
        XCTAssertEqual(got.compactMap(consumerSeq), [4, 5])
        XCTAssertNil(h.requestRaw("$JS.ACK.S.all.1.99.99.\(JSTime.nowNanos()).0", "+ACK", timeoutMs: 300),
                     "a sequence never stored is not confirmed")
    }

    func test_hostileConsumerSequence_doesNotMoveTheNumbering() {
        XCTAssertEqual(h.requestRaw(otherLeadersAck(sseq: 1, cseq: UInt64.max), "+ACK")?.payload, "")
        let got = pullAll()
        XCTAssertEqual(got.map(\.payload), ["2", "3", "4", "5"])
        XCTAssertEqual(got.compactMap(consumerSeq), [1, 2, 3, 4])
    }
}
