import NATSClient
import XCTest
@testable import ClusterServer

/// Interest and work-queue retention across replicas: a message the leader removed because
/// every interested consumer acknowledged it is removed on every replica, so a new leader does
/// not bring it back (before, followers kept every message such a stream ever stored).
extension ClusteredJetStreamTests {
    func test_workQueueAcks_removeTheMessages_onEveryReplica() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "JOBS", extra: #","retention":"workqueue""#)
        for i in 1...10 { _ = try await publish(c1, "jobs.\(i)", "j\(i)", id: "j\(i)") }
        try await createDurable(c1, "JOBS", "worker")
        let jobs = try await pullAcking(c1, "JOBS", "worker", count: 10).count
        XCTAssertEqual(jobs, 10)

        let removed = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "JOBS") == [0, 10] } }
        XCTAssertTrue(removed, "every replica removed the acked jobs: \(nodes.indices.map { replicaState($0, "JOBS") })")
        let before = try await eventually { try await api(c1, "STREAM.INFO.JOBS") }
        _ = try await eventually { try await api(c1, "STREAM.LEADER.STEPDOWN.JOBS") }
        let after = try await eventually { () async throws -> [String: Any] in
            let o = try await api(c1, "STREAM.INFO.JOBS")
            guard let l = cluster(o).leader, l != cluster(before).leader else { throw APIError(body: o) }
            return o
        }
        XCTAssertEqual((after["state"] as? [String: Any])?["messages"] as? Int, 0, "the new leader holds no acked job")
    }

    /// Followers run no consumers. They used to judge interest by themselves at apply, found
    /// none, and removed every message: after a leader change, an R3 interest stream had lost
    /// every message its consumers had not acknowledged yet.
    func test_interestRetention_removesOnEveryReplica_onlyOnceEveryConsumerAcked() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "FAN", extra: #","retention":"interest""#)
        for i in 1...2 { _ = try await publish(c1, "fan.\(i)", "nobody", id: "n\(i)") }
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FAN") == [0, 2] } },
                      "without consumers nothing is kept: \(nodes.indices.map { replicaState($0, "FAN") })")
        try await createDurable(c1, "FAN", "a")
        try await createDurable(c1, "FAN", "b")
        for i in 3...8 { _ = try await publish(c1, "fan.\(i)", "f\(i)", id: "f\(i)") }
        let byA = try await pullAcking(c1, "FAN", "a", count: 6).count
        XCTAssertEqual(byA, 6)
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FAN") == [6, 8] } },
                      "every replica keeps what b still needs: \(nodes.indices.map { replicaState($0, "FAN") })")
        // Give a wrong removal the time to spread (removals and records go out every 100 ms).
        XCTAssertFalse(waitUntil(seconds: 1) { self.nodes.indices.contains { self.replicaState($0, "FAN") != [6, 8] } },
                       "kept while b has not acked: \(nodes.indices.map { replicaState($0, "FAN") })")

        let before = try await eventually { try await api(c1, "STREAM.INFO.FAN") }
        _ = try await eventually { try await api(c1, "STREAM.LEADER.STEPDOWN.FAN") }
        _ = try await eventually { () async throws -> String in
            let o = try await api(c1, "STREAM.INFO.FAN")
            guard let l = cluster(o).leader, l != cluster(before).leader else { throw APIError(body: o) }
            return l
        }
        let byB = try await pullAcking(c1, "FAN", "b", count: 6)
        XCTAssertEqual(byB.map(\.1), (3...8).map { "f\($0)" }, "the new leader still holds what b had not acked")
        let removed = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FAN") == [0, 8] } }
        XCTAssertTrue(removed, "\(nodes.indices.map { replicaState($0, "FAN") })")
    }

    /// A work queue that holds one job at a time (discard new): each next job is published
    /// right after the previous one's plain ack. Every replica must judge it against the same
    /// messages. When the leader removed an acked job at once and its followers only when the
    /// removal entry applied, a job published in between was stored by the leader and refused
    /// as over the limit by the followers, and the copies' sequences diverged.
    func test_workQueueRemovals_applyAtTheSamePointOfTheLogEverywhere() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "ONE", extra: #","retention":"workqueue","discard":"new","max_msgs":1"#)
        try await createDurable(c1, "ONE", "worker")
        var stored: [UInt64] = []
        for i in 1...12 {
            var ack: JetStreamPubAck?
            for _ in 0..<50 where ack == nil {  // bounded: refused while the previous job is still held
                ack = try? await c1.jsPublish("one.job", payload: "job\(i)", timeout: .seconds(3))
                if ack == nil { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            stored.append(try XCTUnwrap(ack, "job \(i) never accepted").seq)
            let got = try await pullAcking(c1, "ONE", "worker", count: 1)
            XCTAssertEqual(got.map(\.1), ["job\(i)"])
        }
        let last = try XCTUnwrap(stored.last)
        let same = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "ONE") == [0, last] } }
        XCTAssertTrue(same, "stored at \(stored); replicas: \(nodes.indices.map { replicaState($0, "ONE") })")
    }

    func createDurable(_ c: NATSConnection, _ stream: String, _ name: String) async throws {
        _ = try await eventually {
            try await api(c, "CONSUMER.DURABLE.CREATE.\(stream).\(name)",
                          #"{"stream_name":"\#(stream)","config":{"durable_name":"\#(name)","ack_policy":"explicit"}}"#)
        }
    }

    /// Pulls `count` messages (bounded: at most 20 requests of 1 s) and acks each; their
    /// subjects and payloads in delivery order.
    func pullAcking(_ c: NATSConnection, _ stream: String, _ consumer: String, count: Int) async throws -> [(String, String)] {
        var got: [(String, String)] = []
        for _ in 0..<20 where got.count < count {
            let inbox = c.newInbox()
            let sub = try c.subscribe(inbox)
            try await c.flush()
            try await c.publish("$JS.API.CONSUMER.MSG.NEXT.\(stream).\(consumer)",
                                payload: #"{"batch":\#(count - got.count),"expires":1000000000}"#, reply: inbox)
            for await m in sub {
                if m.status != nil { break } // 408: the batch was not filled in time
                got.append((m.subject, String(buffer: m.payload)))
                if let reply = m.reply { try await c.publish(reply, payload: "+ACK") }
                if got.count == count { break }
            }
            try sub.unsubscribe()
        }
        try await c.flush()
        return got
    }

    /// An interest stream without consumers that holds at most one message (discard new): each
    /// publish is removed as nobody's, so every publish fits. When the leader removed it at
    /// apply and its followers a round later, a follower still held the previous one and
    /// refused the next as over the limit, and the copies' sequences diverged.
    func test_noInterestPublishes_areRemovedAtTheSamePointOfTheLogEverywhere() async throws {
        let (c1, c2) = (try await connect(0), try await connect(1))
        try await createStream(c1, "NOI", extra: #","retention":"interest","discard":"new","max_msgs":1"#)
        let acked = await publishConcurrently("noi.x", through: [c1, c2], publishers: 8, each: 15)
        XCTAssertEqual(acked, 120, "nothing is held, so nothing is over the limit")
        let agree = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "NOI") == [0, UInt64(acked)] } }
        XCTAssertTrue(agree, "every replica stored and removed each one: \(nodes.indices.map { replicaState($0, "NOI") })")
    }
}
