import Foundation
import Gossip
import NIOConcurrencyHelpers
import NIOCore
import XCTest
@testable import ClusterServer

/// Gossip over real route connections between in-process nodes (fast timers: 20 ms ticks,
/// 200 ms periods).
final class GossipClusterTests: XCTestCase {
    private let cluster = RouteCluster()

    override func tearDown() {
        cluster.stopAll()
    }

    private func start(_ name: String, routes: [Int] = []) throws -> NATSServer {
        try cluster.start(name: name, routes: routes) { o in
            o.gossipTickSeconds = 0.02
            o.gossipPeriodSeconds = 0.2
        }
    }

    /// Name -> state in `server`'s view, for the current boots of `of`.
    private func states(_ server: NATSServer, of: [NATSServer]) -> [String: String] {
        let ids = Set(of.map(\.serverID))
        var out: [String: String] = [:]
        for m in server.gossip!.members where ids.contains(m.serverID) { out[m.name] = m.status }
        return out
    }

    func test_gossip_node3SeededOnlyWithNode1_formsFullMesh_andEveryViewAgrees() throws {
        let n1 = try start("n1")
        let n2 = try start("n2", routes: [n1.routeManager!.port])
        let n3 = try start("n3", routes: [n1.routeManager!.port])
        cluster.waitForFullMesh()
        let all = [n1, n2, n3]
        XCTAssertTrue(waitUntil { all.allSatisfy { self.states($0, of: all) == ["n1": "alive", "n2": "alive", "n3": "alive"] } },
                      "views: \(all.map { self.states($0, of: all) })")
        // n3 had only n1: its route to n2 was asked for by gossip.
        XCTAssertTrue(n3.routeManager!.peerIDs.contains(n2.serverID))
        let (status, body) = try httpGet(port: n3.monitoringPort, path: "/routez")
        XCTAssertEqual(status, 200)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        let members = json["members"] as! [[String: Any]]
        XCTAssertEqual(Set(members.compactMap { $0["name"] as? String }), ["n1", "n2", "n3"])
        XCTAssertTrue(members.allSatisfy { $0["state"] as? String == "alive" })
        XCTAssertEqual(members.first { $0["name"] as? String == "n3" }?["self"] as? Bool, true)
        XCTAssertEqual(members.first { $0["name"] as? String == "n1" }?["server_id"] as? String, n1.serverID)
        XCTAssertEqual(members.first { $0["name"] as? String == "n2" }?["address"] as? String, "127.0.0.1:\(n2.routeManager!.port)")
        // Probes were answered: RTTs are reported once a probe of each peer completed.
        XCTAssertTrue(waitUntil { n3.gossip!.members.filter { !$0.isSelf }.allSatisfy { $0.rtt != nil } })
        let metrics = try httpGet(port: n3.monitoringPort, path: "/metrics").body
        XCTAssertTrue(metrics.contains("clusterd_gossip_members{state=\"alive\"} 3"), metrics)
        XCTAssertTrue(metrics.contains("clusterd_gossip_members{state=\"dead\"} 0"))
        XCTAssertTrue(metrics.contains("clusterd_gossip_rtt_seconds{name=\"n1\",server_id=\"\(n1.serverID)\"} "))
    }

    /// n2's route to n1 is up, and n1 has sent its join over it, before n2's gossip starts:
    /// that join found no handler on n2 and was dropped. n2 must still join over the route it
    /// found up at start, or neither node ever lists the other (as `GossipClusterTests` once
    /// failed in CI, views `[:]`).
    func test_gossip_startingAfterItsRoutesAreUp_stillJoinsOverThem() throws {
        let n1 = try start("n1")
        defer { NATSServer.gossipStartHook = nil }
        NATSServer.gossipStartHook = { server in
            guard server.serverName == "n2" else { return }
            _ = waitUntil(seconds: 10) { !(server.routeManager?.peerIDs.isEmpty ?? true) }
            Thread.sleep(forTimeInterval: 0.5) // n1's join arrives meanwhile and is dropped
        }
        let n2 = try start("n2", routes: [n1.routeManager!.port])
        NATSServer.gossipStartHook = nil
        XCTAssertTrue(waitUntil(seconds: 10) { self.states(n1, of: [n2]) == ["n2": "alive"] && self.states(n2, of: [n1]) == ["n1": "alive"] },
                      "n1 sees \(states(n1, of: [n2])), n2 sees \(states(n2, of: [n1]))")
    }

    func test_gossip_crashedNode_isDeclaredDeadByTheOthers_andObserversHearIt() throws {
        let n1 = try start("n1")
        let n2 = try start("n2", routes: [n1.routeManager!.port])
        let n3 = try start("n3", routes: [n1.routeManager!.port])
        let all = [n1, n2, n3]
        XCTAssertTrue(waitUntil { all.allSatisfy { self.states($0, of: all).values.allSatisfy { $0 == "alive" } && self.states($0, of: all).count == 3 } })
        let heard = NIOLockedValueBox<[String]>([])
        n1.gossip!.onMembershipChange { e in
            if e.member.token == n3.serverID { heard.withLockedValue { $0.append("\(e.status.rank)") } }
        }
        // A crash: no leave message, the routes just drop.
        n3.gossip!.stop(graceful: false)
        cluster.stop(n3)
        XCTAssertTrue(waitUntil(seconds: 15) { [n1, n2].allSatisfy { self.states($0, of: [n3]) == ["n3": "dead"] } },
                      "views: \([n1, n2].map { self.states($0, of: [n3]) })")
        XCTAssertEqual(heard.withLockedValue { $0 }.last, "2", "observer saw the death")
        XCTAssertTrue(heard.withLockedValue { $0 }.contains("1"), "suspected first")
        XCTAssertEqual(states(n1, of: [n1, n2]), ["n1": "alive", "n2": "alive"])
    }

