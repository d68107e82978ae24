import Foundation
import ServerConfig
import XCTest
@testable import ClusterServer

/// Accounts across the route mesh: RS+/RMSG carry the account, so namespaces stay apart on
/// every node, and imports work whichever node the publisher and subscriber are on.
final class SecurityClusterTests: XCTestCase {
    private let cluster = RouteCluster()

    override func tearDown() { cluster.stopAll() }

    private static let accounts = """
    accounts {
      A: { users: [ {user: a, password: x} ], exports: [ {stream: "events.>"}, {service: "req.>"} ] }
      B: {
        users: [ {user: b, password: x} ]
        imports: [ {stream: {account: A, subject: "events.>"}, prefix: "a"}, {service: {account: A, subject: "req.time"}, to: "time"} ]
      }
    }
    """

    private func twoNodes() throws -> (NATSServer, NATSServer) {
        var warnings: [String] = []
        let parsed = try ConfigLoader.map(ConfigParser().parse(Self.accounts, fileName: "a.conf"), into: ServerOptions(),
                                          warnings: &warnings)
        let n1 = try cluster.start(name: "n1") { $0.accounts = parsed.accounts }
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port]) { $0.accounts = parsed.accounts }
        cluster.waitForFullMesh()
        return (n1, n2)
    }

    private func client(_ server: NATSServer, _ user: String) throws -> RawClient {
        try RawClient.connected(port: server.clientPort,
                                connect: "{\"verbose\":false,\"headers\":true,\"no_responders\":true,\"user\":\"\(user)\",\"pass\":\"x\"}")
    }

    private func sync(_ c: RawClient, line: UInt = #line) { c.sync(line: line) }

    private func remoteInterest(_ server: NATSServer, _ account: String, _ subject: String) -> Bool {
        !(server.accountsByName[account]?.sublist.matchUncached(subject).plain.filter { $0.route != nil }.isEmpty ?? true)
    }

    func test_accountsAcrossRoutes_sameSubjectStaysInItsAccount() throws {
        let (n1, n2) = try twoNodes()
        let subA = try client(n2, "a"), subB = try client(n2, "b")
        subA.send("SUB t.x 1\r\n"); subB.send("SUB t.x 2\r\n")
        sync(subA); sync(subB)
        XCTAssertTrue(waitUntil { self.remoteInterest(n1, "A", "t.x") && self.remoteInterest(n1, "B", "t.x") })
        XCTAssertTrue(n1.globalAccount.sublist.matchUncached("t.x").isEmpty, "no interest leaks into $G")
        let pubA = try client(n1, "a")
        pubA.send("PUB t.x 2\r\nhi\r\n")
        sync(pubA)
        XCTAssertTrue(subA.waitFor("MSG t.x 1 2\r\nhi\r\n"))
        let pubB = try client(n1, "b")
        pubB.send("PUB t.x 3\r\nbye\r\n")
        XCTAssertTrue(subB.waitFor("MSG t.x 2 3\r\nbye\r\n"))
        sync(subA)
        XCTAssertEqual(subA.count(of: "MSG"), 1, subA.text)
        XCTAssertEqual(subB.count(of: "MSG"), 1, subB.text)
        let routez = n1.routeManager!.snapshots(includeSubscriptions: true).flatMap { $0.subjects ?? [] }
        XCTAssertTrue(routez.contains("A t.x") && routez.contains("B t.x"), "\(routez)")
    }

    func test_streamImport_publisherAndSubscriberOnDifferentNodes_deliveredOnce() throws {
        let (n1, n2) = try twoNodes()
        let subB = try client(n2, "b")
        subB.send("SUB a.events.> 1\r\n")
        sync(subB)
        XCTAssertTrue(waitUntil { self.remoteInterest(n1, "B", "a.events.x") })
        let pubA = try client(n1, "a")
        pubA.send("PUB events.x 2\r\nhi\r\nPUB events.y 2\r\nho\r\n")
        sync(pubA)
        XCTAssertTrue(subB.waitFor("MSG a.events.y 1 2\r\nho\r\n"), subB.text)
        sync(subB)
        XCTAssertEqual(subB.count(of: "MSG a.events.x 1 2\r\nhi\r\n"), 1, subB.text)
    }

    func test_serviceImport_responderOnOtherNode() throws {
        let (n1, n2) = try twoNodes()
        let svc = try client(n2, "a")
        svc.send("SUB req.time 1\r\n")
        sync(svc)
        XCTAssertTrue(waitUntil { self.remoteInterest(n1, "A", "req.time") })
        // The responder's node must know where the private reply subjects live.
        let prefix = n1.serviceImports[0].replyPrefix
        XCTAssertTrue(waitUntil { self.remoteInterest(n2, "A", prefix + ".1") })
        let b = try client(n1, "b")
        b.send("SUB _INBOX.q 9\r\nPUB time _INBOX.q 1\r\n?\r\n")
        XCTAssertTrue(svc.waitFor("MSG req.time 1 \(prefix)."), svc.text)
        XCTAssertTrue(svc.waitFor(" 1\r\n?\r\n"), svc.text)
        let line = try XCTUnwrap(svc.text.split(separator: "\r\n").first { $0.hasPrefix("MSG req.time") })
        let reply = line.split(separator: " ")[3]
        svc.send("PUB \(reply) 4\r\nnoon\r\n")
        XCTAssertTrue(b.waitFor("MSG _INBOX.q 9 4\r\nnoon\r\n"), b.text)
    }
}
