import Foundation
import XCTest
@testable import ClusterServer

/// The server's `jetstream { max_file_store, max_memory_store }`: limits of the node over every
/// account's JetStream (`NodeStoreUsage`), with nats-server's errors.
extension AccountJetStreamTests {
    private func errorStatus(_ o: [String: Any]) -> Int? { (o["error"] as? [String: Any])?["code"] as? Int }

    /// Publishes `payload` to `subject` until one is refused; returns how many were stored and
    /// the refusal (empty when all `tries` were stored).
    private func publishUntilRefused(_ account: String, _ subject: String, _ payload: String, tries: Int = 20) -> (Int, [String: Any]) {
        var stored = 0
        for _ in 0..<tries {
            let ack = request(account, subject, payload)
            if errCode(ack) != nil || ack.isEmpty { return (stored, ack) }
            stored += 1
        }
        return (stored, [:])
    }

    /// A stream create (subject: the name lowercased) retried while the account's meta group
    /// elects its first leader (no answer, or 10008); its error code, nil when created.
    private func createOnceTheMetaLeaderServes(_ account: String, _ name: String, extra: String) -> Int? {
        var code: Int? = 10008
        for _ in 0..<20 where code == 10008 || code == -1 {
            let r = createStream(account, name, subjects: "\"\(name.lowercased())\"", extra: extra)
            code = r.isEmpty ? -1 : errCode(r)
            if code == 10008 || code == -1 { usleep(200_000) }
        }
        return code
    }

    private func streamBytes(_ account: String, _ stream: String) -> Int? {
        ((api(account, "STREAM.INFO.\(stream)")["state"] as? [String: Any])?["bytes"] as? NSNumber)?.intValue
    }

    func testServerLimits_oneNode_refuseStreamsThatDoNotFit_andPublishesPastThem() throws {
        try boot("") { o in
            o.maxFileStore = 30_000
            o.maxMemoryStore = 5_000
        }
        // Reservations (max_bytes) against the limit, as nats-server's single node counts them.
        XCTAssertEqual(errCode(createStream("$G", "BIG", subjects: "\"big\"", extra: ",\"max_bytes\":30001")), 10047)
        XCTAssertEqual(errCode(createStream("$G", "MEM", subjects: "\"mem\"", extra: ",\"storage\":\"memory\",\"max_bytes\":5001")), 10028)
        XCTAssertNil(errCode(createStream("$G", "R", subjects: "\"r\"", extra: ",\"max_bytes\":20000")))
        XCTAssertEqual(errCode(createStream("$G", "R2", subjects: "\"r2\"", extra: ",\"max_bytes\":10001")), 10047)
        // An update counts the stream's new max_bytes instead of its old one.
        XCTAssertNil(errCode(api("$G", "STREAM.UPDATE.R", "{\"name\":\"R\",\"subjects\":[\"r\"],\"max_bytes\":30000}")))
        XCTAssertEqual(errCode(api("$G", "STREAM.UPDATE.R", "{\"name\":\"R\",\"subjects\":[\"r\"],\"max_bytes\":30001}")), 10047)
        XCTAssertEqual(errCode(createStream("$G", "R2", subjects: "\"r2\"", extra: ",\"max_bytes\":1")), 10047)
        XCTAssertNil(errCode(api("$G", "STREAM.DELETE.R")))
        // A stream without max_bytes reserves nothing; its publishes stop at the limit.
        XCTAssertNil(errCode(createStream("$G", "S", subjects: "\"s\"")))
        let payload = String(repeating: "x", count: 10_000)
        let (stored, refusal) = publishUntilRefused("$G", "s", payload)
        XCTAssertEqual(stored, 2, "each 10,000-byte message takes a little more than 10,000 bytes")
        XCTAssertEqual(errCode(refusal), 10023)
        XCTAssertEqual(errorStatus(refusal), 503)
        XCTAssertEqual((refusal["error"] as? [String: Any])?["description"] as? String, "insufficient resources")
        XCTAssertEqual(messages("$G", "S"), 2)
        XCTAssertLessThanOrEqual(streamBytes("$G", "S") ?? .max, 30_000)
        // Room again after a purge (the usage is recounted every 30 housekeeping ticks, 1.5 s).
        XCTAssertNil(errCode(api("$G", "STREAM.PURGE.S")))
        var again: Int? = 10023
        for _ in 0..<100 where again != nil {
            let ack = request("$G", "s", payload)
            again = ack.isEmpty ? -1 : errCode(ack)
            if again != nil { usleep(50_000) }
        }
        XCTAssertNil(again, "a publish after the purge")
        // The memory limit is its own: 5,000 bytes.
        XCTAssertNil(errCode(createStream("$G", "M", subjects: "\"m\"", extra: ",\"storage\":\"memory\"")))
        let (inMemory, memoryRefusal) = publishUntilRefused("$G", "m", String(repeating: "y", count: 2_000))
        XCTAssertEqual(inMemory, 2)
        XCTAssertEqual(errCode(memoryRefusal), 10023)
    }

