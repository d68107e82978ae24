import NATSClient
import XCTest
@testable import ClusterServer

/// Stream config updates take effect at the same point of the stream's log on every replica:
/// the limits they change decide at apply whether a publish is stored, so a replica that
/// applied an update at its own point of the meta log could store a publish its peers refused.
extension ClusteredJetStreamTests {
    /// The stream-log index each replica applied its last config update at, and its max_msgs.
    func configApplied(_ i: Int, _ stream: String) -> (at: UInt64?, maxMsgs: Int64)? {
        let js = nodes[i].js
        return js.queue.sync { js.cluster?.replicas[stream].map { ($0.configAppliedAt?.rawValue, $0.stream.config.maxMsgs) } }
    }

    func test_configUpdate_appliesAtTheSamePointOfTheStreamLog_onEveryReplica() async throws {
        let (c1, c2, c3) = (try await connect(0), try await connect(1), try await connect(2))
        try await createStream(c1, "CFG", extra: #","discard":"new","max_msgs":100"#)
        for i in 1...3 { _ = try await publish(c2, "cfg.\(i)", "m\(i)", id: "m\(i)") }

        let updated = try await eventually {
            try await api(c3, "STREAM.UPDATE.CFG", #"{"name":"CFG","subjects":["cfg.>"],"num_replicas":3,"discard":"new","max_msgs":4}"#)
        }
        XCTAssertEqual((updated["config"] as? [String: Any])?["max_msgs"] as? Int, 4, "the answer shows the committed config")
        let info = try await api(c2, "STREAM.INFO.CFG")
        XCTAssertEqual((info["config"] as? [String: Any])?["max_msgs"] as? Int, 4, "so does stream info, on any node")

        let sameIndex = waitUntil(seconds: 30) {
            let applied = self.nodes.indices.map { self.configApplied($0, "CFG") }
            guard let first = applied.first ?? nil, first.at != nil else { return false }
            return applied.allSatisfy { $0?.at == first.at && $0?.maxMsgs == 4 }
        }
        XCTAssertTrue(sameIndex, "every replica applied max_msgs 4 at one stream-log index: \(nodes.indices.map { configApplied($0, "CFG").map { "\($0)" } ?? "none" })")

        _ = try await publish(c2, "cfg.4", "m4", id: "m4")
        var refused: Error?
        do { _ = try await c3.jsPublish("cfg.5", payload: "m5", msgId: "m5", timeout: .seconds(3)) } catch { refused = error }
        XCTAssertNotNil(refused, "the fifth message is over the lowered limit")
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "CFG") == [4, 4] } },
                      "\(nodes.indices.map { replicaState($0, "CFG") })")
    }

    /// Publishes keep arriving through two nodes (eight in flight) while the limit is lowered to
    /// what the stream holds through the third: whichever publishes the log orders before the
    /// update are stored, the rest refused, and every replica ends with the same messages.
    func test_configUpdate_duringPublishes_leavesEveryReplicaTheSame() async throws {
        let (c1, c2, c3) = (try await connect(0), try await connect(1), try await connect(2))
        try await createStream(c1, "RACE", extra: #","discard":"new","max_msgs":1000"#)
        for i in 1...10 { _ = try await publish(c1, "race.x", "m\(i)", id: "w\(i)") }
        async let flood: Int = withTaskGroup(of: Int.self) { group in
            for p in 0..<8 {
                group.addTask {
                    var stored = 0
                    for i in 0..<40 {
                        let c = p % 2 == 0 ? c1 : c2
                        if (try? await c.jsPublish("race.x", payload: "p\(p).\(i)", timeout: .seconds(3))) != nil { stored += 1 }
                    }
                    return stored
                }
            }
            return await group.reduce(0, +)
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        _ = try await eventually {
            try await api(c3, "STREAM.UPDATE.RACE", #"{"name":"RACE","subjects":["race.>"],"num_replicas":3,"discard":"new","max_msgs":10}"#)
        }
        let stored = await flood
        let agree = waitUntil(seconds: 30) {
            let states = self.nodes.indices.map { self.replicaState($0, "RACE") }
            return states.allSatisfy { $0 == states[0] && !$0.isEmpty }
        }
        XCTAssertTrue(agree, "replicas agree: \(nodes.indices.map { replicaState($0, "RACE") })")
        XCTAssertEqual(replicaState(0, "RACE").last, UInt64(10 + stored), "every acknowledged publish is stored, nothing else")
    }
}
