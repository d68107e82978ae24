import Foundation
import StreamLog
import XCTest
@testable import ClusterServer

final class JetStreamRestartTests: XCTestCase {
    func test_restart_keepsStreamsMessagesConsumersAndAckState() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"],\"max_msgs_per_subject\":3}")
        for i in 1...10 { _ = h.publish("s.\(i % 2)", "m\(i)", headers: [("Nats-Msg-Id", "id\(i)")]) }
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\"}}")
        let got = h.pull("S", "d", "{\"batch\":4}", expect: 4)
        for m in got.prefix(3) { h.ack(m, sync: true) }
        let before = h.streamState("S")

        try h.restart()

        let after = h.streamState("S")
        XCTAssertEqual(intValue(after, "messages"), intValue(before, "messages"))
        XCTAssertEqual(intValue(after, "last_seq"), 10)
        let ci = h.api("CONSUMER.INFO.S.d")
        XCTAssertEqual((ci["ack_floor"] as? [String: Any])?["stream_seq"] as? Int, got[2].reply.flatMap { Int($0.split(separator: ".")[5]) })
        XCTAssertEqual(intValue(ci, "num_ack_pending"), 1, "the unacked delivery is still pending")
        XCTAssertEqual(h.publish("s.1", "dup", headers: [("Nats-Msg-Id", "id9")])["duplicate"] as? Bool, true,
                       "dedup window survives a restart")
        let next = h.pull("S", "d", "{\"batch\":1}", expect: 1)
        // Seqs 5...10 remain (3 per subject); 5-8 were delivered, so 9 is next.
        XCTAssertEqual(next.first?.payload, "m9", "delivery continues after the delivered pointer")
    }

    /// A `Nats-TTL: never` message outlives max_age (as on nats-server), also after a restart,
    /// which finds it from its header; messages stored after it still age out.
    func test_restart_ttlNeverMessageStillOutlivesMaxAge() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"N\",\"subjects\":[\"n.>\"],\"allow_msg_ttl\":true,\"max_age\":300000000}")
        _ = h.publish("n.keep", "k", headers: [("Nats-TTL", "never")])
        _ = h.publish("n.go", "g")
        try h.restart()
        _ = h.publish("n.later", "l")
        var state: [String: Any] = [:]
        for _ in 0..<50 {
            usleep(100_000)
            state = h.streamState("N")
            if intValue(state, "messages") == 1 && intValue(state, "last_seq") == 3 { break }
        }
        XCTAssertEqual([intValue(state, "messages"), intValue(state, "first_seq"), intValue(state, "last_seq")], [1, 1, 3],
                       "only the never-expiring message is left: \(state)")
    }

    /// `Nats-Expected-Last-Msg-Id` is checked against the last stored message's id after a
    /// restart as before it: none when that message had none (the rebuild used to take the last
    /// id it found, so this publish was refused after a restart only).
    func test_restart_expectedLastMsgID_isTheLastMessagesID() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"E\",\"subjects\":[\"e\"]}")
        _ = h.publish("e", "1", headers: [("Nats-Msg-Id", "a")])
        _ = h.publish("e", "2")
        XCTAssertEqual(errCode(h.publish("e", "x", headers: [("Nats-Expected-Last-Msg-Id", "a")])), 10070, "live: the last message has no id")
        try h.restart()
        XCTAssertEqual(errCode(h.publish("e", "x", headers: [("Nats-Expected-Last-Msg-Id", "a")])), 10070, "after a restart too")
        XCTAssertNil(h.publish("e", "3", headers: [("Nats-Expected-Last-Msg-Id", ""), ("Nats-Msg-Id", "b")])["error"])
        try h.restart()
        XCTAssertNil(h.publish("e", "4", headers: [("Nats-Expected-Last-Msg-Id", "b")])["error"])
    }

    /// The last message's id outlives the message: deleted, then purged away, the stream
    /// still compares `Nats-Expected-Last-Msg-Id` with it after a restart, as while running.
    func test_restart_expectedLastMsgID_ofARemovedLastMessage() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"E\",\"subjects\":[\"e\"]}")
        _ = h.publish("e", "1", headers: [("Nats-Msg-Id", "a")])
        _ = h.publish("e", "2", headers: [("Nats-Msg-Id", "b")])
        XCTAssertEqual(h.api("STREAM.MSG.DELETE.E", "{\"seq\":2}")["success"] as? Bool, true)
        XCTAssertEqual(errCode(h.publish("e", "x", headers: [("Nats-Expected-Last-Msg-Id", "a")])), 10070, "live: b was the last id")
        try h.restart()
        XCTAssertEqual(errCode(h.publish("e", "x", headers: [("Nats-Expected-Last-Msg-Id", "a")])), 10070, "after a restart too")
        XCTAssertNil(h.publish("e", "3", headers: [("Nats-Expected-Last-Msg-Id", "b"), ("Nats-Msg-Id", "c")])["error"])
        XCTAssertEqual(h.api("STREAM.PURGE.E")["success"] as? Bool, true)
        try h.restart()
        XCTAssertEqual(errCode(h.publish("e", "x", headers: [("Nats-Expected-Last-Msg-Id", "b")])), 10070)
        XCTAssertNil(h.publish("e", "4", headers: [("Nats-Expected-Last-Msg-Id", "c")])["error"], "the purged last message's id")
        try h.restart()
        XCTAssertEqual(errCode(h.publish("e", "x", headers: [("Nats-Expected-Last-Msg-Id", "c")])), 10070,
                       "a later message (without an id) makes the written-down id stale")
    }

    /// A removal outside the API (here a TTL expiry) has the removed last message's id written
    /// with the next store sync, not only at a stop (clustered replicas: by the tick,
    /// `ClusteredJetStreamTests+Dedup`).
    func test_removedLastMsgID_isWrittenWithoutAStop() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"T\",\"subjects\":[\"t\"],\"allow_msg_ttl\":true}")
        _ = h.publish("t", "1", headers: [("Nats-Msg-Id", "a")])
        XCTAssertNil(h.publish("t", "2", headers: [("Nats-Msg-Id", "b"), ("Nats-TTL", "1s")])["error"])
        let dir = try XCTUnwrap(h.js.queue.sync { h.js.streams["T"]?.directory })
        let written = waitUntil(seconds: 10) {
            AtomicFile.read(dir + "/" + DedupSkews.fileName).flatMap(DedupSkews.decode)?.removedLast == .init(seq: 2, id: "b")
        }
        XCTAssertTrue(written, "\(String(describing: AtomicFile.read(dir + "/" + DedupSkews.fileName).flatMap(DedupSkews.decode)))")
    }

    func test_restart_memoryStreamIsGone_fileStreamConfigKept() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"M\",\"subjects\":[\"m\"],\"storage\":\"memory\"}")
        _ = h.createStream("{\"name\":\"F\",\"subjects\":[\"f\"],\"max_msgs\":7,\"description\":\"d\"}")
        try h.restart()
        XCTAssertEqual(errCode(h.api("STREAM.INFO.M")), 10059)
        let cfg = h.api("STREAM.INFO.F")["config"] as? [String: Any]
        XCTAssertEqual(cfg?["max_msgs"] as? Int, 7)
        XCTAssertEqual(cfg?["description"] as? String, "d")
    }

    func test_restart_kvHistoryAndDeleteMarkersSurvive() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"KV_b\",\"subjects\":[\"$KV.b.>\"],\"max_msgs_per_subject\":5,\"allow_rollup_hdrs\":true,\"deny_delete\":true,\"discard\":\"new\",\"allow_direct\":true}")
        _ = h.publish("$KV.b.k", "v1")
        _ = h.publish("$KV.b.k", "v2")
        _ = h.publish("$KV.b.k", "", headers: [("KV-Operation", "DEL")])
        try h.restart()
        let last = h.requestRaw("$JS.API.DIRECT.GET.KV_b.$KV.b.k", "")
        XCTAssertEqual(last?.header("KV-Operation"), "DEL")
        XCTAssertEqual(last?.header("Nats-Sequence"), "3")
        XCTAssertEqual(errCode(h.publish("$KV.b.k", "v3", headers: [("Nats-Expected-Last-Subject-Sequence", "2")])), 10071)
        XCTAssertNil(h.publish("$KV.b.k", "v3", headers: [("Nats-Expected-Last-Subject-Sequence", "3")])["error"])
    }

    /// The consumer record is written by `ConsumerRecord`, not JSONSerialization: what it writes
    /// must read back the same (pending list with delivery counts, a name that needs escaping).
    func test_restart_consumerRecordKeepsPendingListAndEscapedName() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        for i in 1...6 { _ = h.publish("s.\(i)", "m\(i)") }
        let name = "d\"q"
        let create = "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\\\"q\",\"ack_policy\":\"explicit\",\"ack_wait\":60000000000}}"
        XCTAssertNil(h.api("CONSUMER.DURABLE.CREATE.S.\(name)", create)["error"])
        let got = h.pull("S", name, "{\"batch\":5}", expect: 5)
        h.ack(got[1], sync: true)
        h.ack(got[3], sync: true)
        let record = try XCTUnwrap(AtomicFile.read(h.dir + "/jetstream/S/consumers/\(name).json"))
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(record)) as? [String: Any])
        XCTAssertEqual(o["name"] as? String, name)
        let state = try XCTUnwrap(o["state"] as? [String: Any])
        XCTAssertEqual((state["pending"] as? [[Int]])?.map { $0[0] }, [1, 3, 5])
        XCTAssertEqual(state["delivered_stream_seq"] as? Int, 5)

        try h.restart()

        let ci = h.api("CONSUMER.INFO.S.\(name)")
        XCTAssertEqual(ci["name"] as? String, name)
        XCTAssertEqual(intValue(ci, "num_ack_pending"), 3)
        XCTAssertEqual(intValue(ci, "num_pending"), 1)
        XCTAssertEqual((ci["config"] as? [String: Any])?["ack_wait"] as? Int, 60_000_000_000)
        XCTAssertEqual(h.pull("S", name, "{\"batch\":1}", expect: 1).first?.payload, "m6")
    }

    /// A consumer record past its stream's end (its store was trimmed to the Raft log after a
    /// power loss with `sync_interval`; the record had been fsync'd): the messages that take
    /// those sequences again are delivered. Before, the consumer waited for a sequence past its
    /// old cursor and delivered none of them.
    func test_restart_consumerPastTheStreamsEnd_resumesAtTheEnd() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        for i in 1...10 { _ = h.publish("s.x", "m\(i)") }
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\"}}")
        for m in h.pull("S", "d", "{\"batch\":10}", expect: 10) { h.ack(m, sync: true) }
        try h.restart {
            let log = try StreamLog.open(directory: h.dir + "/jetstream/S/msgs", config: StreamLogConfig())
            try log.truncate(after: StreamSequence(5))
            try log.close()
        }
        XCTAssertEqual(intValue(h.streamState("S"), "last_seq"), 5)
        for i in 6...8 { _ = h.publish("s.x", "n\(i)") }
        XCTAssertEqual(h.pull("S", "d", "{\"batch\":3}", expect: 3).map(\.payload), ["n6", "n7", "n8"])
    }
}
