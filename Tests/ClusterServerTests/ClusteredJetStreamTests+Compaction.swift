import Foundation
import NATSClient
import Raft
import StreamLog
import XCTest
@testable import ClusterServer

/// Raft log compaction waits for the store's sync, which runs off the JetStream queue
/// (`StreamReplica+Compaction.swift`).
extension ClusteredJetStreamTests {
    /// n3's store is on an in-memory file system. Once n3 compacted its Raft log, a power loss
    /// of that file system must keep every message up to the compaction point: the log no
    /// longer has them. Compacting without waiting for the store's sync loses them (tried: the
    /// durable store held 3 of the 40).
    func test_compaction_followsTheStoreSync_soAPowerLossKeepsWhatTheLogDropped() async throws {
        let fs = FaultyFileSystem()
        try await withCompactingStream(node3Store: fs) { c1 in
            for i in 1...40 { _ = try await publish(c1, "cmp.\(i)", "m\(i)", id: "c\(i)") }
            let lastPublish = nodes[2].js.queue.sync { nodes[2].js.cluster?.replicas["CMP"]?.stream.store.lastRaftIndex ?? 0 }
            XCTAssertGreaterThan(lastPublish, 40)
            let compacted = try await compactPast(lastPublish, on: [2], "CMP", via: c1)
            XCTAssertTrue(compacted, "n3 did not compact")
            let dir = try XCTUnwrap(nodes[2].js.queue.sync { nodes[2].js.cluster?.replicas["CMP"]?.stream.directory })
            var rng = Raft.SplitMix64(seed: 3)
            fs.powerLoss(using: &rng, tear: false)
            let store = try StreamLog.open(directory: dir + "/msgs", fileSystem: fs, config: StreamLogConfig(fsync: .never))
            defer { try? store.close() }
            let durable = try store.messages(from: StreamSequence(1), maxMessages: 40).map(\.subject)
            XCTAssertEqual(durable, (1...40).map { "cmp.\($0)" }, "the Raft log no longer holds them")
        }
    }

    /// The store sync before a compaction fails on n3: its replica stops (as when a store
    /// write fails), and the others go on.
    func test_storeSyncFailingBeforeACompaction_stopsThatReplica() async throws {
        let fs = FaultyFileSystem()
        try await withCompactingStream(node3Store: fs) { c1 in
            try await leaderOffNode3(c1, "CMP")
            fs.failNext(.sync, count: 1_000)
            for i in 1...40 { _ = try await publish(c1, "cmp.\(i)", "m\(i)", id: "c\(i)") }
            XCTAssertTrue(waitUntil(seconds: 25) { self.storeStopped(2, "CMP") }, "n3's replica did not stop")
            XCTAssertGreaterThan(raftFirstIndex(0, "CMP"), 20, "n1 compacted")
            XCTAssertEqual(raftFirstIndex(2, "CMP"), 0, "n3's group is stopped")
            let next = try await publish(c1, "cmp.41", "m41", id: "c41")
            XCTAssertEqual(next, 41)
        }
    }

    /// A compaction renames the Raft log segments it drops, and the group's sync queue keeps up
    /// to four as spares and removes the rest (`StreamLog.removalJob`): no dropped one is left
    /// behind once every node compacted.
    func test_compaction_removesDroppedSegmentsOffTheQueue() async throws {
        RaftStorageFactory.segmentMaxBytesHook = 4096
        defer { RaftStorageFactory.segmentMaxBytesHook = nil }
        try await withCompactingStream(node3Store: FaultyFileSystem()) { c1 in
            let body = String(repeating: "z", count: 400)
            for i in 1...60 { _ = try await publish(c1, "cmp.\(i)", body, id: "c\(i)") }
            let lastPublish = nodes[0].js.queue.sync { nodes[0].js.cluster?.replicas["CMP"]?.stream.store.lastRaftIndex ?? 0 }
            let compacted = try await compactPast(lastPublish, on: [0, 1], "CMP", via: c1)
            XCTAssertTrue(compacted, "n1 and n2 did not compact")
            for i in 0...1 {
                let dir = try XCTUnwrap(nodes[i].js.queue.sync { nodes[i].js.cluster?.replicas["CMP"]?.stream.directory })
                let files = { (try? FileManager.default.contentsOfDirectory(atPath: dir + "/raft/log")) ?? [] }
                XCTAssertTrue(waitUntil(seconds: 10) { !files().contains { $0.hasSuffix(".dropped") } },
                              "n\(i + 1) keeps dropped segments: \(files().sorted())")
                XCTAssertLessThanOrEqual(files().filter { $0.hasSuffix(".seg") }.count, 2, "n\(i + 1): \(files().sorted())")
                XCTAssertLessThanOrEqual(files().filter { $0.hasSuffix(".spare") }.count, 4, "n\(i + 1): \(files().sorted())")
            }
        }
    }

