import Foundation
import NATSClient
import XCTest
@testable import ClusterServer

/// The server's `max_file_store` in a cluster (tests named `…limitedNode3…`: n3 has 100,000
/// bytes): the meta leader places a stream only on servers where its `max_bytes` fits beside
/// what the streams there reserve (nats-server's 10005 otherwise), learning the others' limits
/// from their usage reports.
extension ClusteredJetStreamTests {
    /// The error code of a stream create or update (nil: it succeeded). Not `createStream`: it
    /// retries errors, and 10005 is the answer some of these expect.
    private func streamError(_ c: NATSConnection, _ op: String, _ name: String, replicas: Int, maxBytes: Int) async throws -> Int? {
        let body = #"{"name":"\#(name)","subjects":["\#(name.lowercased()).>"],"num_replicas":\#(replicas),"max_bytes":\#(maxBytes)}"#
        do {
            _ = try await api(c, "STREAM.\(op).\(name)", body)
            return nil
        } catch let e as APIError {
            return errCode(e.body)
        }
    }

    private func placementError(_ c: NATSConnection, _ name: String, replicas: Int, maxBytes: Int) async throws -> Int? {
        try await streamError(c, "CREATE", name, replicas: replicas, maxBytes: maxBytes)
    }

    private func updateError(_ c: NATSConnection, _ name: String, replicas: Int, maxBytes: Int) async throws -> Int? {
        try await streamError(c, "UPDATE", name, replicas: replicas, maxBytes: maxBytes)
    }

    func test_limitedNode3_streamsWhoseMaxBytesDoNotFitThere_areNotPlacedOnIt() async throws {
        // Every node's meta group knows n3's limit (its own, or from n3's usage reports).
        XCTAssertTrue(waitUntil(seconds: 10) {
            self.nodes.indices.allSatisfy { i in
                let js = self.nodes[i].js
                return js.queue.sync { i == 2 ? js.nodeUsage.maxFile : js.cluster?.remoteUsage.limit(of: "n3", .file) } == 100_000
            }
        }, "n3's limit was not reported")
        let c1 = try await connect(0)
        let wide = try await placementError(c1, "WIDE", replicas: 3, maxBytes: 200_000)
        XCTAssertEqual(wide, 10005)
        // R1 streams spread by load, but never onto n3 when they do not fit there.
        for i in 1...6 {
            let error = try await placementError(c1, "ONE\(i)", replicas: 1, maxBytes: 200_000)
            XCTAssertNil(error)
            let info = try await api(c1, "$JS.API.STREAM.INFO.ONE\(i)")
            // An R1 stream's one copy is its leader (`replicas` lists only the others).
            let leader = cluster(info).leader
            XCTAssertNotNil(leader)
            XCTAssertNotEqual(leader, "n3", "ONE\(i) was placed on n3")
        }
        // Reservations add up on n3: 60,000 + 40,000 fit its 100,000, one byte more does not.
        let first = try await placementError(c1, "R3A", replicas: 3, maxBytes: 60_000)
        let second = try await placementError(c1, "R3B", replicas: 3, maxBytes: 40_000)
        let third = try await placementError(c1, "R3C", replicas: 3, maxBytes: 1)
        XCTAssertEqual([first, second, third], [nil, nil, 10005])
        // An update may not take more than n3 has (its own old reservation replaced): 10047,
        // as nats-server; and a stream cannot grow onto n3 when it does not fit there.
        let tooLarge = try await updateError(c1, "R3A", replicas: 3, maxBytes: 60_001)
        let smaller = try await updateError(c1, "R3A", replicas: 3, maxBytes: 59_000)
        let larger = try await updateError(c1, "R3A", replicas: 3, maxBytes: 60_000)
        XCTAssertEqual([tooLarge, smaller, larger], [10047, nil, nil])
        let grown = try await updateError(c1, "ONE1", replicas: 3, maxBytes: 200_000)
        XCTAssertEqual(grown, 10074)
        // A stream without max_bytes reserves nothing and goes anywhere.
        let free = try await placementError(c1, "FREE", replicas: 3, maxBytes: -1)
        XCTAssertNil(free)
    }
}
