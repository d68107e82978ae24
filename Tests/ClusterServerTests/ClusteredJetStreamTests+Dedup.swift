import NATSClient
import XCTest
@testable import ClusterServer

/// `Nats-Msg-Id` dedup and `Nats-Expected-Last-Msg-Id` across replicas: whatever a replica
/// lost in a restart, every copy must judge the same publish the same way.
extension ClusteredJetStreamTests {
    /// A follower restarted within the duplicate window of a removed message rebuilds its window
    /// from the stored messages, so it lacks that message's id. A retry of the id used to be
    /// stored there while its peers answered a duplicate (the copies diverged by a message);
    /// the leader now answers it before proposing anything, and every replica stays the same.
    func test_restartedFollower_keepsTheSameMessages_whenARemovedMessagesIDIsRetried() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "DUP")
        let first = try await publish(c1, "dup.a", "one", id: "x")
        let second = try await publish(c1, "dup.a", "two", id: "y")
        XCTAssertEqual([first, second], [1, 2])
        _ = try await eventually { try await api(c1, "STREAM.MSG.DELETE.DUP", #"{"seq":1}"#) }
        let leader = try await restartAFollower(of: "DUP", via: c1, holding: [1, 2])

        let retry = try await eventually { try await c1.jsPublish("dup.a", payload: "one", msgId: "x", timeout: .seconds(3)) }
        XCTAssertEqual(retry.seq, 1)
        XCTAssertTrue(retry.duplicate, "the id of a removed message is still a duplicate inside the window")
        let third = try await publish(c1, "dup.a", "three", id: "z")
        XCTAssertEqual(third, 3)
        let same = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "DUP") == [2, 3] } }
        XCTAssertTrue(same, "every replica holds y and z at 2 and 3: \(nodes.indices.map { replicaState($0, "DUP") })")
        let li = try XCTUnwrap(nodes.firstIndex { $0.name == leader })
        let js = nodes[li].js
        let tags: [UInt8] = js.queue.sync {
            guard let r = js.cluster?.replicas["DUP"], let node = js.cluster?.host.node(r.group) else { return [] }
            return (node.entries(from: node.firstIndex, to: node.lastIndex.next) ?? []).compactMap(\.data.first)
        }
        XCTAssertTrue(tags.contains(StreamEntry.messageDecidedTag), "ids the leader found new go out decided: \(tags)")
    }

    /// Publishes with one `Nats-Msg-Id` in flight together: whichever way the leader decides
    /// each (a duplicate of its window, a decided entry, or an undecided one behind a decided
    /// one in flight), the message is stored once and every ack names its sequence.
    func test_sameIDsInFlightTogether_areStoredOnce_onEveryReplica() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "TWICE")
        _ = try await publish(c1, "twice.a", "warm", id: "w")
        for round in 0..<5 {
            async let a = c1.jsPublish("twice.a", payload: "p\(round)", msgId: "id\(round)", timeout: .seconds(5))
            async let b = c1.jsPublish("twice.a", payload: "p\(round)", msgId: "id\(round)", timeout: .seconds(5))
            async let c = c1.jsPublish("twice.a", payload: "p\(round)", msgId: "id\(round)", timeout: .seconds(5))
            let acks = try await [a, b, c]
            XCTAssertEqual(Set(acks.map(\.seq)), [UInt64(round + 2)], "round \(round): \(acks)")
            XCTAssertEqual(acks.filter(\.duplicate).count, 2, "round \(round)")
        }
        let same = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "TWICE") == [6, 6] } }
        XCTAssertTrue(same, "\(nodes.indices.map { replicaState($0, "TWICE") })")
    }

    /// The message at the last sequence is deleted, then a follower restarts: it must still
    /// compare `Nats-Expected-Last-Msg-Id` with that message's id, as its running peers do. It
    /// used to take the previous id in its window, refuse at apply what the others stored, and
    /// diverge from them by a message.
    func test_restartedFollower_judgesExpectedLastMsgID_likeItsPeers_afterTheLastMessageWasDeleted() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "ELM")
        _ = try await publish(c1, "elm.a", "one", id: "a")
        _ = try await publish(c1, "elm.a", "two", id: "b")
        _ = try await eventually { try await api(c1, "STREAM.MSG.DELETE.ELM", #"{"seq":2}"#) }
        // Written down by each replica's housekeeping tick, before any stop.
        let written = waitUntil(seconds: 30) {
            self.nodes.allSatisfy { n in
                let dir = n.js.queue.sync { n.js.streams["ELM"]?.directory }
                return dir.flatMap { AtomicFile.read($0 + "/" + DedupSkews.fileName) }.flatMap(DedupSkews.decode)?.removedLast
                    == .init(seq: 2, id: "b")
            }
        }
        XCTAssertTrue(written, "every replica wrote down the removed last message's id")
        _ = try await restartAFollower(of: "ELM", via: c1, holding: [1, 2])

        var expectB = NATSHeaders()
        expectB["Nats-Expected-Last-Msg-Id"] = "b"
        let ack = try await eventually { try await c1.jsPublish("elm.a", payload: "three", headers: expectB, timeout: .seconds(3)) }
        XCTAssertEqual(ack.seq, 3)
        let same = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "ELM") == [2, 3] } }
        XCTAssertTrue(same, "every replica stored it at 3: \(nodes.indices.map { replicaState($0, "ELM") })")
    }

    /// Restarts a follower of `stream` (not node 0, which `c` may be connected to) once it
    /// holds `state` ([messages, last sequence]), and waits until it holds it again. Returns
    /// the leader's name.
    private func restartAFollower(of stream: String, via c: NATSConnection, holding state: [UInt64]) async throws -> String {
        let leader = try await eventually { () async throws -> String in
            let o = try await api(c, "STREAM.INFO.\(stream)")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            return l
        }
        let follower = try XCTUnwrap(nodes.indices.first { nodes[$0].name != leader && $0 != 0 })
        XCTAssertTrue(waitUntil(seconds: 30) { self.replicaState(follower, stream) == state }, "\(replicaState(follower, stream))")
        try restart(follower)
        XCTAssertTrue(waitUntil(seconds: 30) { self.replicaState(follower, stream) == state }, "restarted: \(replicaState(follower, stream))")
        return leader
    }
}