    func testServerLimit_isSharedByEveryAccountOnTheNode() throws {
        try boot { o in o.maxFileStore = 25_000 }
        XCTAssertNil(errCode(createStream("A", "S", subjects: "\"s\"")))
        XCTAssertNil(errCode(createStream("B", "T", subjects: "\"t\"")))
        let payload = String(repeating: "x", count: 10_000)
        let (inA, _) = publishUntilRefused("A", "s", payload, tries: 2)
        XCTAssertEqual(inA, 2)
        // B's own limit (max_store 50000) has room; the node's does not.
        let refusal = request("B", "t", payload)
        XCTAssertEqual(errCode(refusal), 10023)
        XCTAssertEqual(messages("B", "T"), 0)
        // A's stream deleted: the room is B's.
        XCTAssertNil(errCode(api("A", "STREAM.DELETE.S")))
        XCTAssertEqual(intValue(request("B", "t", payload), "seq"), 1)
    }

    /// In a cluster the meta leader places a stream only where its max_bytes fits (10005
    /// otherwise, as nats-server); a publish is checked on the stream leader's node.
    func testServerLimit_inAClusterIsCheckedOnTheLeadersNode() throws {
        try boot { o in
            Self.oneNodeCluster(&o)
            o.maxFileStore = 25_000
        }
        XCTAssertEqual(createOnceTheMetaLeaderServes("A", "BIG", extra: ",\"max_bytes\":25001"), 10005, "no server has room for it")
        XCTAssertNil(errCode(createStream("A", "S", subjects: "\"s\"")))
        let (stored, refusal) = publishUntilRefused("A", "s", String(repeating: "x", count: 10_000))
        XCTAssertEqual(stored, 2)
        XCTAssertEqual(errCode(refusal), 10023)
        XCTAssertEqual(messages("A", "S"), 2)
    }

    /// Another account's reservations count in cluster placement: the meta leader reads what
    /// the node's limit leaves for its account (`NodeStoreUsage.room`), as nats-server counts
    /// every account's reservations on a server.
    func testServerLimit_inAClusterCountsTheOtherAccountsReservations() throws {
        try boot { o in
            Self.oneNodeCluster(&o)
            o.maxFileStore = 25_000
        }
        XCTAssertNil(createOnceTheMetaLeaderServes("A", "HALF", extra: ",\"max_bytes\":20000"), "A's stream was not created")
        // A's copy is reported at its service's next tick.
        let usage = server.jetStreamNodeUsage
        let b = try XCTUnwrap(js.services.first { $0.account.name == "B" })
        XCTAssertTrue(waitUntil(seconds: 5) { usage.room(.file, for: ObjectIdentifier(b)) == 5_000 }, "A's reservation was not reported")
        XCTAssertEqual(errCode(createStream("B", "T", subjects: "\"t\"", extra: ",\"max_bytes\":5001")), 10005,
                       "B's stream does not fit beside A's 20,000")
        XCTAssertNil(errCode(createStream("B", "T", subjects: "\"t\"", extra: ",\"max_bytes\":5000")))
        XCTAssertNil(errCode(api("A", "STREAM.DELETE.HALF")))
        XCTAssertTrue(waitUntil(seconds: 5) { usage.room(.file, for: ObjectIdentifier(b)) == 25_000 }, "A's removal was not reported")
        XCTAssertNil(errCode(createStream("B", "U", subjects: "\"u\"", extra: ",\"max_bytes\":20000")))
    }

