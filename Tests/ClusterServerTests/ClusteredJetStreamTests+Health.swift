import Foundation
import XCTest
@testable import ClusterServer

/// `/healthz` per stream (`JetStreamCluster.healthError`): a node is ready only when every
/// replicated stream with a replica on it is current, so a rolling restart waits for it.
extension ClusteredJetStreamTests {
    func test_healthz_everyReplicatedStreamMustBeCurrent_jsMetaOnlySkipsThem() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "HZ")
        _ = try await publish(c1, "hz.a", "one", id: "h1")
        func health(_ i: Int, _ query: [String: String] = [:]) -> String? {
            let js = nodes[i].js
            return js.queue.sync { () -> String? in
                guard let c = js.cluster else { return "no cluster" }
                return c.healthError(query)
            }
        }
        XCTAssertTrue(waitUntil(seconds: 30) { (0..<3).allSatisfy { health($0) == nil } },
                      "not every node healthy: \((0..<3).map { health($0) ?? "ok" })")
        // A follower's replica that has to be copied from its leader again: not current until
        // the copy is in. The same check without the streams (`js-meta-only`) passes.
        let leader = try await eventually { () async throws -> String in
            let o = try await api(c1, "STREAM.INFO.HZ")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            return l
        }
        let fi = try XCTUnwrap(nodes.indices.first { nodes[$0].name != leader })
        let js = nodes[fi].js
        let (full, metaOnly, serverOnly) = js.queue.sync { () -> (String?, String?, String?) in
            js.cluster?.replicas["HZ"]?.needsRepair = true
            return (js.cluster?.healthError([:]), js.cluster?.healthError(["js-meta-only": "true"]),
                    js.cluster?.healthError(["js-server-only": "true"]))
        }
        XCTAssertEqual(full, "JetStream stream '$G > HZ' is not current: stream catching up")
        XCTAssertNil(metaOnly)
        XCTAssertNil(serverOnly)
        XCTAssertTrue(waitUntil(seconds: 30) { health(fi) == nil }, "never current again: \(health(fi) ?? "ok")")
    }
}
