import Foundation
import NIOCore
import XCTest
@testable import ClusterServer

/// Hostile requests: every one gets an answer (an error object or a status), none crashes
/// the server, and the server keeps serving afterwards.
final class JetStreamBadInputTests: XCTestCase {
    func test_hostileBodies_onEveryEndpoint_getErrorsAndServerKeepsServing() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s.>\"]}")
        _ = h.publish("s.a", "x")
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\"}}")
        let big = "9223372036854775807"
        let bodies = [
            "{", "[]", "null", "\"x\"", "12", "{\"name\":[1,2]}", "{\"config\":\"x\"}",
            "{\"stream_name\":\"S\",\"config\":{\"ack_wait\":\(big),\"backoff\":[\(big)],\"max_deliver\":5}}",
            "{\"stream_name\":\"S\",\"config\":{\"ack_wait\":-5}}",
            "{\"stream_name\":\"S\",\"config\":{\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":18446744073709551615}}",
            "{\"name\":\"S\",\"first_seq\":18446744073709551615}", "{\"name\":\"S\",\"max_age\":-1}",
            "{\"name\":\"S\",\"subjects\":[\"a..b\"]}", "{\"name\":\"S\",\"subjects\":[\"\"]}",
            "{\"name\":\"S\",\"max_msgs\":1e300}", "{\"name\":\"S\",\"metadata\":{\"a\":1}}",
            "{\"seq\":-1}", "{\"seq\":1e40}", "{\"filter\":\"a..b\"}", "{\"keep\":1,\"seq\":2}",
            "{\"batch\":\(big),\"expires\":\(big)}", "{\"batch\":-3,\"max_bytes\":-1}",
        ]
        let endpoints = ["STREAM.CREATE.S", "STREAM.UPDATE.S", "STREAM.CREATE.a b", "STREAM.INFO.S", "STREAM.NAMES",
                         "STREAM.LIST", "STREAM.PURGE.S", "STREAM.MSG.GET.S", "STREAM.MSG.DELETE.S",
                         "CONSUMER.CREATE.S", "CONSUMER.CREATE.S.x", "CONSUMER.CREATE.S.x.s.>", "CONSUMER.DURABLE.CREATE.S.y",
                         "CONSUMER.NAMES.S", "CONSUMER.LIST.S", "CONSUMER.PAUSE.S.d", "STREAM.BOGUS", "CONSUMER.INFO.S"]
        for e in endpoints {
            for b in bodies where !e.contains(" ") || b == "{" {
                let r = h.requestRaw("$JS.API." + e, b, timeoutMs: 1000)
                XCTAssertNotNil(r, "\(e) \(b): no answer")
            }
        }
        for b in bodies {
            h.server.publishInternal(subject: "$JS.API.CONSUMER.MSG.NEXT.S.d", reply: "_T.pull", payload: ByteBuffer(string: b))
            h.server.publishInternal(subject: "$JS.ACK.S.d.1.1.1.1.0", payload: ByteBuffer(string: "-NAK " + b))
            h.server.publishInternal(subject: "$JS.ACK.S.d.x.y.z", payload: ByteBuffer(string: b))
        }
        usleep(300_000)
        XCTAssertEqual(h.api("INFO")["type"] as? String, "io.nats.jetstream.api.v1.account_info_response")
        XCTAssertEqual(intValue(h.streamState("S"), "messages"), 1)
    }

    /// An API flood over the backlog limit (5 here, 10,000 by default): what is queued is served
    /// once the queue moves again; each request over the limit is refused at once with
    /// 503/10008 naming the backlog (a pull with the 503 status), none is left unanswered.
    /// Before, every request joined the queue, however many.
    func test_apiRequestsOverTheBacklogLimit_areRefusedAtOnce_queuedOnesServed() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        h.js.apiBacklog = APIBacklog(limit: 5)
        let gate = DispatchSemaphore(value: 0)
        h.js.queue.async { gate.wait() }
        defer { gate.signal() }
        for i in 0..<8 {
            h.server.publishInternal(subject: "$JS.API.INFO", reply: "_T.info.\(i)", payload: ByteBuffer(string: ""))
        }
        h.server.publishInternal(subject: "$JS.API.CONSUMER.MSG.NEXT.S.d", reply: "_T.pull", payload: ByteBuffer(string: "{\"batch\":1}"))
        for i in 5..<8 {
            let r = h.wait("_T.info.\(i)")
            let o = r.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] }
            let e = o?["error"] as? [String: Any]
            XCTAssertEqual(e?["err_code"] as? Int, 10008, "request \(i): \(String(describing: o))")
            XCTAssertEqual(e?["description"] as? String, "JetStream system temporarily unavailable: this server has 5 API requests queued, retry")
            XCTAssertEqual(o?["type"] as? String, "io.nats.jetstream.api.v1.account_info_response")
        }
        XCTAssertEqual(h.wait("_T.pull").first?.status, "503")
        XCTAssertTrue((0..<5).allSatisfy { h.messages("_T.info.\($0)").isEmpty }, "answered while the queue was held")
        XCTAssertEqual(h.js.apiBacklog.waiting, 5)
        XCTAssertEqual(h.js.apiBacklog.refusedTotal, 4)
        gate.signal()
        for i in 0..<5 {
            let o = h.wait("_T.info.\(i)").first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] }
            XCTAssertNil(o?["error"], "request \(i): \(String(describing: o))")
            XCTAssertEqual(o?["type"] as? String, "io.nats.jetstream.api.v1.account_info_response")
        }
        XCTAssertEqual(h.js.apiBacklog.waiting, 0)
        XCTAssertEqual(h.api("INFO")["type"] as? String, "io.nats.jetstream.api.v1.account_info_response")
    }

    /// Publishes over the queue's bound (3 here; 100,000 or 128 MiB by default) while the queue
    /// is busy: each is refused at once with a 503/10008 error PubAck and not stored; the queued
    /// ones are stored and acknowledged once it moves. Before, every publish joined the queue.
    func test_publishesOverTheQueueBound_getAnErrorPubAck_queuedOnesStored() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"Q\",\"subjects\":[\"q.>\"]}")
        h.js.ingestMailbox = IngestMailbox(maxItems: 3, maxBytes: 1 << 20)
        let gate = DispatchSemaphore(value: 0)
        h.js.queue.async { gate.wait() }
        defer { gate.signal() }
        for i in 0..<5 {
            h.server.publishInternal(subject: "q.\(i)", reply: "_T.p.\(i)", payload: ByteBuffer(string: "m\(i)"))
        }
        h.server.publishInternal(subject: "q.none", payload: ByteBuffer(string: "no reply: dropped"))
        func decoded(_ i: Int) -> [String: Any]? {
            h.wait("_T.p.\(i)").first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.payload.utf8)) as? [String: Any] }
        }
        for i in 3..<5 {
            let e = decoded(i)?["error"] as? [String: Any]
            XCTAssertEqual(e?["err_code"] as? Int, 10008, "publish \(i)")
            XCTAssertEqual(e?["description"] as? String, "JetStream system temporarily unavailable: this server has too many publishes queued, retry")
        }
        XCTAssertTrue((0..<3).allSatisfy { h.messages("_T.p.\($0)").isEmpty }, "acknowledged while the queue was held")
        gate.signal()
        for i in 0..<3 {
            XCTAssertEqual(decoded(i)?["seq"] as? Int, i + 1, "publish \(i)")
        }
        XCTAssertEqual(intValue(h.streamState("Q"), "messages"), 3)
        XCTAssertEqual(h.publish("q.after", "x")["seq"] as? Int, 4, "the queue takes publishes again")
    }
}

