import Foundation
import NIOCore
import XCTest
@testable import ClusterServer

final class JetStreamStreamTests: XCTestCase {
    var h: JSHarness!

    override func setUpWithError() throws { h = try JSHarness() }
    override func tearDown() {
        h.stop()
        h.removeFiles()
    }

    func test_accountInfo_reportsLevelAndCounts() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        let info = h.api("INFO")
        XCTAssertEqual(info["type"] as? String, "io.nats.jetstream.api.v1.account_info_response")
        XCTAssertEqual(intValue(info, "streams"), 1)
        XCTAssertEqual((info["api"] as? [String: Any])?["level"] as? Int, 1)
    }

    func test_streamCreate_idempotentSameConfig_refusesDifferentConfig() {
        let r = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        XCTAssertEqual(r["did_create"] as? Bool, true)
        XCTAssertNil(r["error"])
        XCTAssertNil(h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")["error"])
        XCTAssertEqual(errCode(h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"],\"max_msgs\":5}")), 10058)
    }

    func test_streamCreate_badInput_getsNatsErrorsAndServerKeepsGoing() {
        XCTAssertEqual(errCode(h.api("STREAM.CREATE.S", "{nope")), 10025)
        XCTAssertEqual(errCode(h.api("STREAM.CREATE.S", "{\"name\":\"S\",\"max_msgs\":\"x\"}")), 10025)
        XCTAssertEqual(errCode(h.api("STREAM.CREATE.S", "{\"name\":\"T\"}")), 10056)
        XCTAssertEqual(errCode(h.api("STREAM.CREATE.S", "{\"name\":\"S\",\"num_replicas\":3}")), 10074)
        XCTAssertEqual(errCode(h.api("STREAM.CREATE.S", "{\"name\":\"S\",\"bogus\":true}")), 10025)
        _ = h.createStream("{\"name\":\"A\",\"subjects\":[\"x.>\"]}")
        XCTAssertEqual(errCode(h.createStream("{\"name\":\"B\",\"subjects\":[\"x.y\"]}")), 10065)
        XCTAssertEqual(errCode(h.api("STREAM.INFO.NOPE")), 10059)
        XCTAssertNil(h.createStream("{\"name\":\"C\",\"subjects\":[\"c\"]}")["error"], "still serving")
    }

    func test_streamUpdate_immutableFieldsRefused_limitsApplied() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        for i in 0..<5 { _ = h.publish("s.a", "\(i)") }
        XCTAssertEqual(errCode(h.api("STREAM.UPDATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"storage\":\"memory\"}")), 10052)
        let r = h.api("STREAM.UPDATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"max_msgs\":2}")
        XCTAssertNil(r["error"])
        XCTAssertEqual(intValue(h.streamState("S"), "messages"), 2)
        XCTAssertEqual(intValue(h.streamState("S"), "first_seq"), 4)
    }

    func test_namesAndList_pageAndFilterBySubject() {
        _ = h.createStream("{\"name\":\"B\",\"subjects\":[\"b.>\"]}")
        _ = h.createStream("{\"name\":\"A\",\"subjects\":[\"a.>\"]}")
        let names = h.api("STREAM.NAMES")
        XCTAssertEqual(names["streams"] as? [String], ["A", "B"])
        XCTAssertEqual(intValue(names, "total"), 2)
        XCTAssertEqual(h.api("STREAM.NAMES", "{\"subject\":\"a.x\"}")["streams"] as? [String], ["A"])
        let list = h.api("STREAM.LIST", "{\"offset\":1}")
        XCTAssertEqual((list["streams"] as? [[String: Any]])?.count, 1)
    }

    func test_publish_pubAckBytesExact_andDuplicateWithinWindow() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        XCTAssertEqual(h.requestRaw("s.a", "x", headers: [("Nats-Msg-Id", "1")])?.payload, "{\"stream\":\"S\",\"seq\":1}")
        XCTAssertEqual(h.requestRaw("s.a", "x", headers: [("Nats-Msg-Id", "1")])?.payload,
                       "{\"stream\":\"S\",\"seq\":1,\"duplicate\": true}")
        XCTAssertEqual(intValue(h.streamState("S"), "messages"), 1)
    }

    func test_publish_expectedHeaders_refuseWithNatsCodes() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        _ = h.publish("s.a", "1", headers: [("Nats-Msg-Id", "x1")])
        _ = h.publish("s.b", "2")
        XCTAssertEqual(h.requestRaw("s.a", "", headers: [("Nats-Expected-Last-Sequence", "1")])?.payload,
                       "{\"error\":{\"code\":400,\"err_code\":10071,\"description\":\"wrong last sequence: 2\"},\"stream\":\"S\",\"seq\":0}")
        XCTAssertEqual(errCode(h.publish("s.a", "", headers: [("Nats-Expected-Stream", "Q")])), 10060)
        XCTAssertEqual(errCode(h.publish("s.a", "", headers: [("Nats-Expected-Last-Msg-Id", "zz")])), 10070)
        XCTAssertEqual(errCode(h.publish("s.a", "", headers: [("Nats-Expected-Last-Subject-Sequence", "0")])), 10071)
        XCTAssertNil(h.publish("s.a", "", headers: [("Nats-Expected-Last-Subject-Sequence", "1")])["error"])
        XCTAssertNil(h.publish("s.new", "", headers: [("Nats-Expected-Last-Subject-Sequence", "0")])["error"])
        XCTAssertNil(h.publish("s.c", "", headers: [("Nats-Expected-Last-Sequence", "4")])["error"])
    }

    func test_publish_discardNewAndSizeLimits() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s\"],\"max_msgs\":2,\"discard\":\"new\",\"max_msg_size\":4}")
        XCTAssertNil(h.publish("s", "1")["error"])
        XCTAssertNil(h.publish("s", "2")["error"])
        let full = h.publish("s", "3")
        XCTAssertEqual(errCode(full), 10077)
        XCTAssertEqual((full["error"] as? [String: Any])?["description"] as? String, "maximum messages exceeded")
        XCTAssertEqual(errCode(h.publish("s", "12345")), 10054)
    }

    func test_publish_maxMsgsPerSubject_keepsNewestPerSubject() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"k.>\"],\"max_msgs_per_subject\":2}")
        for i in 1...3 { _ = h.publish("k.a", "\(i)") }
        _ = h.publish("k.b", "b")
        let st = h.streamState("S")
        XCTAssertEqual(intValue(st, "messages"), 3)
        XCTAssertEqual(intValue(st, "first_seq"), 2)
        XCTAssertEqual(intValue(st, "num_subjects"), 2)
    }

    func test_publish_rollupSub_leavesOnlyRollupMessage_andRefusedWithoutPermission() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"],\"allow_rollup_hdrs\":true}")
        _ = h.publish("s.a", "1")
        _ = h.publish("s.a", "2")
        _ = h.publish("s.b", "3")
        XCTAssertNil(h.publish("s.a", "r", headers: [("Nats-Rollup", "sub")])["error"])
        XCTAssertEqual(intValue(h.streamState("S"), "messages"), 2)
        XCTAssertEqual(errCode(h.publish("s.a", "r", headers: [("Nats-Rollup", "bogus")])), 10111)
        _ = h.createStream("{\"name\":\"N\",\"subjects\":[\"n\"]}")
        XCTAssertEqual(errCode(h.publish("n", "r", headers: [("Nats-Rollup", "all")])), 10111)
    }

    func test_msgGetDeletePurge_withDenyFlagsAndSealed() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        _ = h.publish("s.a", "one", headers: [("X", "y")])
        _ = h.publish("s.b", "two")
        _ = h.publish("s.a", "three")
        let m = h.api("STREAM.MSG.GET.S", "{\"last_by_subj\":\"s.a\"}")["message"] as? [String: Any]
        XCTAssertEqual(m?["seq"] as? Int, 3)
        XCTAssertEqual((m?["data"] as? String).flatMap { Data(base64Encoded: $0) }, Data("three".utf8))
        let first = h.api("STREAM.MSG.GET.S", "{\"seq\":1}")["message"] as? [String: Any]
        XCTAssertEqual((first?["hdrs"] as? String).flatMap { Data(base64Encoded: $0) }, Data("NATS/1.0\r\nX: y\r\n\r\n".utf8))
        XCTAssertEqual(errCode(h.api("STREAM.MSG.GET.S", "{\"seq\":9}")), 10037)
        XCTAssertEqual(h.api("STREAM.MSG.DELETE.S", "{\"seq\":2}")["success"] as? Bool, true)
        XCTAssertEqual(intValue(h.streamState("S"), "num_deleted"), 1)
        XCTAssertEqual(intValue(h.api("STREAM.PURGE.S", "{\"filter\":\"s.a\",\"keep\":1}"), "purged"), 1)
        XCTAssertEqual(intValue(h.streamState("S"), "messages"), 1)
        _ = h.createStream("{\"name\":\"D\",\"subjects\":[\"d\"],\"deny_delete\":true,\"deny_purge\":true}")
        _ = h.publish("d", "x")
        XCTAssertEqual(errCode(h.api("STREAM.MSG.DELETE.D", "{\"seq\":1}")), 10057)
        XCTAssertEqual(errCode(h.api("STREAM.PURGE.D")), 10110)
        XCTAssertNil(h.api("STREAM.UPDATE.S", "{\"name\":\"S\",\"subjects\":[\"s.>\"],\"sealed\":true}")["error"])
        XCTAssertEqual(errCode(h.publish("s.a", "late")), 10109)
    }

    func test_directGet_bothForms_andNotFoundStatus() {
        _ = h.createStream("{\"name\":\"K\",\"subjects\":[\"k.>\"],\"allow_direct\":true}")
        _ = h.publish("k.a", "v1")
        _ = h.publish("k.a", "v2")
        let last = h.requestRaw("$JS.API.DIRECT.GET.K.k.a", "")
        XCTAssertEqual(last?.payload, "v2")
        XCTAssertEqual(last?.header("Nats-Sequence"), "2")
        XCTAssertEqual(last?.header("Nats-Subject"), "k.a")
        XCTAssertEqual(last?.header("Nats-Stream"), "K")
        XCTAssertEqual(h.requestRaw("$JS.API.DIRECT.GET.K", "{\"seq\":1}")?.payload, "v1")
        XCTAssertEqual(h.requestRaw("$JS.API.DIRECT.GET.K", "{\"seq\":7}")?.status, "404")
        XCTAssertEqual(h.requestRaw("$JS.API.DIRECT.GET.K", "")?.status, "408")
        _ = h.createStream("{\"name\":\"N\",\"subjects\":[\"n\"]}")
        XCTAssertEqual(h.requestRaw("$JS.API.DIRECT.GET.N.n", "")?.status, "503", "no allow_direct: no responder")
    }

    func test_directGet_batchAndMultiLast_sendAtMostTheLimit_andCountTheRestInTheEOB() {
        h.js.directBatchLimit = 3 // set before any request reaches the JetStream queue
        _ = h.createStream("{\"name\":\"K\",\"subjects\":[\"k.>\"],\"allow_direct\":true}")
        for i in 1...5 { _ = h.publish("k.\(i)", "v\(i)") }
        for body in ["{\"seq\":1,\"batch\":10}", "{\"multi_last\":[\"k.*\"]}"] {
            let inbox = h.newInbox()
            h.server.publishInternal(subject: "$JS.API.DIRECT.GET.K", reply: inbox, headers: nil, payload: ByteBuffer(string: body))
            let got = h.wait(inbox, count: 4)
            XCTAssertEqual(got.count, 4, body)
            XCTAssertEqual(got.prefix(3).map(\.payload), ["v1", "v2", "v3"], body)
            XCTAssertEqual(got.last?.status, "204", body)
            XCTAssertEqual(got.last?.header("Nats-Num-Pending"), "2", body)
            XCTAssertEqual(got.last?.header("Nats-Last-Sequence"), "3", body)
            usleep(50_000)
            XCTAssertEqual(h.messages(inbox).count, 4, "nothing past the EOB: \(body)")
        }
    }

    func test_maxAge_expiresOldMessages() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s\"],\"max_age\":200000000}")
        _ = h.publish("s", "old")
        usleep(400_000)
        XCTAssertEqual(intValue(h.streamState("S"), "messages"), 0)
    }

    func test_perMessageTTL_expiresMessage_refusedWhenDisabled() {
        _ = h.createStream("{\"name\":\"T\",\"subjects\":[\"t\"],\"allow_msg_ttl\":true}")
        XCTAssertNil(h.publish("t", "x", headers: [("Nats-TTL", "1")])["error"])
        _ = h.publish("t", "stays")
        XCTAssertEqual(errCode(h.publish("t", "x", headers: [("Nats-TTL", "0.1")])), 10165)
        usleep(1_300_000)
        XCTAssertEqual(intValue(h.streamState("T"), "messages"), 1)
        _ = h.createStream("{\"name\":\"N\",\"subjects\":[\"n\"]}")
        XCTAssertEqual(errCode(h.publish("n", "x", headers: [("Nats-TTL", "5")])), 10166)
    }

    func test_streamDelete_removesStreamAndFiles() {
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s\"]}")
        _ = h.publish("s", "x")
        XCTAssertEqual(h.api("STREAM.DELETE.S")["success"] as? Bool, true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.dir + "/jetstream/S"))
        XCTAssertEqual(errCode(h.api("STREAM.INFO.S")), 10059)
    }
}