    /// Spares no new tail took over for a whole round go (`RaftHost.releaseIdleSpares`): a log
    /// idle after a burst keeps none, and goes on without them.
    func test_idleLogs_letTheirSparesGo() async throws {
        RaftStorageFactory.segmentMaxBytesHook = 4096
        let savedTicks = JetStreamCluster.idleSpareTicks
        defer {
            RaftStorageFactory.segmentMaxBytesHook = nil
            JetStreamCluster.idleSpareTicks = savedTicks
        }
        try await withCompactingStream(node3Store: FaultyFileSystem()) { c1 in
            let body = String(repeating: "z", count: 400)
            for i in 1...60 { _ = try await publish(c1, "cmp.\(i)", body, id: "c\(i)") }
            let dirs = try (0...1).map { i in
                try XCTUnwrap(nodes[i].js.queue.sync { nodes[i].js.cluster?.replicas["CMP"]?.stream.directory }) + "/raft/log"
            }
            let spares = { (dir: String) in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".spare") } }
            XCTAssertTrue(waitUntil(seconds: 25) { dirs.allSatisfy { !spares($0).isEmpty } }, "no spares: \(dirs.map(spares))")
            JetStreamCluster.idleSpareTicks = 10 // rounds of 1 s from here on
            XCTAssertTrue(waitUntil(seconds: 15) { dirs.allSatisfy { spares($0).isEmpty } }, "spares kept: \(dirs.map(spares))")
            for i in 61...80 { _ = try await publish(c1, "cmp.\(i)", body, id: "c\(i)") }
            let info = try await api(c1, "$JS.API.STREAM.INFO.CMP")
            XCTAssertEqual((info["state"] as? [String: Any])?["last_seq"] as? Int, 80)
        }
    }

    /// Stream CMP (R3, created through n1) on nodes that compact Raft logs of more than 10
    /// entries, n3's store on `fs`.
    private func withCompactingStream(node3Store fs: FaultyFileSystem,
                                      _ body: (NATSConnection) async throws -> Void) async throws {
        let saved = JetStreamCluster.compactionThreshold
        JetStreamCluster.compactionThreshold = 10
        defer { JetStreamCluster.compactionThreshold = saved }
        nodes[2].js.queue.sync { nodes[2].js.fileSystemOverride = fs }
        let c1 = try await connect(0)
        try await createStream(c1, "CMP")
        try await body(c1)
    }

    /// n3's replica is wiped while n2 is down, and n1 restarts: n1 wins the election with n3's
    /// vote but leads the stream only once an entry of its term commits, which needs n3, which
    /// needs a copy of the stream (n1 compacted its log). The Raft leader serves that copy, so
    /// the stream comes back with two nodes. Before, the copy was refused ("not the stream
    /// leader") until n2 returned.
    func test_wipedReplicaWithTheOtherDown_getsItsCopyFromTheNewRaftLeader() async throws {
        let saved = JetStreamCluster.compactionThreshold
        JetStreamCluster.compactionThreshold = 10
        defer { JetStreamCluster.compactionThreshold = saved }
        let c1 = try await connect(0)
        try await createStream(c1, "WIPE")
        for i in 1...40 { _ = try await publish(c1, "wipe.\(i)", "m\(i)", id: "w\(i)") }
        // Compacted at all is enough (the wiped replica's empty log then needs a copy). Past the
        // last publish is not reliably reached: a compaction mid-burst can leave fewer entries
        // after it than the threshold (a CI run failed waiting for that).
        XCTAssertTrue(waitUntil(seconds: 25) { self.raftFirstIndex(0, "WIPE") > 1 }, "n1 did not compact")
        await c1.close()
        let n3Stream = try XCTUnwrap(nodes[2].js.streamDirectory("WIPE"))
        for n in nodes {
            n.server.shutdown()
            n.server.waitUntilShutdown()
        }
        nodes[1].running = false
        try FileManager.default.removeItem(atPath: n3Stream)
        for i in [0, 2] { try startAgain(i) }
        let c = try await connect(0)
        let seq = try await eventually(seconds: 30) { try await c.jsPublish("wipe.41", payload: "m41", msgId: "w41", timeout: .seconds(3)).seq }
        XCTAssertEqual(seq, 41)
        XCTAssertTrue(waitUntil(seconds: 15) { self.replicaState(2, "WIPE") == [41, 41] }, "\(replicaState(2, "WIPE"))")
    }

    /// Waits until nodes `ns` compacted their Raft logs of `stream` past `index`. The leader
    /// proposes a compaction every 2 s while the log holds more than the threshold; one in the
    /// middle of a burst can leave fewer entries after it, and then none follows (a CI run
    /// failed waiting for that). So after each 5 s without it, `compactionThreshold + 1` more
    /// messages (`<stream>.fill.*`) go in; five waits at most.
    func compactPast(_ index: UInt64, on ns: [Int], _ stream: String, via c: NATSConnection) async throws -> Bool {
        let prefix = stream.lowercased()
        for round in 0..<5 {
            if waitUntil(seconds: 5, { ns.allSatisfy { self.raftFirstIndex($0, stream) > index } }) { return true }
            if round == 4 { break }
            for k in 0...JetStreamCluster.compactionThreshold {
                _ = try await publish(c, "\(prefix).fill.\(round).\(k)", "f", id: "\(prefix)-fill-\(round)-\(k)")
            }
        }
        return false
    }

    /// The first index of node `i`'s Raft log of `stream` (0: no such group there).
    func raftFirstIndex(_ i: Int, _ stream: String) -> UInt64 {
        let js = nodes[i].js
        return js.queue.sync {
            guard let r = js.cluster?.replicas[stream], let node = js.cluster?.host.node(r.group) else { return 0 }
            return node.firstIndex.rawValue
        }
    }
}
