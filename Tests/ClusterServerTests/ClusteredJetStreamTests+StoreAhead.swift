import Foundation
import NATSClient
import Raft
import StreamLog
import XCTest
@testable import ClusterServer

/// What a power loss with `sync_interval` can leave. A replica whose store holds entries its
/// Raft log lost (the store's pages reached the disk, the log's did not): an R3 replica lets
/// the store's extra messages go and catches up from the leader; an R1 stream's log continues
/// after its store (before, the store refused the log's next entries at indexes it already held
/// and the replica stopped for good). A replica that kept committed entries the quorum lost:
/// it copies the leader's stream (before, it stayed apart).
extension ClusteredJetStreamTests {
    func test_storeAheadOfItsLog_r3Replica_letsTheExtraGo_andCatchesUp() async throws {
        let writer = try await connect(0)
        try await createStream(writer, "AHEAD")
        for i in 1...20 { _ = try await publish(writer, "ahead.x", "v\(i)", id: "a\(i)") }
        // A follower other than node 0 (the writer's), holding all 20.
        let leader = try await streamLeader(writer, "AHEAD")
        let f = try XCTUnwrap((1..<3).first { $0 != leader })
        XCTAssertTrue(waitUntil(seconds: 15) { self.replicaState(f, "AHEAD") == [20, 20] })
        let dir = try XCTUnwrap(nodes[f].js.streamDirectory("AHEAD"))
        try restart(f) { try cutRaftLog(dir, by: 8) }
        for i in 21...25 { _ = try await publish(writer, "ahead.x", "v\(i)", id: "a\(i)") }
        XCTAssertTrue(waitUntil(seconds: 30) { self.replicaState(f, "AHEAD") == [25, 25] },
                      "the replica did not catch up: \(replicaState(f, "AHEAD"))")
        XCTAssertEqual(payloads(f, "AHEAD", 25), (1...25).map { "v\($0)" })
    }

    /// The power loss of every node: each log lost the last 8 entries, each store kept them.
    /// Every replica lets them go, and the publishes after take those sequences alike everywhere.
    func test_storeAheadOfItsLog_onEveryReplica_allLetTheExtraGo_andAgree() async throws {
        // The 8 entries cut include the stop's leadership handover: the kept count is measured.
        for d in try await twentyEverywhereThenStopAll("ALL") { try cutRaftLog(d, by: 8) }
        for i in nodes.indices { try startAgain(i) }
        let (kept, _) = try await keptThenFiveMore("ALL")
        assertAllAgree("ALL", kept: kept)
    }

    /// The power loss of every node, where one node (n1) kept its log and store
    /// and the other two lost their last 8 entries: those two elect a leader and write other
    /// messages at those indexes. The node that kept more finds the leader contradicting
    /// entries it had committed, copies the stream from the leader and ends up with the same
    /// messages. Before, it answered appends as holding the leader's entries and stayed apart.
    func test_committedEntriesTheQuorumLost_replicaCopiesTheLeadersStream() async throws {
        for d in try await twentyEverywhereThenStopAll("LOST").dropFirst() { try cutRaftLog(d, by: 8) }
        try startAgain(1)
        try startAgain(2)
        let (kept, writer) = try await keptThenFiveMore("LOST")
        try startAgain(0)
        assertAllAgree("LOST", kept: kept)
        // It follows again: a later publish reaches it too.
        _ = try await publish(writer, "lost.x", "after", id: "after")
        XCTAssertTrue(waitUntil(seconds: 15) { self.replicaState(0, "LOST") == [kept + 6, kept + 6] }, "\(replicaState(0, "LOST"))")
    }

    func test_storeAheadOfItsLog_r1Stream_logContinuesAfterTheStore() async throws {
        let c = try await connect(0)
        try await createStream(c, "SOLO", extra: #","num_replicas":1"#)
        for i in 1...10 { _ = try await publish(c, "solo.x", "v\(i)", id: "s\(i)") }
        let h = try await streamLeader(c, "SOLO")
        let dir = try XCTUnwrap(nodes[h].js.streamDirectory("SOLO"))
        try restart(h) { try cutRaftLog(dir, by: 4) }
        let c2 = try await connect(h == 0 ? 1 : 0)
        let seq = try await publish(c2, "solo.x", "v11", id: "s11")
        XCTAssertEqual(seq, 11)
        XCTAssertEqual(replicaState(h, "SOLO"), [11, 11])
        XCTAssertEqual(payloads(h, "SOLO", 11), (1...11).map { "v\($0)" })
    }

    /// Removes the last `n` entries of the Raft log in `streamDirectory` (its node stopped),
    /// durably, as a power loss would; the store keeps what it applied.
    private func cutRaftLog(_ streamDirectory: String, by n: UInt64) throws {
        let storage = try XCTUnwrap(try RaftStorageFactory.open(directory: streamDirectory + "/raft", ids: []))
        try storage.truncate(after: LogIndex(storage.lastIndex.rawValue - n))
        try storage.sync()
        storage.closeLog()
    }

    /// R3 `stream` with "v1"..."v20" on every replica, then every node stopped: the replicas'
    /// directories, by node.
    private func twentyEverywhereThenStopAll(_ stream: String) async throws -> [String] {
        let c = try await connect(0)
        try await createStream(c, stream)
        for i in 1...20 { _ = try await publish(c, "\(stream.lowercased()).x", "v\(i)", id: "a\(i)") }
        XCTAssertTrue(waitUntil(seconds: 15) { self.nodes.indices.allSatisfy { self.replicaState($0, stream) == [20, 20] } })
        await c.close()
        let dirs = try nodes.map { try XCTUnwrap($0.js.streamDirectory(stream)) }
        for n in nodes {
            n.server.shutdown()
            n.server.waitUntilShutdown()
        }
        return dirs
    }

    /// The messages node 1 kept of `stream` once its replica opened (fewer than 20), then
    /// "w1"..."w5" published through it: every replica must end with the same "v"s and "w"s.
    private func keptThenFiveMore(_ stream: String) async throws -> (kept: UInt64, writer: NATSConnection) {
        XCTAssertTrue(waitUntil(seconds: 15) { !self.replicaState(1, stream).isEmpty })
        let kept = replicaState(1, stream).last ?? 0
        XCTAssertLessThan(kept, 20)
        let c = try await connect(1)
        for i in 1...5 {
            let seq = try await publish(c, "\(stream.lowercased()).x", "w\(i)", id: "w\(i)")
            XCTAssertEqual(seq, kept + UInt64(i))
        }
        return (kept, c)
    }

    /// Every node's replica of `stream` holds "v1"..."v`kept`" then "w1"..."w5".
    private func assertAllAgree(_ stream: String, kept: UInt64) {
        let total = kept + 5
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, stream) == [total, total] } },
                      "\(nodes.indices.map { replicaState($0, stream) })")
        let expected = (1...kept).map { "v\($0)" } + (1...5).map { "w\($0)" }
        for i in nodes.indices { XCTAssertEqual(payloads(i, stream, total), expected, nodes[i].name) }
    }

    /// The payloads of node `i`'s replica of `stream`, sequences 1...`last` (read from its store).
    private func payloads(_ i: Int, _ stream: String, _ last: UInt64) -> [String] {
        let js = nodes[i].js
        return js.queue.sync {
            guard let store = js.cluster?.replicas[stream]?.stream.store else { return [] }
            return (1...last).map { seq in store.load(seq).map { String(decoding: $0.payload, as: UTF8.self) } ?? "-" }
        }
    }
}
