import Foundation
import XCTest
@testable import ClusterServer

/// A stopping node hands its leaderships only to peers that stay: a peer whose route INFO says
/// it is stopping too (`ldm`, sent by `RouteManager.announceLeaving`, the first step of a
/// graceful stop) gets none, and with every peer stopping no transfer starts, so the stop does
/// not wait out one that cannot complete. Before, the most caught-up voter was chosen whatever
/// its state: with a whole cluster stopping at once each node waited the 2 s bound twice.
extension ClusteredJetStreamTests {
    func test_leadershipHandoff_skipsPeersThatAreStoppingToo() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "HAND")
        _ = try await publish(c1, "hand.1", "m1", id: "h1")
        let li = try await streamLeader(c1, "HAND")
        let others = nodes.indices.filter { $0 != li }
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "HAND") == [1, 1] } })

        nodes[others[0]].server.routeManager?.announceLeaving()
        XCTAssertTrue(waitUntil(seconds: 10) { self.leavingPeers(seenBy: li) == [self.nodes[others[0]].name] })
        XCTAssertEqual(successor(of: "HAND", on: li), nodes[others[1]].name, "the peer that stays")

        nodes[others[1]].server.routeManager?.announceLeaving()
        XCTAssertTrue(waitUntil(seconds: 10) { self.leavingPeers(seenBy: li).count == 2 })
        XCTAssertNil(successor(of: "HAND", on: li))
        let js = nodes[li].js
        let started = js.queue.sync { js.cluster?.handOffLeaderships() ?? [] }
        XCTAssertEqual(started, [], "no transfer to a stopping peer")
        XCTAssertTrue(js.queue.sync { js.cluster?.replicas["HAND"]?.isLeader == true })
    }

    private func leavingPeers(seenBy i: Int) -> Set<String> {
        nodes[i].server.routeManager?.peers(announcing: \.isLeaving) ?? []
    }

    /// The server `bestFollower` picks for `stream`'s group on node `i` (nil: none).
    private func successor(of stream: String, on i: Int) -> String? {
        let js = nodes[i].js
        return js.queue.sync {
            guard let c = js.cluster, let r = c.replicas[stream], let node = c.host.node(r.group) else { return nil }
            return c.bestFollower(node).flatMap { c.host.name(of: $0) }
        }
    }
}