final class JetStreamMonitoringTests: XCTestCase {
    func test_prometheusText_listsConsumerPendingCounts() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        _ = h.createStream("{\"name\":\"S\",\"subjects\":[\"s\"]}")
        for i in 0..<3 { _ = h.publish("s", "\(i)") }
        _ = h.api("CONSUMER.DURABLE.CREATE.S.d", "{\"stream_name\":\"S\",\"config\":{\"durable_name\":\"d\",\"ack_policy\":\"explicit\"}}")
        _ = h.pull("S", "d", "1", expect: 1)
        let text = h.js.prometheusText()
        XCTAssertTrue(text.contains("clusterd_jetstream_consumer_num_pending{stream=\"S\",consumer=\"d\"} 2\n"), text)
        XCTAssertTrue(text.contains("clusterd_jetstream_consumer_num_ack_pending{stream=\"S\",consumer=\"d\"} 1\n"), text)
        XCTAssertTrue(text.contains("clusterd_jetstream_stream_messages{stream=\"S\"} 3\n"), text)
    }
}

final class JetStreamDurabilityTests: XCTestCase {
    func test_publish_whenFsyncFails_getsErrorNotPubAck() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        let fs = FaultInjectingFileSystem()
        h.js.fileSystemOverride = fs
        _ = h.createStream("{\"name\":\"F\",\"subjects\":[\"f\"]}")
        XCTAssertEqual(h.publish("f", "ok")["seq"] as? Int, 1)
        fs.failNext(.sync, count: 100)
        let r = h.publish("f", "lost")
        XCTAssertNotNil(r["error"], "an fsync failure must not produce a positive PubAck: \(r)")
    }

    /// Opt-in `sync_interval`: publishes are acknowledged without an fsync each; the periodic
    /// sync makes them durable, and its failure is only logged (they were acknowledged).
    func test_syncInterval_acksWithoutAnFsyncEach_thePeriodicSyncCoversThem() throws {
        let h = try JSHarness { $0.jetStreamSyncIntervalSeconds = 3600 }
        defer { h.stop(); h.removeFiles() }
        let fs = FaultInjectingFileSystem()
        h.js.fileSystemOverride = fs
        _ = h.createStream("{\"name\":\"L\",\"subjects\":[\"l\"]}")
        let before = fs.syncCount
        for i in 1...20 { XCTAssertEqual(h.publish("l", "m\(i)")["seq"] as? Int, i) }
        XCTAssertEqual(fs.syncCount, before, "an fsync behind each acknowledgement")
        h.js.queue.sync { h.js.syncPeriodically() }
        XCTAssertGreaterThan(fs.syncCount, before)
        let synced = fs.syncCount
        h.js.queue.sync { h.js.syncPeriodically() }
        XCTAssertEqual(fs.syncCount, synced, "nothing new was written: nothing to sync")
        // Stores were opened with it: a reload keeps it and says a restart is needed.
        var o = h.server.options
        o.jetStreamSyncIntervalSeconds = nil
        XCTAssertEqual(h.server.reload(o), ["jetstream"])
        XCTAssertEqual(h.server.options.jetStreamSyncIntervalSeconds, 3600)
        fs.failNext(.sync, count: 100)
        XCTAssertEqual(h.publish("l", "acked")["seq"] as? Int, 21)
        h.js.queue.sync { h.js.syncPeriodically() }
        // The log no longer trusts its unsynced writes: later publishes are refused, not acked.
        let after = h.publish("l", "refused")
        XCTAssertNotNil(after["error"], "\(after)")
    }
}
