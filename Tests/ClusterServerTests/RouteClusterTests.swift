import Foundation
import NIOCore
import NIOConcurrencyHelpers
import XCTest
@testable import ClusterServer

final class RouteClusterTests: XCTestCase {
    private let cluster = RouteCluster()

    override func tearDown() {
        cluster.stopAll()
    }

    private func client(_ server: NATSServer,
                        _ connect: String = "{\"verbose\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1}") throws -> RawClient {
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT \(connect)\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"), "no PONG after CONNECT: \(c.text)")
        c.clear()
        return c
    }

    private func sync(_ c: RawClient) {
        let before = c.count(of: "PONG\r\n")
        c.send("PING\r\n")
        XCTAssertTrue(c.waitForCount("PONG\r\n", before + 1), "no PONG: \(c.text.suffix(200))")
    }

    /// Three nodes: n2 seeds n1, n3 seeds n1 and n2.
    @discardableResult
    private func threeNodes() throws -> (NATSServer, NATSServer, NATSServer) {
        let n1 = try cluster.start(name: "n1")
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port])
        let n3 = try cluster.start(name: "n3", routes: [n1.routeManager!.port, n2.routeManager!.port])
        cluster.waitForFullMesh()
        return (n1, n2, n3)
    }

    private func waitForInterest(_ subject: String, on servers: [NATSServer], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(waitUntil { servers.allSatisfy { $0.hasInterest(subject) } }, "no interest in \(subject)", file: file, line: line)
    }

    private func outMsgs(from a: NATSServer, to b: NATSServer) -> Int {
        a.routeManager!.snapshots(includeSubscriptions: false).first { $0.remoteID == b.serverID }?.outMsgs ?? -1
    }

    // MARK: - mesh

    func test_mesh_threeSeededNodes_formOneRoutePerPairAndReportRoutez() throws {
        let (n1, n2, n3) = try threeNodes()
        // Duplicates (n3 dials n2 while n2 may learn n3 by gossip) settle to one route each.
        XCTAssertTrue(waitUntil { self.cluster.nodes.allSatisfy { $0.routeManager!.snapshots(includeSubscriptions: false).count == 2 } })
        let (status, body) = try httpGet(port: n1.monitoringPort, path: "/routez?subs=1")
        XCTAssertEqual(status, 200)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        XCTAssertEqual(json["num_routes"] as? Int, 2)
        let routes = json["routes"] as! [[String: Any]]
        XCTAssertEqual(Set(routes.compactMap { $0["remote_id"] as? String }), [n2.serverID, n3.serverID])
        XCTAssertEqual(Set(routes.compactMap { $0["remote_name"] as? String }), ["n2", "n3"])
        for r in routes {
            XCTAssertNotNil(r["rid"] as? Int)
            XCTAssertNotNil(r["did_solicit"] as? Bool)
            XCTAssertEqual(r["ip"] as? String, "127.0.0.1")
            XCTAssertNotNil(r["subscriptions_list"] as? [String])
        }
        let varz = try JSONSerialization.jsonObject(with: Data(try httpGet(port: n1.monitoringPort, path: "/varz").body.utf8)) as! [String: Any]
        XCTAssertEqual(varz["routes"] as? Int, 2)
        let block = varz["cluster"] as! [String: Any]
        XCTAssertEqual(block["name"] as? String, "test")
        XCTAssertEqual(block["cluster_port"] as? Int, n1.routeManager!.port)
    }

    func test_mesh_nodesSeededOnlyWithNode1_learnEachOtherByGossip() throws {
        let n1 = try cluster.start(name: "n1")
        let seed = n1.routeManager!.port
        let n2 = try cluster.start(name: "n2", routes: [seed])
        let n3 = try cluster.start(name: "n3", routes: [seed])
        cluster.waitForFullMesh()
        XCTAssertEqual(Set(n2.routeManager!.peerIDs), [n1.serverID, n3.serverID])
        // And traffic flows on the gossiped n2-n3 route.
        let sub = try client(n3)
        sub.send("SUB gossip.x 1\r\n")
        sync(sub)
        waitForInterest("gossip.x", on: [n2])
        let pub = try client(n2)
        pub.send("PUB gossip.x 2\r\nok\r\n")
        XCTAssertTrue(sub.waitFor("MSG gossip.x 1 2\r\nok\r\n"))
    }

    func test_mesh_everyNodeSeededWithAllIncludingItself_settlesToOneRoutePerPair() throws {
        // The Kubernetes shape: the same route list (self included) on every node, all dialing
        // at once. Self-routes are dropped, crossed dials collapse to one route per pair.
        let ports = (0..<3).map { _ in freeLoopbackPort() }
        for (i, p) in ports.enumerated() { try cluster.start(name: "n\(i + 1)", clusterPort: p, routes: ports) }
        cluster.waitForFullMesh()
        XCTAssertTrue(waitUntil {
            self.cluster.nodes.allSatisfy { $0.routeManager!.snapshots(includeSubscriptions: false).count == 2 }
        })
        usleep(300_000)
        XCTAssertTrue(cluster.isFullMesh, "mesh stays formed (no duplicate-close churn)")
        let sub = try client(cluster.nodes[2])
        sub.send("SUB all.seeded 1\r\n")
        sync(sub)
        waitForInterest("all.seeded", on: cluster.nodes)
        let pub = try client(cluster.nodes[0])
        pub.send("PUB all.seeded 1\r\nx\r\nPUB all.seeded 1\r\ny\r\n")
        XCTAssertTrue(sub.waitFor("MSG all.seeded 1 1\r\ny\r\n"))
        XCTAssertEqual(sub.count(of: "MSG all.seeded"), 2, "no duplicates through a second route")
    }

    func test_peerDialedUsWhileOurDialFailed_ourRetryParks_insteadOfADuplicateRoute() throws {
        // n1's configured route is n2's advertised address, where nothing listens: n1's dials
        // fail and are retried. Once n2's own route to n1 is up, a retry must not dial n2 again:
        // with real listeners that second route replaced the first by the tie-break and lost
        // what was in flight on it (a request crossing a cluster that had just formed).
        let advertised = freeLoopbackPort()
        let n1 = try cluster.start(name: "n1", routes: [advertised], logLevel: .debug)
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("Error trying to connect to route") })
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port], logLevel: .debug) {
            $0.clusterAdvertise = RouteURL(host: "127.0.0.1", port: advertised)
        }
        XCTAssertTrue(waitUntil { n1.routeManager!.peerIDs == [n2.serverID] })
        XCTAssertTrue(waitUntil(seconds: 10) {
            self.cluster.logs[0].contains("Route to \(n2.serverID) is up already, not dialing nats-route://127.0.0.1:\(advertised)")
        }, "n1 kept dialing n2's advertised address")
        XCTAssertEqual(n1.routeManager!.peerIDs, [n2.serverID])
    }

    func test_dialByNameReachingAPeerWhoseRouteIsUp_closesItUnused_insteadOfADuplicateRoute() throws {
        // The Kubernetes shape: a route configured by DNS name while the peer advertises its IP
        // address, so the name alone does not tell the dialer the route is up already. n2's
        // route to n1 is up, then n1 is told to dial n2 by a name (mapped to loopback, as
        // CLUSTERD_HOSTS_FILE does): the dial reaches n2's advertised address and must be
        // closed before its INFO instead of becoming a duplicate that may replace the route in use.
        let p2 = freeLoopbackPort()
        let n1 = try cluster.start(name: "n1", logLevel: .debug) {
            $0.routeHostOverrides = ["n2.route.invalid": "127.0.0.1"]
        }
        let n2 = try cluster.start(name: "n2", clusterPort: p2, routes: [n1.routeManager!.port], logLevel: .debug)
        XCTAssertTrue(waitUntil { n1.routeManager!.peerIDs == [n2.serverID] })
        let rid = n1.routeManager!.snapshots(includeSubscriptions: false).map(\.rid)
        n1.routeManager!.setConfiguredRoutes(["nats://n2.route.invalid:\(p2)"])
        XCTAssertTrue(waitUntil(seconds: 10) {
            self.cluster.logs[0].contains("Route to \(n2.serverID) is up already at 127.0.0.1:\(p2), closing the new connection to nats-route://n2.route.invalid:\(p2)/")
        }, "n1's dial by name was not closed unused: \(cluster.logs[0].text.suffix(1500))")
        XCTAssertEqual(n1.routeManager!.snapshots(includeSubscriptions: false).map(\.rid), rid, "the route in use stays")
        for log in cluster.logs {
            XCTAssertFalse(log.contains("Duplicate route"), log.text.suffix(1500).description)
            XCTAssertFalse(log.contains("Replaced by"), log.text.suffix(1500).description)
        }
    }

    // MARK: - route authorization

    private static let routeAuth = RouteAuth(user: "ruser", password: "s3cret")

    func test_routeAuthorization_meshFormsWithCredentials_gossipedRoutesUseTheClustersOwn() throws {
        let n1 = try cluster.start(name: "n1") { $0.clusterAuth = Self.routeAuth }
        let seed = "nats://ruser:s3cret@127.0.0.1:\(n1.routeManager!.port)"
        let n2 = try cluster.start(name: "n2") { $0.clusterAuth = Self.routeAuth; $0.routes = [seed] }
        // n3 knows n1 only: its route to n2 (or n2's to it) is learned by gossip, without a URL
        // that names credentials.
        let n3 = try cluster.start(name: "n3") { $0.clusterAuth = Self.routeAuth; $0.routes = [seed] }
        cluster.waitForFullMesh()
        XCTAssertEqual(Set(n3.routeManager!.peerIDs), [n1.serverID, n2.serverID])
        let info = try RawClient(port: n1.routeManager!.port)
        XCTAssertTrue(info.waitFor("\r\n"))
        XCTAssertTrue(info.text.contains("\"auth_required\":true"), info.text)
        for log in cluster.logs { XCTAssertFalse(log.contains("authentication error"), log.text.suffix(1500).description) }
    }

    func test_routeAuthorization_bcryptPassword_checkedOffTheEventLoop_routeStillForms() throws {
        let hash = Bcrypt.hash("s3cret", salt: Array(repeating: 7, count: 16), cost: 4)
        let n1 = try cluster.start(name: "n1") { $0.clusterAuth = RouteAuth(user: "ruser", password: hash) }
        // CONNECT and INFO arrive in one read: the INFO waits for the check, then completes
        // the handshake.
        let n2 = try cluster.start(name: "n2") { $0.routes = ["nats://ruser:s3cret@127.0.0.1:\(n1.routeManager!.port)"] }
        XCTAssertTrue(waitUntil { n1.routeManager!.peerIDs == [n2.serverID] && n2.routeManager!.peerIDs == [n1.serverID] })
    }

    func test_routeAuthorization_wrongOrMissingCredentials_refusedWithAuthorizationViolation() throws {
        let n1 = try cluster.start(name: "n1") { $0.clusterAuth = Self.routeAuth }
        let port = n1.routeManager!.port
        let n2 = try cluster.start(name: "n2") { $0.routes = ["nats://ruser:wrong@127.0.0.1:\(port)"] }
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("authentication error - User \"ruser\"") }, cluster.logs[0].text.suffix(1500).description)
        XCTAssertTrue(waitUntil { self.cluster.logs[1].contains("Route Error 'Authorization Violation'") }, cluster.logs[1].text.suffix(1500).description)
        XCTAssertEqual(n1.routeManager!.peerIDs, [])
        XCTAssertEqual(n2.routeManager!.peerIDs, [])
        // A raw peer: an INFO before any CONNECT, a CONNECT without credentials.
        for first in ["INFO {\"server_id\":\"XYZ\",\"cluster\":\"test\"}\r\n",
                      "CONNECT {\"name\":\"XYZ\",\"cluster\":\"test\"}\r\nINFO {\"server_id\":\"XYZ\",\"cluster\":\"test\"}\r\n"] {
            let c = try RawClient(port: port)
            XCTAssertTrue(c.waitFor("\r\n"))
            c.send(first)
            XCTAssertTrue(c.waitFor("-ERR 'Authorization Violation'\r\n"), c.text)
            XCTAssertTrue(c.waitForClose())
        }
        XCTAssertEqual(n1.routeManager!.peerIDs, [])
    }

    func test_routeAuthorization_silentPeer_getsAuthenticationTimeout() throws {
        let n1 = try cluster.start(name: "n1") { $0.clusterAuth = RouteAuth(user: "ruser", password: "s3cret", timeoutSeconds: 0.3) }
        let c = try RawClient(port: n1.routeManager!.port)
        XCTAssertTrue(c.waitFor("\r\n"))
        XCTAssertTrue(c.waitFor("-ERR 'Authentication Timeout'\r\n"), c.text)
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(cluster.logs[0].contains("authentication timeout"))
    }

    func test_routeAuthorization_turnedOnBySIGHUP_newRoutesMustLogIn_theRouteUpStays() throws {
        let n1 = try cluster.start(name: "n1")
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port])
        XCTAssertTrue(waitUntil { n1.routeManager!.peerIDs == [n2.serverID] })
        let rid = n1.routeManager!.snapshots(includeSubscriptions: false).map(\.rid)
        var o = n1.options
        o.clusterAuth = Self.routeAuth
        XCTAssertEqual(n1.reload(o), [], "route authorization applies without a restart")
        XCTAssertTrue(cluster.logs[0].contains("Reloaded: cluster authorization on for new routes"))
        let c = try RawClient(port: n1.routeManager!.port)
        XCTAssertTrue(c.waitFor("\r\n"))
        XCTAssertTrue(c.text.contains("\"auth_required\":true"), c.text)
        c.send("CONNECT {\"name\":\"XYZ\",\"cluster\":\"test\"}\r\n")
        XCTAssertTrue(c.waitFor("-ERR 'Authorization Violation'\r\n"), c.text)
        XCTAssertEqual(n1.routeManager!.snapshots(includeSubscriptions: false).map(\.rid), rid, "the route up stays")
    }

    func test_invalidRouteURL_isLoggedWithoutItsPassword() throws {
        _ = try cluster.start(name: "n1") { $0.routes = ["nats://ruser:s3cret@no-port-here"] }
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("Ignoring route URL \"nats://ruser:[REDACTED]@no-port-here\"") },
                      cluster.logs[0].text)
        XCTAssertFalse(cluster.logs[0].contains("s3cret"))
    }

    func test_handshake_clusterNameMismatch_isRefusedWithALogLine() throws {
        let n1 = try cluster.start(name: "n1", clusterName: "alpha")
        let n2 = try cluster.start(name: "n2", clusterName: "beta", routes: [n1.routeManager!.port])
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("cluster name \"beta\" does not match \"alpha\"") })
        XCTAssertTrue(waitUntil { self.cluster.logs[1].contains("cluster name \"alpha\" does not match \"beta\"") })
        XCTAssertEqual(n1.routeManager!.peerIDs, [])
        XCTAssertEqual(n2.routeManager!.peerIDs, [])
    }

    func test_routePort_clientConnect_getsAttemptedToConnectToRoutePort() throws {
        let n1 = try cluster.start(name: "n1")
        let c = try RawClient(port: n1.routeManager!.port)
        XCTAssertTrue(c.waitFor("\r\n"))
        XCTAssertTrue(c.text.hasPrefix("INFO {"))
        c.send("CONNECT {\"verbose\":false,\"lang\":\"go\",\"version\":\"1.0\"}\r\n")
        XCTAssertTrue(c.waitFor("-ERR 'attempted to connect to route port'\r\n"), c.text)
        XCTAssertTrue(c.waitForClose())
    }

    // MARK: - messages

    func test_pubSub_crossNodeWildcards_eachRouteCrossedOncePerMessage() throws {
        let (n1, n2, n3) = try threeNodes()
        let sub2 = try client(n2)
        sub2.send("SUB orders.* 1\r\nSUB orders.> 2\r\nSUB orders.eu 3\r\n")
        sync(sub2)
        let sub3 = try client(n3)
        sub3.send("SUB orders.> 7\r\n")
        sync(sub3)
        waitForInterest("orders.eu", on: [n1])
        XCTAssertTrue(waitUntil { n1.routeManager!.snapshots(includeSubscriptions: false).map(\.subscriptionCount).sorted() == [1, 3] })
        let before2 = outMsgs(from: n1, to: n2), before3 = outMsgs(from: n1, to: n3)
        let pub = try client(n1)
        pub.send("PUB orders.eu r.1 5\r\nhello\r\n")
        sync(pub)
        XCTAssertTrue(sub2.waitForCount("hello\r\n", 3))
        XCTAssertTrue(sub2.text.contains("MSG orders.eu 1 r.1 5\r\nhello\r\n"))
        XCTAssertTrue(sub2.text.contains("MSG orders.eu 2 r.1 5\r\nhello\r\n"))
        XCTAssertTrue(sub2.text.contains("MSG orders.eu 3 r.1 5\r\nhello\r\n"))
        XCTAssertTrue(sub3.waitFor("MSG orders.eu 7 r.1 5\r\nhello\r\n"))
        XCTAssertEqual(outMsgs(from: n1, to: n2) - before2, 1, "one RMSG for three matching remote subscriptions")
        XCTAssertEqual(outMsgs(from: n1, to: n3) - before3, 1)
        // Nodes never forward a routed message to another route (one hop).
        sync(sub2)
        XCTAssertEqual(outMsgs(from: n2, to: n3), 0)
        XCTAssertEqual(outMsgs(from: n3, to: n2), 0)
        XCTAssertEqual(sub2.count(of: "hello\r\n"), 3)
    }

    func test_pubSub_headersCrossRoutes_andHeaderlessReceiversGetPayloadOnly() throws {
        let (n1, n2, _) = try threeNodes()
        let withHeaders = try client(n2)
        withHeaders.send("SUB h.x 1\r\n")
        let plain = try client(n2, "{\"verbose\":false}")
        plain.send("SUB h.x 2\r\n")
        sync(withHeaders); sync(plain)
        waitForInterest("h.x", on: [n1])
        let pub = try client(n1)
        pub.send("HPUB h.x 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n")
        XCTAssertTrue(withHeaders.waitFor("HMSG h.x 1 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n"), withHeaders.text)
        XCTAssertTrue(plain.waitFor("MSG h.x 2 2\r\nhi\r\n"), plain.text)
    }

    func test_queueGroup_membersOnTwoRemoteNodes_eachMessageExactlyOnceClusterWide() throws {
        let (n1, n2, n3) = try threeNodes()
        let a = try client(n2), b = try client(n2), c = try client(n3), watcher = try client(n3)
        a.send("SUB work w 1\r\n"); b.send("SUB work w 1\r\n"); c.send("SUB work w 1\r\n"); watcher.send("SUB work 9\r\n")
        sync(a); sync(b); sync(c); sync(watcher)
        waitForInterest("work", on: [n1])
        // Weights reached n1: n2 stands for two members, n3 for one.
        XCTAssertTrue(waitUntil {
            n1.sublist.match("work").queues.first.map { $0.map(\.weight).sorted() } == [1, 2]
        }, "weights: \(n1.sublist.match("work").queues.map { $0.map { ($0.weight, $0.sid) } })")
        let pub = try client(n1)
        let total = 90
        for i in 0..<total { pub.send("PUB work \(String(i).count)\r\n\(i)\r\n") }
        sync(pub)
        XCTAssertTrue(watcher.waitForCount("MSG work 9 ", total))
        // RawClient reads only while waiting: a PING round trip pulls in what has arrived.
        XCTAssertTrue(waitUntil {
            [a, b, c].forEach { sync($0) }
            return [a, b, c].map { $0.count(of: "MSG work 1 ") }.reduce(0, +) >= total
        })
        let counts = [a, b, c].map { $0.count(of: "MSG work 1 ") }
        XCTAssertEqual(counts.reduce(0, +), total, "each message to exactly one member: \(counts)")
        XCTAssertTrue(counts.allSatisfy { $0 > 0 }, "every member served some: \(counts)")
        _ = n2; _ = n3
    }

    func test_queueGroup_routedQueueMessage_goesToALocalMemberOnly() throws {
        let (n1, n2, n3) = try threeNodes()
        // n2 has the only member; n3 has a plain subscriber; publish from n1.
        let member = try client(n2)
        member.send("SUB jobs q 1\r\n")
        sync(member)
        waitForInterest("jobs", on: [n1, n3])
        let pub = try client(n1)
        for _ in 0..<10 { pub.send("PUB jobs 1\r\nx\r\n") }
        sync(pub)
        XCTAssertTrue(member.waitForCount("MSG jobs 1 1\r\n", 10))
        XCTAssertEqual(outMsgs(from: n1, to: n3), 0, "no interest on n3, nothing sent there")
    }

    func test_requestReply_acrossNodes_replyComesBack() throws {
        let (n1, _, n3) = try threeNodes()
        let responder = try client(n3)
        responder.send("SUB svc.echo q 1\r\n")
        sync(responder)
        let requester = try client(n1)
        requester.send("SUB _INBOX.abc.* 5\r\n")
        sync(requester)
        waitForInterest("svc.echo", on: [n1])
        waitForInterest("_INBOX.abc.1", on: [n3])
        requester.send("PUB svc.echo _INBOX.abc.1 4\r\nping\r\n")
        XCTAssertTrue(responder.waitFor("MSG svc.echo 1 _INBOX.abc.1 4\r\nping\r\n"))
        responder.send("PUB _INBOX.abc.1 4\r\npong\r\n")
        XCTAssertTrue(requester.waitFor("MSG _INBOX.abc.1 5 4\r\npong\r\n"), requester.text)
        XCTAssertFalse(requester.text.contains("503"))
    }

    func test_noResponders_countsRemoteInterest() throws {
        let (n1, n2, _) = try threeNodes()
        let requester = try client(n1)
        requester.send("SUB _INBOX.r.* 5\r\n")
        sync(requester)
        requester.send("PUB nobody.home _INBOX.r.1 0\r\n\r\n")
        XCTAssertTrue(requester.waitFor("NATS/1.0 503\r\n"), "no 503 without any interest: \(requester.text)")
        requester.clear()
        let responder = try client(n2)
        responder.send("SUB nobody.home 1\r\n")
        sync(responder)
        waitForInterest("nobody.home", on: [n1])
        requester.send("PUB nobody.home _INBOX.r.2 0\r\n\r\n")
        XCTAssertTrue(responder.waitFor("MSG nobody.home 1 _INBOX.r.2 0\r\n"))
        sync(requester)
        XCTAssertFalse(requester.text.contains("503"), "remote interest must suppress no-responders: \(requester.text)")
    }

    func test_internalSubscriptions_stayLocalUnlessTheyPropagate() throws {
        let (n1, n2, _) = try threeNodes()
        let seen = NIOLockedValueBox<[String]>([])
        _ = n1.subscribeInternal("svc.shared", propagates: true) { m in seen.withLockedValue { $0.append("shared:" + m.subject) } }
        _ = n1.subscribeInternal("svc.local") { m in seen.withLockedValue { $0.append("local:" + m.subject) } }
        waitForInterest("svc.shared", on: [n2])
        XCTAssertFalse(n2.hasInterest("svc.local"))
        let pub = try client(n2)
        pub.send("PUB svc.local 1\r\na\r\nPUB svc.shared 1\r\nb\r\n")
        sync(pub)
        XCTAssertTrue(waitUntil { seen.withLockedValue { $0 } == ["shared:svc.shared"] })
        // A local publish reaches both, as before clustering.
        let local = try client(n1)
        local.send("PUB svc.local 1\r\nc\r\n")
        sync(local)
        XCTAssertTrue(waitUntil { seen.withLockedValue { $0.count } == 2 })
    }

    // MARK: - interest lifecycle

    func test_unsubscribe_andAutoUnsubscribe_removeRemoteInterest() throws {
        let (n1, n2, n3) = try threeNodes()
        let sub = try client(n2)
        sub.send("SUB gone 1\r\nSUB once 2\r\nUNSUB 2 1\r\n")
        sync(sub)
        waitForInterest("gone", on: [n1, n3])
        waitForInterest("once", on: [n1, n3])
        sub.send("UNSUB 1\r\n")
        sync(sub)
        XCTAssertTrue(waitUntil { !n1.hasInterest("gone") && !n3.hasInterest("gone") })
        let pub = try client(n1)
        pub.send("PUB once 1\r\na\r\nPUB once 1\r\nb\r\n")
        XCTAssertTrue(sub.waitFor("MSG once 2 1\r\na\r\n"))
        XCTAssertTrue(waitUntil { !n1.hasInterest("once") && !n3.hasInterest("once") })
        sync(sub)
        XCTAssertFalse(sub.text.contains("MSG once 2 1\r\nb\r\n"))
    }

    func test_disconnect_ofAllLocalSubscribers_removesInterestEverywhere() throws {
        let (n1, n2, _) = try threeNodes()
        var subs: [RawClient] = []
        for i in 0..<3 {
            let s = try client(n2)
            s.send("SUB shared.* \(i)\r\n")
            sync(s)
            subs.append(s)
        }
        waitForInterest("shared.a", on: [n1])
        subs.removeLast(2)
        usleep(100_000)
        XCTAssertTrue(n1.hasInterest("shared.a"), "one subscriber left: interest stays")
        subs.removeAll()
        XCTAssertTrue(waitUntil { !n1.hasInterest("shared.a") })
    }

    // MARK: - failure and restart

    func test_nodeRestart_routesReconnectAndInterestIsResent() throws {
        let port2 = freeLoopbackPort()
        let n1 = try cluster.start(name: "n1", routes: [port2])
        var n2 = try cluster.start(name: "n2", clusterPort: port2)
        let n3 = try cluster.start(name: "n3", routes: [n1.routeManager!.port])
        cluster.waitForFullMesh()
        let sub1 = try client(n1)
        sub1.send("SUB before.restart 1\r\n")
        sync(sub1)
        waitForInterest("before.restart", on: [n2, n3])

        cluster.stop(n2)
        XCTAssertTrue(waitUntil { n1.routeManager!.peerIDs == [n3.serverID] })
        n2 = try cluster.start(name: "n2", clusterPort: port2)
        // n1 redials n2's port (n2 has no seeds); n3 hears of n2 by gossip.
        cluster.waitForFullMesh()
        waitForInterest("before.restart", on: [n2])
        let pub = try client(n2)
        pub.send("PUB before.restart 3\r\nnew\r\n")
        XCTAssertTrue(sub1.waitFor("MSG before.restart 1 3\r\nnew\r\n"))
        let sub2 = try client(n2)
        sub2.send("SUB after.restart 1\r\n")
        sync(sub2)
        waitForInterest("after.restart", on: [n1, n3])
    }

    func test_connectURLs_inInfo_andAsyncInfoWhenANodeJoins() throws {
        let n1 = try cluster.start(name: "n1")
        let watcher = try client(n1)
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port])
        cluster.waitForFullMesh()
        XCTAssertTrue(watcher.waitFor("127.0.0.1:\(n2.clientPort)"), "async INFO with n2's URL: \(watcher.text)")
        XCTAssertTrue(watcher.text.hasPrefix("INFO {"))
        let fresh = try RawClient(port: n2.clientPort)
        XCTAssertTrue(fresh.waitFor("\r\n"))
        let json = try JSONSerialization.jsonObject(with: Data(fresh.text.dropFirst(5).utf8)) as! [String: Any]
        XCTAssertEqual(Set(json["connect_urls"] as? [String] ?? []), ["127.0.0.1:\(n1.clientPort)", "127.0.0.1:\(n2.clientPort)"])
        XCTAssertEqual(json["cluster"] as? String, "test")
        // A protocol-0 client gets no async INFO.
        let legacy = try client(n1, "{\"verbose\":false}")
        let n3 = try cluster.start(name: "n3", routes: [n1.routeManager!.port])
        cluster.waitForFullMesh()
        XCTAssertTrue(watcher.waitFor("127.0.0.1:\(n3.clientPort)"))
        sync(legacy)
        XCTAssertFalse(legacy.text.contains("INFO"))
    }

    func test_extensionFrames_reachTheHandlerOfTheirNamespace() throws {
        let n1 = try cluster.start(name: "n1")
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port])
        cluster.waitForFullMesh()
        let got = NIOLockedValueBox<[(String, String)]>([])
        n2.routeManager!.registerExtension("raft") { from, payload in
            got.withLockedValue { $0.append((from, String(buffer: payload))) }
        }
        XCTAssertTrue(n1.routeManager!.sendExtension("raft", payload: ByteBuffer(string: "vote\r\nme"), to: n2.serverID))
        XCTAssertFalse(n1.routeManager!.sendExtension("raft", payload: ByteBuffer(string: "x"), to: "NOBODY"))
        XCTAssertTrue(waitUntil { got.withLockedValue { $0.count } == 1 })
        XCTAssertEqual(got.withLockedValue { $0.first?.0 }, n1.serverID)
        XCTAssertEqual(got.withLockedValue { $0.first?.1 }, "vote\r\nme")
    }

    // MARK: - stamped JetStream deliveries (chaos finding 15's delayed copy)

    func test_stampedDelivery_fromAnOlderTermThanOneThatPassed_isDroppedByTheClientsNode() throws {
        let (n1, n2, n3) = try threeNodes()
        let c = try client(n2)
        c.send("SUB _INBOX.c 1\r\n")
        sync(c)
        waitForInterest("_INBOX.c", on: [n1, n3])
        XCTAssertTrue(waitUntil { [n1, n3].allSatisfy { n in
            n.routeManager!.snapshots(includeSubscriptions: false).count == 2 } })
        func deliver(from server: NATSServer, _ text: String, term: UInt64) {
            server.deliverAs(subject: "orders.1", to: "_INBOX.c", reply: nil, headers: nil, payload: Array(text.utf8),
                             stamp: DeliveryStamp(key: "$G/ORDERS/g100", term: term))
        }
        deliver(from: n1, "old-leader", term: 4)
        XCTAssertTrue(c.waitFor("MSG orders.1 1 10\r\nold-leader\r\n"), c.text)
        deliver(from: n3, "successor", term: 7)
        XCTAssertTrue(c.waitFor("MSG orders.1 1 9\r\nsuccessor\r\n"), c.text)
        deliver(from: n1, "held-copy", term: 4)      // the deposed leader's late copy
        deliver(from: n1, "marker-after", term: 7)   // same route, sent after it: arrives after it
        XCTAssertTrue(c.waitFor("marker-after\r\n"), c.text)
        XCTAssertFalse(c.text.contains("held-copy"), c.text)
        XCTAssertEqual(n2.staleDeliveries.dropped, 1)
        XCTAssertEqual(n1.staleDeliveries.dropped + n3.staleDeliveries.dropped, 0, "only the relay saw both terms")
    }
}
