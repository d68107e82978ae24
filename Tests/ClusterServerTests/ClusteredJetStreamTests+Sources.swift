import NATSClient
import XCTest
@testable import ClusterServer

/// Stream sources in a cluster: the aggregate's leader proposes what its sources deliver as
/// sourced entries (tag 8), which a node of an older version could not decode.
extension ClusteredJetStreamTests {
    func test_sources_copyIntoEveryReplica() async throws {
        try await sourceThreeMessages(aggregateEndsAt: [3, 3], "every replica holds the three copies")
    }

    /// n3 announces itself as a version that cannot read sourced entries: the aggregate's
    /// sources wait (n3 would skip the entries and differ from the others by them).
    func test_sources_olderNode3InTheGroup_doNotRun_everyReplicaStaysTheSame() async throws {
        try await sourceThreeMessages(aggregateEndsAt: [0, 0], "nothing sourced on any replica")
    }

    /// Every replica, followers too, writes the sources' positions beside its store (so a
    /// replica that leads after a restart does not copy purged messages again).
    func test_sources_everyReplicaWritesThePositionsFile() async throws {
        try await sourceThreeMessages(aggregateEndsAt: [3, 3], "every replica holds the three copies")
        func position(_ i: Int) -> UInt64? {
            let js = nodes[i].js
            guard let dir = js.queue.sync(execute: { js.cluster?.replicas["AGG"]?.stream.directory }),
                  let bytes = FileManager.default.contents(atPath: dir + "/" + Stream.sourcesFileName),
                  let o = try? JSONObject.parse(Array(bytes), typeName: "sources") else { return nil }
            return try? o.uint64("ORIG > >")
        }
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { position($0) == 3 } },
                      "\(nodes.indices.map(position))")
    }

    /// An R3 origin with three messages and an R3 aggregate sourcing it; then
    /// `assertEveryReplica` of the aggregate.
    private func sourceThreeMessages(aggregateEndsAt state: [UInt64], _ what: String) async throws {
        let c1 = try await connect(1)
        try await createStream(c1, "ORIG")
        for i in 0..<3 { _ = try await publish(c1, "orig.x", "v\(i)", id: "m\(i)") }
        try await createStream(c1, "AGG", extra: #","sources":[{"name":"ORIG"}]"#)
        assertEveryReplica(of: "AGG", endsAt: state, what)
    }
}
