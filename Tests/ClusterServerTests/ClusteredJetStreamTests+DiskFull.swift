import Foundation
import NATSClient
import StreamLog
import XCTest
@testable import ClusterServer

/// A replica whose stream store runs out of space while its Raft log still takes entries (the
/// Raft log's tail is preallocated; the store's is not): a node-local failure, unlike a stream
/// limit, which every replica decides alike.
extension ClusteredJetStreamTests {
    /// Node 3's store is full for five publishes, then has space again. Its replica must end with
    /// the same messages at the same sequences as the others. Before, it refused those five at
    /// apply and went on: the next publish got sequence 6 there and 11 elsewhere.
    func test_storeOutOfSpaceOnAFollower_stopsItsReplica_untilItCanStoreInOrder() async throws {
        try await outOfSpaceOnAFollower(extra: "")
    }

    /// The same for a stream whose publishes are stored one by one (discard new: no batches).
    func test_storeOutOfSpaceOnAFollower_unbatchedPublishes_stopsItsReplica() async throws {
        try await outOfSpaceOnAFollower(extra: #","discard":"new","max_msgs":1000"#)
    }

    private func outOfSpaceOnAFollower(extra: String) async throws {
        let fs = FaultyFileSystem()
        nodes[2].js.queue.sync { nodes[2].js.fileSystemOverride = fs }
        let c1 = try await connect(0)
        try await createStream(c1, "FULL", extra: extra)
        for i in 1...5 { _ = try await publish(c1, "full.\(i)", "m\(i)", id: "f\(i)") }
        // n3 must follow: a leader whose store is full hands its leadership off by itself, which
        // is not what this test looks at.
        for _ in 0..<10 {
            let leader = try await streamLeader(c1, "FULL")
            if leader != 2 { break }
            _ = try? await api(c1, "STREAM.LEADER.STEPDOWN.FULL")
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        let leader = try await streamLeader(c1, "FULL")
        XCTAssertNotEqual(leader, 2)
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [5, 5] } })

        fs.spaceLimitBytes = 0
        for i in 6...10 { _ = try await publish(c1, "full.\(i)", "m\(i)", id: "f\(i)") }
        XCTAssertTrue(waitUntil(seconds: 10) { [0, 1].allSatisfy { self.replicaState($0, "FULL") == [10, 10] } })
        // Nothing from 6 on may be stored on n3 while 6 is missing there: its group stopped.
        let js3 = nodes[2].js
        let stopped = { js3.queue.sync { () -> Bool in
            guard let r = js3.cluster?.replicas["FULL"] else { return false }
            return r.storeFailure != nil && js3.cluster?.host.node(r.group) == nil
        } }
        XCTAssertTrue(waitUntil(seconds: 10) { stopped() }, "n3's replica did not stop")
        XCTAssertEqual(replicaState(2, "FULL"), [5, 5])

        fs.spaceLimitBytes = nil
        _ = try await publish(c1, "full.11", "m11", id: "f11")
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [11, 11] } },
                      "replicas \(nodes.indices.map { replicaState($0, "FULL") })")
        let subjects = nodes[2].js.queue.sync { () -> [String] in
            guard let s = nodes[2].js.cluster?.replicas["FULL"]?.stream else { return [] }
            return (1...11).map { s.store.load(UInt64($0))?.subject ?? "-" }
        }
        XCTAssertEqual(subjects, (1...11).map { "full.\($0)" })
    }
}
