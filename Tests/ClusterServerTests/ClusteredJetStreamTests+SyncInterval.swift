import Foundation
import StreamLog
import XCTest
@testable import ClusterServer

/// The opt-in `jetstream { sync_interval }` (the nodes of tests named `…syncInterval…` run with
/// an hour): a stream's publishes are acknowledged once a quorum wrote them, and its Raft logs
/// are fsync'd by the periodic sync instead of before every acknowledgement.
extension ClusteredJetStreamTests {
    func test_syncInterval_acksOnAQuorumsWrite_thePeriodicSyncMakesItDurable() async throws {
        let fs = FaultyFileSystem()
        // Every node's Raft log of LAZY on one in-memory file system (the paths differ), without
        // preallocation: its zero-fills would fsync too.
        RaftStorageFactory.fileSystemHook = { d in d.hasSuffix("/LAZY/raft") ? fs : nil }
        RaftStorageFactory.preallocateBytesHook = 0
        defer { RaftStorageFactory.preallocateBytesHook = nil }
        let c1 = try await connect(0)
        try await createStream(c1, "LAZY")
        _ = try await publish(c1, "lazy.0", "first", id: "l0")
        // Elections and their term/vote syncs are over once the first publish is acknowledged.
        let before = fs.syncCount
        for i in 1...30 { _ = try await publish(c1, "lazy.\(i)", "m\(i)", id: "l\(i)") }
        XCTAssertEqual(fs.syncCount, before, "a Raft log was fsync'd behind the acknowledgements")
        XCTAssertTrue(nodes.indices.contains { unsynced($0, "LAZY") == true }, "nothing left for the periodic sync")
        // Every 0.5 s from here on.
        for n in nodes { n.js.queue.sync { n.js.cluster?.host.ackOnWriteSyncTicks = 5 } }
        XCTAssertTrue(waitUntil(seconds: 15) { self.nodes.indices.allSatisfy { self.unsynced($0, "LAZY") == false } },
                      "still unsynced: \(nodes.indices.map { unsynced($0, "LAZY") as Any })")
        XCTAssertGreaterThan(fs.syncCount, before)
        let info = try await api(c1, "$JS.API.STREAM.INFO.LAZY")
        XCTAssertEqual((info["state"] as? [String: Any])?["last_seq"] as? Int, 31)

        // A term or vote change still waits for its fsync: the election a stepdown starts syncs
        // although the periodic sync is an hour away again.
        for n in nodes { n.js.queue.sync { n.js.cluster?.host.ackOnWriteSyncTicks = 36_000 } }
        for i in 32...36 { _ = try await publish(c1, "lazy.\(i)", "m\(i)", id: "l\(i)") }
        let beforeElection = fs.syncCount
        _ = try await api(c1, "STREAM.LEADER.STEPDOWN.LAZY")
        XCTAssertTrue(waitUntil(seconds: 15) { fs.syncCount > beforeElection }, "the election's term and vote were not synced")
    }

    /// The meta group (stream and consumer assignments, membership) is not a stream: its
    /// writes wait for their fsync whatever `sync_interval` says, so a created stream's
    /// assignment is durable on every node long before the hourly sync.
    func test_syncInterval_theMetaGroupStillSyncsEveryWrite() async throws {
        let c1 = try await connect(0)
        for name in ["META1", "META2"] {
            try await createStream(c1, name)
            XCTAssertTrue(waitUntil(seconds: 15) { self.nodes.indices.allSatisfy { self.metaUnsynced($0) == false } },
                          "the meta log waits for the periodic sync: \(nodes.indices.map { metaUnsynced($0) as Any })")
        }
        for n in nodes {
            XCTAssertEqual(n.js.queue.sync { n.js.cluster?.host.ackOnWriteSyncTicks }, 36_000, "the nodes run with an hour")
        }
    }

    private func metaUnsynced(_ i: Int) -> Bool? {
        let js = nodes[i].js
        return js.queue.sync { js.cluster?.host.storage(of: JetStreamCluster.metaGroup)?.needsSync }
    }

    /// Whether node `i`'s Raft log of `stream` holds writes not yet fsync'd (nil: no replica).
    private func unsynced(_ i: Int, _ stream: String) -> Bool? {
        let js = nodes[i].js
        return js.queue.sync {
            guard let cluster = js.cluster, let r = cluster.replicas[stream] else { return nil }
            return cluster.host.storage(of: r.group)?.needsSync
        }
    }
}