    /// A reload (SIGHUP) applies new `max_file_store` / `max_memory_store` at once: raised,
    /// lowered (nats-server refuses a lower one), set where none was, or removed.
    func testServerLimits_changeOnReload() throws {
        try boot { o in o.maxFileStore = 15_000 }
        let payload = String(repeating: "x", count: 10_000)
        XCTAssertNil(errCode(createStream("A", "S", subjects: "\"s\"")))
        XCTAssertEqual(publishUntilRefused("A", "s", payload).0, 1)
        XCTAssertEqual(errCode(createStream("A", "BIG", subjects: "\"big\"", extra: ",\"max_bytes\":30000")), 10047)
        func reload(file: Int64, memory: Int64 = -1) throws {
            var o = server.options
            o.maxFileStore = file
            o.maxMemoryStore = memory
            XCTAssertEqual(try server.applyReload(o), [])
            XCTAssertEqual(server.options.maxFileStore, file)
        }
        try reload(file: 35_000)
        XCTAssertEqual(intValue(request("A", "s", payload), "seq"), 2)
        XCTAssertNil(errCode(createStream("A", "BIG", subjects: "\"big\"", extra: ",\"max_bytes\":20000")))
        XCTAssertNil(errCode(api("A", "STREAM.DELETE.BIG")))
        // Lowered below what is stored: nothing is removed, publishes are refused.
        try reload(file: 5_000)
        XCTAssertEqual(errCode(request("A", "s", "y")), 10023)
        XCTAssertEqual(messages("A", "S"), 2)
        try reload(file: -1)
        XCTAssertEqual(intValue(request("A", "s", payload), "seq"), 3)
        // Set again where none was: what the other accounts store counts (their reports come in
        // within a housekeeping tick).
        XCTAssertNil(errCode(createStream("B", "T", subjects: "\"t\"")))
        try reload(file: 40_000, memory: 1_000)
        let usage = server.jetStreamNodeUsage
        let outsider = NSObject()
        XCTAssertTrue(waitUntil(seconds: 5) {
            usage.publishRefusal(.file, adding: 10_000, for: ObjectIdentifier(outsider), own: 0) != nil
        }, "A's 30,000 bytes were not reported")
        XCTAssertEqual(errCode(request("B", "t", payload)), 10023, "A's 30,000 bytes count against the node's new 40,000")
        XCTAssertEqual(messages("B", "T"), 0)
        XCTAssertEqual(errCode(createStream("A", "M", subjects: "\"m\"", extra: ",\"storage\":\"memory\",\"max_bytes\":1001")), 10028)
        withExtendedLifetime(outsider) {}
    }

    /// A node that starts with more stored than its limits allow (lowered in the config, or
    /// a larger volume's data moved) starts and serves what it has; only new publishes are
    /// refused. nats-server can refuse to start there ("resource limits exceeded", #3520).
    func testServerLimits_belowWhatIsStoredAtStart_stillStarts() throws {
        try boot("")
        XCTAssertNil(errCode(createStream("$G", "S", subjects: "\"s\"", extra: ",\"max_bytes\":50000")))
        for i in 1...3 { XCTAssertEqual(intValue(request("$G", "s", String(repeating: "x", count: 10_000)), "seq"), i) }
        stop()
        try boot("") { o in o.maxFileStore = 15_000 }
        XCTAssertEqual(messages("$G", "S"), 3)
        XCTAssertEqual(errCode(request("$G", "s", "y")), 10023)
        XCTAssertEqual(errCode(createStream("$G", "T", subjects: "\"t\"", extra: ",\"max_bytes\":1")), 10047)
        XCTAssertNil(errCode(api("$G", "STREAM.PURGE.S")))
        var seq: Int?
        for _ in 0..<100 where seq == nil {
            seq = intValue(request("$G", "s", "y"), "seq")
            if seq == nil { usleep(50_000) }
        }
        XCTAssertEqual(seq, 4, "a publish once the purge made room")
    }
}
