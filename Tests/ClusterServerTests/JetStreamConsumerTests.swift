import Foundation
import NIOCore
import XCTest
@testable import ClusterServer

final class JetStreamConsumerTests: XCTestCase {
    var h: JSHarness!

    override func setUpWithError() throws {
        h = try JSHarness()
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
    }
    override func tearDown() {
        h.stop()
        h.removeFiles()
    }

    private func durable(_ name: String, _ extra: String = "") -> [String: Any] {
        h.api("CONSUMER.DURABLE.CREATE.S.\(name)",
              "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"\(name)\",\"ack_policy\":\"explicit\"\(extra)}}")
    }

    private func info(_ name: String) -> [String: Any] { h.api("CONSUMER.INFO.S.\(name)") }

    func test_consumerCreate_subjectForms_andDefaults() {
        let c = durable("d")
        let cfg = c["config"] as? [String: Any]
        XCTAssertEqual(cfg?["ack_wait"] as? Int, 30_000_000_000)
        XCTAssertEqual(cfg?["max_waiting"] as? Int, 512)
        XCTAssertEqual(cfg?["max_ack_pending"] as? Int, 1000)
        XCTAssertEqual(cfg?["max_deliver"] as? Int, -1)
        let named = h.api("CONSUMER.CREATE.S.n.s.a", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"explicit\"}}")
        XCTAssertEqual((named["config"] as? [String: Any])?["filter_subject"] as? String, "s.a")
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S.n2.s.a",
                                     "{\"stream_name\":\"S\",\"config\":{\"filter_subject\":\"s.b\"}}")), 10131)
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"x\"}}")), 10020)
        XCTAssertEqual(errCode(h.api("CONSUMER.DURABLE.CREATE.S.a", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"b\"}}")), 10017)
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S.x", "{\"stream_name\":\"T\",\"config\":{}}")), 10056)
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S.x", "{\"stream_name\":\"S\",\"config\":{\"ack_wait\":\"1s\"}}")), 10025)
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S.x", "{\"stream_name\":\"S\",\"config\":{\"num_replicas\":3}}")), 10074)
        XCTAssertEqual(errCode(h.api("CONSUMER.INFO.S.nope")), 10014)
        let names = h.api("CONSUMER.NAMES.S")["consumers"] as? [String]
        XCTAssertEqual(names, ["d", "n"])
        XCTAssertEqual(h.api("CONSUMER.DELETE.S.n")["success"] as? Bool, true)
        XCTAssertEqual(intValue(h.api("CONSUMER.LIST.S"), "total"), 1)
    }

    func test_consumerUpdate_immutableFieldRefused_actionCreateOnExistingRefused() {
        _ = durable("d")
        let r = h.api("CONSUMER.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"none\"}}")
        XCTAssertEqual(errCode(r), 10012)
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S.d",
                                     "{\"stream_name\":\"S\",\"action\":\"create\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\",\"max_deliver\":3}}")), 10148)
        XCTAssertEqual(errCode(h.api("CONSUMER.CREATE.S.zz",
                                     "{\"stream_name\":\"S\",\"action\":\"update\",\"config\":{\"ack_policy\":\"explicit\"}}")), 10149)
    }

    func test_pull_batchDeliversStoredSubjectsAndAckMetadata() {
        for i in 1...3 { _ = h.publish("s.\(i)", "m\(i)") }
        _ = durable("d")
        let msgs = h.pull("S", "d", "{\"batch\":2}", expect: 2)
        XCTAssertEqual(msgs.map { $0.subject }, ["s.1", "s.2"])
        XCTAssertEqual(msgs.map { $0.payload }, ["m1", "m2"])
        let t = msgs[0].reply!.split(separator: ".").map(String.init)
        XCTAssertEqual(Array(t.prefix(7)), ["$JS", "ACK", "S", "d", "1", "1", "1"])
        XCTAssertEqual(t[8], "2", "num_pending after the first delivery")
        let ci = info("d")
        XCTAssertEqual(intValue(ci, "num_ack_pending"), 2)
        XCTAssertEqual(intValue(ci, "num_pending"), 1)
    }

    func test_pull_noWaitEmpty_gets404_expires_gets408WithPending() {
        _ = durable("d")
        let none = h.pull("S", "d", "{\"batch\":1,\"no_wait\":true}", expect: 1)
        XCTAssertEqual(none.first?.status, "404")
        XCTAssertEqual(none.first?.headers, "NATS/1.0 404 No Messages\r\n\r\n")
        _ = h.publish("s.a", "x")
        let r = h.pull("S", "d", "{\"batch\":3,\"expires\":200000000}", expect: 2)
        XCTAssertEqual(r.count, 2)
        XCTAssertEqual(r.last?.status, "408")
        XCTAssertEqual(r.last?.header("Nats-Pending-Messages"), "2")
    }

    func test_pull_waitsForMessage_thenDelivers() {
        _ = durable("d")
        let inbox = h.newInbox()
        h.server.publishInternal(subject: "$JS.API.CONSUMER.MSG.NEXT.S.d", reply: inbox, payload: ByteBuffer(string: "1"))
        usleep(100_000)
        XCTAssertEqual(intValue(info("d"), "num_waiting"), 1)
        _ = h.publish("s.late", "late")
        XCTAssertEqual(h.pullInbox(inbox, count: 1).first?.payload, "late")
    }

    func test_pull_maxBytes_tooSmallGets409_andCapsEnforced() {
        _ = h.publish("s.a", String(repeating: "x", count: 100))
        _ = durable("d", ",\"max_batch\":2")
        XCTAssertEqual(h.pull("S", "d", "{\"batch\":1,\"max_bytes\":10}", expect: 1).first?.headers?.hasPrefix("NATS/1.0 409 Message Size Exceeds MaxBytes"), true)
        XCTAssertEqual(h.pull("S", "d", "{\"batch\":5}", expect: 1).first?.headers, "NATS/1.0 409 Exceeded MaxRequestBatch of 2\r\n\r\n")
        XCTAssertEqual(h.pull("S", "d", "{\"batch\":1,\"idle_heartbeat\":1000000000,\"expires\":1000000000}", expect: 1).first?.status, "400")
    }

    func test_ack_nak_term_andRedeliveryCounts() {
        _ = h.publish("s.a", "1")
        _ = h.publish("s.b", "2")
        _ = durable("d")
        let first = h.pull("S", "d", "{\"batch\":2}", expect: 2)
        h.ack(first[0], "-NAK")
        h.ack(first[1], "+TERM")
        let again = h.pull("S", "d", "{\"batch\":1,\"expires\":500000000}", expect: 1)
        XCTAssertEqual(again.first?.payload, "1")
        XCTAssertEqual(again.first?.reply?.split(separator: ".")[4], "2", "delivery count 2")
        XCTAssertEqual(intValue(info("d"), "num_redelivered"), 1)
        h.ack(again[0], "+ACK", sync: true)
        let ci = info("d")
        XCTAssertEqual(intValue(ci, "num_ack_pending"), 0)
        XCTAssertEqual((ci["ack_floor"] as? [String: Any])?["stream_seq"] as? Int, 2)
        XCTAssertEqual(h.pull("S", "d", "{\"batch\":1,\"no_wait\":true}", expect: 1).first?.status, "404")
    }

    func test_ackWait_expiry_redelivers_untilMaxDeliver() {
        _ = h.publish("s.a", "1")
        _ = durable("d", ",\"ack_wait\":150000000,\"max_deliver\":2")
        XCTAssertEqual(h.pull("S", "d", "1", expect: 1).count, 1)
        let second = h.pull("S", "d", "{\"batch\":1,\"expires\":1000000000}", expect: 1)
        XCTAssertEqual(second.first?.payload, "1")
        let third = h.pull("S", "d", "{\"batch\":1,\"expires\":500000000}", expect: 1)
        XCTAssertEqual(third.first?.status, "408", "max_deliver 2 stops redelivery")
    }

    func test_ackAll_acksEverythingUpToSequence() {
        for i in 1...3 { _ = h.publish("s.a", "\(i)") }
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"all\"}}")
        let msgs = h.pull("S", "d", "{\"batch\":3}", expect: 3)
        h.ack(msgs[1], sync: true)
        XCTAssertEqual(intValue(info("d"), "num_ack_pending"), 1)
    }

    func test_doubleAck_repliesEmptyAfterProcessing() {
        _ = h.publish("s.a", "1")
        _ = durable("d")
        let m = h.pull("S", "d", "1", expect: 1)[0]
        let reply = h.requestRaw(m.reply!, "+ACK")
        XCTAssertEqual(reply?.payload, "")
        XCTAssertEqual(intValue(info("d"), "num_ack_pending"), 0)
    }

    func test_deliverPolicies_lastNewByStartSeqLastPerSubject() {
        for (s, v) in [("s.a", "1"), ("s.b", "2"), ("s.a", "3")] { _ = h.publish(s, v) }
        func first(_ name: String, _ cfg: String) -> String? {
            _ = h.api("CONSUMER.CREATE.S.\(name)", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"none\"\(cfg)}}")
            return h.pull("S", name, "{\"batch\":1,\"no_wait\":true}", expect: 1).first { $0.status == nil }?.payload
        }
        XCTAssertEqual(first("l", ",\"deliver_policy\":\"last\""), "3")
        XCTAssertEqual(first("q", ",\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":2"), "2")
        XCTAssertEqual(first("n", ",\"deliver_policy\":\"new\""), nil, "new: nothing yet (404 status has no payload)")
        _ = h.api("CONSUMER.CREATE.S.lps", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"none\",\"deliver_policy\":\"last_per_subject\"}}")
        XCTAssertEqual(intValue(info("lps"), "num_pending"), 2)
        let all = h.pull("S", "lps", "{\"batch\":5,\"no_wait\":true}", expect: 3)
        XCTAssertEqual(all.filter { $0.status == nil }.map { $0.payload }, ["2", "3"])
    }

    func test_filterSubjects_deliverOnlyMatching() {
        for s in ["s.a", "s.b", "s.c", "s.a"] { _ = h.publish(s, s) }
        _ = h.api("CONSUMER.CREATE.S.f", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"none\",\"filter_subjects\":[\"s.a\",\"s.c\"]}}")
        XCTAssertEqual(intValue(info("f"), "num_pending"), 3)
        let msgs = h.pull("S", "f", "{\"batch\":3}", expect: 3)
        XCTAssertEqual(msgs.map { $0.subject }, ["s.a", "s.c", "s.a"])
    }

    func test_push_deliversToDeliverSubject_withHeartbeatAndFlowControl() {
        _ = h.publish("s.a", "1")
        _ = h.api("CONSUMER.CREATE.S.p", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"none\",\"deliver_subject\":\"_T.push\",\"flow_control\":true,\"idle_heartbeat\":200000000}}")
        let got = h.wait("deliveries", count: 1)
        XCTAssertEqual(got.first?.subject, "s.a")
        let hb = h.wait("_T.push", count: 1, timeoutMs: 1500)
        XCTAssertEqual(hb.first?.headers?.hasPrefix("NATS/1.0 100 Idle Heartbeat\r\n"), true)
        XCTAssertEqual(hb.first?.header("Nats-Last-Consumer"), "1")
        XCTAssertEqual(hb.first?.header("Nats-Last-Stream"), "1")
        h.clear()
        XCTAssertEqual(h.pull("S", "p", "1", expect: 1).first?.headers, "NATS/1.0 409 Consumer is push based\r\n\r\n")
    }

    func test_push_flowControlRequestStallsUntilAnswered() {
        _ = h.api("CONSUMER.CREATE.S.p", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"none\",\"deliver_subject\":\"_T.fc\",\"flow_control\":true,\"idle_heartbeat\":5000000000}}")
        for i in 0..<(Consumer.flowControlMessages * 3) { h.server.publishInternal(subject: "s.x", payload: ByteBuffer(string: "\(i)")) }
        // Idle heartbeats share the deliver subject but carry no reply: wait (bounded) for the
        // two flow-control requests themselves.
        var fcs: [JSTestMessage] = []
        for _ in 0..<150 where fcs.count < 2 {
            fcs = h.messages("_T.fc").filter { $0.reply != nil }
            if fcs.count < 2 { usleep(20_000) }
        }
        XCTAssertEqual(fcs.count, 2)
        XCTAssertEqual(fcs.first?.status, "100")
        usleep(200_000)
        XCTAssertEqual(h.messages("deliveries").count, Consumer.flowControlMessages * 2, "stalled after two unanswered requests")
        for fc in fcs { if let reply = fc.reply { h.server.publishInternal(subject: reply, payload: ByteBuffer()) } }
        XCTAssertEqual(h.wait("deliveries", count: Consumer.flowControlMessages * 3).count, Consumer.flowControlMessages * 3)
    }

    func test_ephemeral_inactiveThreshold_deletesConsumer() {
        _ = h.api("CONSUMER.CREATE.S.e", "{\"stream_name\":\"S\",\"config\":{\"name\":\"e\",\"inactive_threshold\":200000000}}")
        XCTAssertNil(info("e")["error"])
        usleep(500_000)
        XCTAssertEqual(errCode(info("e")), 10014)
    }

    func test_interestRetention_removesWhenAllConsumersAcked() {
        _ = h.createStream("{\"name\":\"I\",\"subjects\":[\"i\"],\"retention\":\"interest\"}")
        _ = h.publish("i", "before any consumer")
        XCTAssertEqual(intValue(h.streamState("I"), "messages"), 0, "no interest: not kept")
        for n in ["a", "b"] {
            _ = h.api("CONSUMER.DURABLE.CREATE.I.\(n)", "{\"stream_name\":\"I\",\"config\":{\"durable_name\":\"\(n)\",\"ack_policy\":\"explicit\"}}")
        }
        _ = h.publish("i", "x")
        h.ack(h.pull("I", "a", "1", expect: 1)[0], sync: true)
        XCTAssertEqual(intValue(h.streamState("I"), "messages"), 1, "b has not acked")
        h.ack(h.pull("I", "b", "1", expect: 1)[0], sync: true)
        XCTAssertEqual(intValue(h.streamState("I"), "messages"), 0)
    }

    func test_workQueue_removesOnAck_andRefusesOverlappingConsumers() {
        _ = h.createStream("{\"name\":\"W\",\"subjects\":[\"w.>\"],\"retention\":\"workqueue\"}")
        XCTAssertNil(h.api("CONSUMER.DURABLE.CREATE.W.a", "{\"stream_name\":\"W\",\"config\":{\"durable_name\":\"a\",\"ack_policy\":\"explicit\",\"filter_subject\":\"w.a\"}}")["error"])
        XCTAssertEqual(errCode(h.api("CONSUMER.DURABLE.CREATE.W.b", "{\"stream_name\":\"W\",\"config\":{\"durable_name\":\"b\",\"ack_policy\":\"explicit\",\"filter_subject\":\"w.*\"}}")), 10099)
        XCTAssertEqual(errCode(h.api("CONSUMER.DURABLE.CREATE.W.c", "{\"stream_name\":\"W\",\"config\":{\"durable_name\":\"c\",\"ack_policy\":\"none\",\"filter_subject\":\"w.c\"}}")), 10101)
        _ = h.publish("w.a", "job")
        h.ack(h.pull("W", "a", "1", expect: 1)[0], sync: true)
        XCTAssertEqual(intValue(h.streamState("W"), "messages"), 0)
    }
}

final class JetStreamConsumerPolicyTests: XCTestCase {
    var h: JSHarness!

    override func setUpWithError() throws {
        h = try JSHarness()
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
    }
    override func tearDown() {
        h.stop()
        h.removeFiles()
    }

    func test_replayOriginal_spacesDeliveriesLikePublishes() {
        _ = h.publish("s.a", "1")
        usleep(300_000)
        _ = h.publish("s.a", "2")
        _ = h.api("CONSUMER.CREATE.S.r", "{\"stream_name\":\"S\",\"config\":{\"ack_policy\":\"none\",\"replay_policy\":\"original\"}}")
        let start = Date()
        let inbox = h.newInbox()
        h.server.publishInternal(subject: "$JS.API.CONSUMER.MSG.NEXT.S.r", reply: inbox, payload: ByteBuffer(string: "{\"batch\":2,\"expires\":2000000000}"))
        let got = h.pullInbox(inbox, count: 2)
        XCTAssertEqual(got.map { $0.payload }, ["1", "2"])
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.25, "second message waits the original gap")
    }

    func test_pause_holdsDeliveriesUntilResumed() {
        _ = h.publish("s.a", "1")
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\"}}")
        let until = JSTime.format(JSTime.nowNanos() + 60_000_000_000)
        let r = h.api("CONSUMER.PAUSE.S.d", "{\"pause_until\":\"\(until)\"}")
        XCTAssertEqual(r["paused"] as? Bool, true)
        XCTAssertEqual(h.api("CONSUMER.INFO.S.d")["paused"] as? Bool, true)
        let inbox = h.newInbox()
        h.server.publishInternal(subject: "$JS.API.CONSUMER.MSG.NEXT.S.d", reply: inbox, payload: ByteBuffer(string: "{\"batch\":1,\"expires\":3000000000}"))
        usleep(200_000)
        XCTAssertTrue(h.messages("deliveries").isEmpty, "paused: nothing delivered")
        XCTAssertEqual(h.api("CONSUMER.PAUSE.S.d")["paused"] as? Bool, false)
        XCTAssertEqual(h.pullInbox(inbox, count: 1).first?.payload, "1")
    }

    func test_interestRetention_ackNoneConsumer_removesOnDelivery() {
        _ = h.createStream("{\"name\":\"I\",\"subjects\":[\"i\"],\"retention\":\"interest\"}")
        _ = h.api("CONSUMER.CREATE.I.n", "{\"stream_name\":\"I\",\"config\":{\"name\":\"n\",\"ack_policy\":\"none\"}}")
        _ = h.publish("i", "x")
        XCTAssertEqual(intValue(h.streamState("I"), "messages"), 1)
        XCTAssertEqual(h.pull("I", "n", "1", expect: 1).first?.payload, "x")
        XCTAssertEqual(intValue(h.streamState("I"), "messages"), 0)
    }

    func test_streamFirstSeq_startsSequencesThere() {
        _ = h.createStream("{\"name\":\"F\",\"subjects\":[\"f\"],\"first_seq\":100}")
        XCTAssertEqual(h.publish("f", "x")["seq"] as? Int, 100)
    }
}
