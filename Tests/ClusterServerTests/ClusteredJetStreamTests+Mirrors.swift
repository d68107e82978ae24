import NATSClient
import XCTest
@testable import ClusterServer

/// Stream mirrors in a cluster: the mirror's leader proposes what its origin delivers as
/// mirrored entries (tag 9), stored on every replica at the origin's sequence; a node of an
/// older version could not decode them.
extension ClusteredJetStreamTests {
    /// The origin's sequence 2 is deleted before the mirror starts: every replica of the
    /// mirror holds 3 messages up to sequence 4, then a fifth published later.
    func test_mirror_copiesAtTheOriginsSequences_intoEveryReplica() async throws {
        let c1 = try await mirrorOfFourWithAGap()
        assertEveryReplica(of: "MIR", endsAt: [3, 4], "sequences 1, 3 and 4, as the origin")
        _ = try await publish(c1, "orig.x", "v4", id: "m4")
        assertEveryReplica(of: "MIR", endsAt: [4, 5], "the later message at 5")
        let m = try await api(c1, "STREAM.MSG.GET.MIR", #"{"seq":3}"#)["message"] as? [String: Any]
        let o = try await api(c1, "STREAM.MSG.GET.ORIG", #"{"seq":3}"#)["message"] as? [String: Any]
        XCTAssertEqual(m?["data"] as? String, o?["data"] as? String)
        XCTAssertEqual(m?["time"] as? String, o?["time"] as? String, "the origin's time")
        XCTAssertEqual(m?["hdrs"] as? String, o?["hdrs"] as? String, "the headers as they are")
    }

    /// n3 announces it cannot read mirrored entries (and reads every other form): the mirror
    /// waits (n3 would skip the entries and differ from the others by them).
    func test_mirror_node3WithoutMirroredEntries_doesNotRun_everyReplicaStaysTheSame() async throws {
        _ = try await mirrorOfFourWithAGap()
        assertEveryReplica(of: "MIR", endsAt: [0, 0], "nothing mirrored on any replica")
    }

    /// n3 does not take `jsinternal` frames (an older clusterd): the mirror's consumer on the
    /// origin, a replica of which is on n3, is created through the API as before (listed on the
    /// origin) unless the mirror's leader leads the origin too (then it is created right there,
    /// the server's own), and the mirror copies all the same.
    func test_mirror_node3WithoutInternalFrames_createsItsConsumerThroughTheAPI() async throws {
        let c1 = try await mirrorOfFourWithAGap()
        assertEveryReplica(of: "MIR", endsAt: [3, 4], "mirrored on every replica")
        let leader = { (s: String) async throws -> String? in
            (try await self.api(c1, "STREAM.INFO.\(s)", "{}")["cluster"] as? [String: Any])?["leader"] as? String
        }
        let sameLeader = try await leader("ORIG") == leader("MIR")
        let names = try await api(c1, "CONSUMER.NAMES.ORIG", "{}")["consumers"] as? [String]
        XCTAssertEqual(names?.count, sameLeader ? 0 : 1, "listed only when created through the API")
    }

    /// An R3 origin with four messages, the second deleted, and an R3 mirror of it.
    private func mirrorOfFourWithAGap() async throws -> NATSConnection {
        let c1 = try await connect(1)
        try await createStream(c1, "ORIG")
        for i in 0..<4 { _ = try await publish(c1, "orig.x", "v\(i)", id: "m\(i)") }
        _ = try await eventually { try await self.api(c1, "STREAM.MSG.DELETE.ORIG", #"{"seq":2}"#) }
        _ = try await eventually {
            try await self.api(c1, "STREAM.CREATE.MIR", #"{"name":"MIR","num_replicas":3,"mirror":{"name":"ORIG"}}"#)
        }
        return c1
    }
}