    func test_gossip_gracefulStop_isSeenAsLeft() throws {
        let n1 = try start("n1")
        let n2 = try start("n2", routes: [n1.routeManager!.port])
        XCTAssertTrue(waitUntil { self.states(n1, of: [n2]) == ["n2": "alive"] })
        cluster.stop(n2)
        XCTAssertTrue(waitUntil { self.states(n1, of: [n2]) == ["n2": "left"] }, "\(states(n1, of: [n2]))")
    }

    func test_gossip_restartedNode_isANewMember_andTheOldBootIsDead() throws {
        let n1 = try start("n1")
        let port2 = freeLoopbackPort()
        let old = try cluster.start(name: "n2", clusterPort: port2, routes: [n1.routeManager!.port]) { o in
            o.gossipTickSeconds = 0.02
            o.gossipPeriodSeconds = 0.2
        }
        XCTAssertTrue(waitUntil { self.states(n1, of: [old]) == ["n2": "alive"] })
        old.gossip!.stop(graceful: false)
        cluster.stop(old)
        let new = try cluster.start(name: "n2", clusterPort: port2, routes: [n1.routeManager!.port]) { o in
            o.gossipTickSeconds = 0.02
            o.gossipPeriodSeconds = 0.2
        }
        func state(_ s: NATSServer) -> String? { n1.gossip!.members.first { $0.serverID == s.serverID }?.status }
        // The new boot retires the old one at once (same name and address), no suspicion wait.
        XCTAssertTrue(waitUntil { state(new) == "alive" && state(old) == "dead" }, "\(n1.gossip!.members)")
    }

    func test_gossip_reloadWithNewRoutes_joinsWithoutRestart() throws {
        let n1 = try start("n1")
        let n2 = try start("n2")
        XCTAssertTrue(n2.routeManager!.peerIDs.isEmpty)
        XCTAssertTrue(waitUntil { self.states(n2, of: [n2]) == ["n2": "alive"] }, "a lone node lists itself")
        var o = n2.options
        o.routes = ["nats://127.0.0.1:\(n1.routeManager!.port)"]
        XCTAssertEqual(n2.reload(o), [], "a route change needs no restart")
        cluster.waitForFullMesh()
        XCTAssertTrue(waitUntil { self.states(n1, of: [n1, n2]) == ["n1": "alive", "n2": "alive"] })
        XCTAssertEqual(n2.options.routes, o.routes)
        o.gossipPeriodSeconds = 5
        XCTAssertEqual(n2.reload(o), ["cluster gossip timing"], "timing is fixed at start")
        XCTAssertEqual(n2.options.gossipPeriodSeconds, 0.2)
    }

    func test_gossip_badFrames_areDroppedWithoutHarm() throws {
        let n1 = try start("n1")
        let n2 = try start("n2", routes: [n1.routeManager!.port])
        cluster.waitForFullMesh()
        var garbage = ByteBufferAllocator().buffer(capacity: 8)
        garbage.writeBytes([1, 1, 200, 7])
        XCTAssertTrue(n2.routeManager!.sendExtension(GossipDriver.namespace, payload: garbage, to: n1.serverID))
        // A well-formed frame that claims to come from a third server is refused too.
        let forged = GossipMessage(from: MemberID(name: "evil", address: "10.9.9.9:1", token: "EVIL"),
                                   incarnation: Incarnation(0), kind: .sync)
        var buf = ByteBufferAllocator().buffer(capacity: 64)
        buf.writeBytes(GossipCodec.encode(forged))
        XCTAssertTrue(n2.routeManager!.sendExtension(GossipDriver.namespace, payload: buf, to: n1.serverID))
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("claiming to be evil") })
        XCTAssertTrue(cluster.logs[0].contains("Gossip: dropping a bad frame"))
        XCTAssertFalse(n1.gossip!.members.contains { $0.name == "evil" })
        XCTAssertTrue(waitUntil { self.states(n1, of: [n1, n2]) == ["n1": "alive", "n2": "alive"] })
    }

    func test_discovery_splitsSeedsFromNames_andResolvesLocalhost() {
        let d = GossipDiscovery(routes: ["nats://10.0.0.1:6222", "nats-route://[::1]:6223", "nats://svc.ns:6222", "junk", "10.0.0.1:6222"])
        XCTAssertEqual(d.seeds, ["10.0.0.1:6222", "[::1]:6223"])
        XCTAssertEqual(d.names, [RouteURL(host: "svc.ns", port: 6222)])
        XCTAssertTrue(GossipDiscovery.resolve("localhost").contains { $0 == "127.0.0.1" || $0 == "::1" })
        XCTAssertEqual(GossipDiscovery.resolve("no-such-host.invalid"), [])
    }
}
