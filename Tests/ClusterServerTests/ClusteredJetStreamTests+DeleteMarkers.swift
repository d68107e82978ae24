import NATSClient
import XCTest
@testable import ClusterServer

/// Subject delete markers in a cluster: the stream leader proposes them, so every replica stores
/// the same ones at the same sequences (`Stream+DeleteMarkers.swift`).
extension ClusteredJetStreamTests {
    func test_deleteMarkers_areTheSameOnEveryReplica_andAnAgedMarkerLeavesNone() async throws {
        // Three messages, a marker for each emptied subject (4 and 5), then max_age removes
        // the markers too.
        try await expireThreeMessages(everyReplicaEndsAt: [0, 5], "an aged marker leaves no marker")
    }

    /// n3 announces itself as a version that cannot read marker entries: the leader writes none
    /// (n3 would skip them and differ from the others by them), wherever the leader is.
    func test_deleteMarkers_olderNode3InTheGroup_areNotWritten_everyReplicaStaysTheSame() async throws {
        try await expireThreeMessages(everyReplicaEndsAt: [0, 3], "no marker on any replica")
    }

    /// An R3 stream with max_age 1 s and markers, three messages on two subjects; then
    /// `assertEveryReplica`.
    private func expireThreeMessages(everyReplicaEndsAt state: [UInt64], _ what: String) async throws {
        let c1 = try await connect(1)
        try await createStream(c1, "SDM", extra: #","max_age":1000000000,"subject_delete_marker_ttl":60000000000"#)
        for (i, s) in ["sdm.a", "sdm.a", "sdm.b"].enumerated() { _ = try await publish(c1, s, "v\(i)", id: "m\(i)") }
        assertEveryReplica(of: "SDM", endsAt: state, what)
    }

    /// Waits until every replica of `stream` shows `state` ([messages, last sequence]) and
    /// checks it stays so for 2 s.
    func assertEveryReplica(of stream: String, endsAt state: [UInt64], _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        let done = waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, stream) == state } }
        XCTAssertTrue(done, "\(nodes.indices.map { replicaState($0, stream) })", file: file, line: line)
        XCTAssertFalse(waitUntil(seconds: 2) { self.nodes.indices.contains { self.replicaState($0, stream) != state } },
                       "\(what): \(nodes.indices.map { replicaState($0, stream) })", file: file, line: line)
    }
}
