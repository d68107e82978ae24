import Foundation
import Logging
import ServerConfig
import XCTest
@testable import ClusterServer

/// Authentication, permissions, accounts and imports through real sockets.
final class SecurityEndToEndTests: XCTestCase {
    private var server: NATSServer!

    static let config = """
    accounts {
      A: {
        users: [
          { user: alice, password: pa, permissions: {
              publish: { allow: ["pub.>", "_INBOX.>"], deny: ["pub.secret"] }
              subscribe: { allow: ["sub.>", "_INBOX.>"], deny: ["sub.secret"] } } }
          { user: a2, password: x }
          { user: svc, password: x, permissions: { subscribe: "req.>", allow_responses: true } }
        ]
        exports: [ {stream: "events.>"}, {service: "req.>"} ]
      }
      B: {
        users: [ { user: b1, password: "$2b$04$abcdefghijklmnopqrstuu35fBIWlNgF8BcAW/t2cO158N8svSFHy" } ]
        imports: [
          {stream: {account: A, subject: "events.>"}, prefix: "a"}
          {service: {account: A, subject: "req.time"}, to: "time"}
        ]
      }
      C: { users: [ {user: c1, password: x} ], limits: { max_connections: 1, max_subscriptions: 2 } }
    }
    no_auth_user: a2
    """

    private func start(_ text: String = SecurityEndToEndTests.config) throws {
        var warnings: [String] = []
        var o = try ConfigLoader.map(ConfigParser().parse(text, fileName: "t.conf"), into: ServerOptions(), warnings: &warnings)
        o.host = "127.0.0.1"
        o.port = -1
        o.httpHost = "127.0.0.1"
        o.httpPort = -1
        o.threads = 2
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = NATSServer(options: o, logger: logger)
        try server.start()
    }

    override func tearDown() {
        server?.shutdown()
        server?.waitUntilShutdown()
        server = nil
    }

    private func client(_ user: String?, _ pass: String = "x") throws -> RawClient {
        let creds = user.map { ",\"user\":\"\($0)\",\"pass\":\"\(pass)\"" } ?? ""
        return try RawClient.connected(port: server.clientPort,
                                       connect: "{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true\(creds)}")
    }

    private func sync(_ c: RawClient, line: UInt = #line) { c.sync(line: line) }

    func test_permissions_violationsGetNatsErrors_connectionStaysOpen_nothingDelivered() throws {
        try start()
        let watcher = try client("a2")
        watcher.send("SUB > 1\r\n")
        sync(watcher)
        let alice = try client("alice", "pa")
        alice.send("PUB deny.x 1\r\nx\r\n")
        XCTAssertTrue(alice.waitFor("-ERR 'Permissions Violation for Publish to \"deny.x\"'\r\n"))
        alice.send("PUB pub.secret 1\r\nx\r\n")
        XCTAssertTrue(alice.waitFor("-ERR 'Permissions Violation for Publish to \"pub.secret\"'\r\n"))
        alice.send("PUB pub.ok _R_.x 1\r\nx\r\n")
        XCTAssertTrue(alice.waitFor("-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n"))
        alice.send("SUB other 1\r\n")
        XCTAssertTrue(alice.waitFor("-ERR 'Permissions Violation for Subscription to \"other\"'\r\n"))
        alice.send("SUB other q 2\r\n")
        XCTAssertTrue(alice.waitFor("-ERR 'Permissions Violation for Subscription to \"other\" using queue \"q\"'\r\n"))
        alice.send("SUB sub.secret 3\r\n")
        XCTAssertTrue(alice.waitFor("-ERR 'Permissions Violation for Subscription to \"sub.secret\"'\r\n"))
        // Still open, and allowed operations work.
        alice.send("PUB pub.ok 2\r\nok\r\n")
        sync(alice)
        sync(watcher)
        XCTAssertTrue(watcher.waitFor("MSG pub.ok 1 2\r\nok\r\n"))
        XCTAssertFalse(watcher.text.contains("deny.x") || watcher.text.contains("pub.secret"), watcher.text)
        XCTAssertEqual(server.stats.permissionViolations.load(ordering: .relaxed), 6)
        let varz = try httpGet(port: server.monitoringPort, path: "/varz")
        XCTAssertTrue(varz.body.contains("\"permission_violations\":6") || varz.body.contains("\"permission_violations\" : 6"), varz.body)
    }

    func test_permissions_wildcardSubscription_filtersDeniedSubjects() throws {
        try start()
        let alice = try client("alice", "pa")
        alice.send("SUB sub.> 5\r\n")
        sync(alice)
        let other = try client("a2")
        other.send("PUB sub.secret 1\r\ns\r\nPUB sub.x 1\r\ny\r\n")
        sync(other)
        XCTAssertTrue(alice.waitFor("MSG sub.x 5 1\r\ny\r\n"))
        sync(alice)
        XCTAssertFalse(alice.text.contains("sub.secret"), alice.text)
    }

    func test_allowResponses_oneReplyPerRequest() throws {
        try start()
        let svc = try client("svc")
        svc.send("SUB req.> 1\r\n")
        sync(svc)
        let requester = try client("a2")
        requester.send("SUB _INBOX.r1 9\r\nPUB req.x _INBOX.r1 1\r\n?\r\n")
        XCTAssertTrue(svc.waitFor("MSG req.x 1 _INBOX.r1 1\r\n?\r\n"))
        svc.send("PUB _INBOX.r1 3\r\nyes\r\n")
        XCTAssertTrue(requester.waitFor("MSG _INBOX.r1 9 3\r\nyes\r\n"))
        svc.send("PUB _INBOX.r1 5\r\nagain\r\n")
        XCTAssertTrue(svc.waitFor("-ERR 'Permissions Violation for Publish to \"_INBOX.r1\"'\r\n"))
        svc.send("PUB elsewhere 1\r\nz\r\n")
        XCTAssertTrue(svc.waitFor("-ERR 'Permissions Violation for Publish to \"elsewhere\"'\r\n"))
    }

    func test_accounts_isolated_noAuthUserJoinsItsAccount() throws {
        try start()
        let a = try client("alice", "pa"), b = try client("b1", "s3cr3t"), anon = try client(nil)
        a.send("SUB sub.t 1\r\n"); b.send("SUB sub.t 1\r\n")
        sync(a); sync(b)
        b.clear()
        anon.send("PUB sub.t 1\r\nn\r\n")
        sync(anon)
        XCTAssertTrue(a.waitFor("MSG sub.t 1 1\r\nn\r\n"))
        sync(b)
        XCTAssertEqual(b.text, "PONG\r\n", "account B must not see account A's message")
        let info = try RawClient(port: server.clientPort)
        XCTAssertTrue(info.waitFor("\r\n"))
        XCTAssertFalse(info.text.contains("auth_required"), info.text)
    }

    func test_bcryptUser_rightAndWrongPassword() throws {
        try start()
        _ = try client("b1", "s3cr3t")
        let bad = try RawClient(port: server.clientPort)
        XCTAssertTrue(bad.waitFor("\r\n"))
        bad.send("CONNECT {\"user\":\"b1\",\"pass\":\"wrong\"}\r\nPING\r\n")
        XCTAssertTrue(bad.waitFor("-ERR 'Authorization Violation'\r\n"))
        XCTAssertTrue(bad.waitForClose())
        XCTAssertFalse(bad.text.contains("PONG"))
        XCTAssertEqual(server.stats.authFailures.load(ordering: .relaxed), 1)
    }

    func test_streamImport_prefixedInImporter_notTheOtherWay() throws {
        try start()
        let b = try client("b1", "s3cr3t")
        b.send("SUB a.events.> 1\r\nSUB events.> 2\r\n")
        sync(b)
        let a = try client("a2")
        a.send("SUB a.events.x 7\r\nPUB events.x 2\r\nhi\r\n")
        sync(a)
        XCTAssertTrue(b.waitFor("MSG a.events.x 1 2\r\nhi\r\n"))
        b.send("PUB events.y 1\r\nz\r\nPUB a.events.x 1\r\nz\r\n")
        sync(b)
        sync(a)
        XCTAssertFalse(a.text.contains("MSG"), "nothing flows back from B into A: \(a.text)")
        XCTAssertEqual(b.count(of: "MSG a.events.x 1 2\r\nhi\r\n"), 1, "the import delivers once")
    }

    func test_serviceImport_requestReply_andNoResponders() throws {
        try start()
        let b = try client("b1", "s3cr3t")
        b.send("SUB _INBOX.b.* 1\r\nPUB time _INBOX.b.1 0\r\n\r\n")
        XCTAssertTrue(b.waitFor("HMSG _INBOX.b.1 1 "), "no responders expected: \(b.text)")
        XCTAssertTrue(b.waitFor("NATS/1.0 503"))
        b.clear()
        let svc = try client("a2")
        svc.send("SUB req.time 4\r\n")
        sync(svc)
        b.send("PUB time _INBOX.b.2 1\r\n?\r\n")
        XCTAssertTrue(svc.waitFor("MSG req.time 4 _R_."), svc.text)
        // The responder sees a private reply subject, never B's inbox.
        XCTAssertFalse(svc.text.contains("_INBOX.b.2"))
        XCTAssertTrue(svc.waitFor(" 1\r\n?\r\n"), svc.text)
        let line = try XCTUnwrap(svc.text.split(separator: "\r\n").first { $0.hasPrefix("MSG req.time") })
        let reply = line.split(separator: " ")[3]
        svc.send("PUB \(reply) 4\r\nnoon\r\nPUB \(reply) 5\r\nlater\r\n")
        XCTAssertTrue(b.waitFor("MSG _INBOX.b.2 1 4\r\nnoon\r\n"), b.text)
        sync(svc)
        sync(b)
        XCTAssertFalse(b.text.contains("later"), "singleton: one response per request")
        XCTAssertEqual(server.serviceImports.first?.pendingCount, 0)
    }

    func test_accountLimits_connectionsAndSubscriptions() throws {
        try start()
        let c1 = try client("c1")
        c1.send("SUB s1 1\r\nSUB s2 2\r\nSUB s3 3\r\n")
        XCTAssertTrue(c1.waitFor("-ERR 'maximum subscriptions exceeded'\r\n"))
        sync(c1)
        let second = try RawClient(port: server.clientPort)
        XCTAssertTrue(second.waitFor("\r\n"))
        second.send("CONNECT {\"user\":\"c1\",\"pass\":\"x\"}\r\nPING\r\n")
        XCTAssertTrue(second.waitFor("-ERR 'maximum account active connections exceeded'\r\n"))
        XCTAssertTrue(second.waitForClose())
        c1.hangUp()
        XCTAssertTrue(waitUntil { self.server.accountsByName["C"]!.connectionCount == 0 })
        _ = try client("c1")
    }

    func test_monitoring_noSecretsInVarzOrConnz_boundToLoopback() throws {
        try start("""
        authorization { token: "t0ps3cretTOKEN" }
        cluster { listen: "127.0.0.1:-1", routes: ["nats://ruser:r0utePASS@127.0.0.1:1"] }
        http: "127.0.0.1:-1"
        """)
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"auth_token\":\"t0ps3cretTOKEN\",\"verbose\":false}\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"))
        for path in ["/varz", "/connz", "/routez", "/subsz"] {
            let r = try httpGet(port: server.monitoringPort, path: path)
            XCTAssertFalse(r.body.contains("t0ps3cretTOKEN") || r.body.contains("r0utePASS"), "\(path): \(r.body)")
        }
        let varz = try httpGet(port: server.monitoringPort, path: "/varz").body
        XCTAssertTrue(varz.contains("ruser:[REDACTED]@127.0.0.1:1"), varz)
        XCTAssertTrue(varz.contains("\"http_host\":\"127.0.0.1\"") || varz.contains("\"http_host\" : \"127.0.0.1\""), varz)
    }

    func test_bcryptConnect_pipelinedOpsWaitForTheVerdict() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"verbose\":false,\"user\":\"b1\",\"pass\":\"s3cr3t\"}\r\nSUB p 1\r\nPUB p 2\r\nhi\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("MSG p 1 2\r\nhi\r\nPONG\r\n"), c.text)
        let bad = try RawClient(port: server.clientPort)
        XCTAssertTrue(bad.waitFor("\r\n"))
        bad.send("CONNECT {\"verbose\":false,\"user\":\"b1\",\"pass\":\"nope\"}\r\nSUB p 1\r\nPING\r\n")
        XCTAssertTrue(bad.waitForClose())
        XCTAssertTrue(bad.text.hasSuffix("-ERR 'Authorization Violation'\r\n"), bad.text)
        XCTAssertFalse(bad.text.contains("PONG"))
    }

    func test_bcryptConnect_clientGoneBeforeTheVerdict_holdsNoAccountConnection() throws {
        try start()
        let b = server.accountsByName["B"]!
        server.slowAuthQueue.isSuspended = true
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"verbose\":false,\"user\":\"b1\",\"pass\":\"s3cr3t\"}\r\n")
        XCTAssertTrue(waitUntil { self.server.slowAuthQueue.operationCount == 1 })
        // Reading is paused for the check, yet the hang-up is seen (NIO's read-hang-up event):
        // the connection is gone before its verdict.
        c.hangUp()
        XCTAssertTrue(waitUntil { self.server.connectionCount == 0 }, "the connection was never dropped")
        server.slowAuthQueue.isSuspended = false
        XCTAssertTrue(waitUntil { self.server.slowAuthQueue.operationCount == 0 })
        // The verdict hops back to the event loop: a leak would show within this bounded wait.
        XCTAssertFalse(waitUntil(seconds: 2) { b.connectionCount != 0 }, "an account connection held for a client that is gone")
    }

    func test_reload_globalUsersApply_accountChangesNeedRestart() throws {
        try start("authorization { users: [ {user: u, password: old} ] }")
        var warnings: [String] = []
        let next = try ConfigLoader.map(ConfigParser().parse("""
        authorization { users: [ {user: u, password: new} ] }
        accounts { X: { users: [ {user: x, password: x} ] } }
        """, fileName: "t.conf"), into: server.options, warnings: &warnings)
        XCTAssertEqual(server.reload(next), ["accounts"])
        _ = try client("u", "new")
        let old = try RawClient(port: server.clientPort)
        XCTAssertTrue(old.waitFor("\r\n"))
        old.send("CONNECT {\"user\":\"u\",\"pass\":\"old\"}\r\nPING\r\n")
        XCTAssertTrue(old.waitFor("-ERR 'Authorization Violation'\r\n"))
        XCTAssertNil(server.account(named: "X"))
    }

    func test_reload_changedMappingsNeedRestart() throws {
        try start(#"mappings { "a": "b" }"#)
        var warnings: [String] = []
        let next = try ConfigLoader.map(ConfigParser().parse(#"mappings { "a": "c" }"#, fileName: "t.conf"),
                                        into: server.options, warnings: &warnings)
        XCTAssertEqual(server.reload(next), ["mappings"])
        XCTAssertEqual(server.options.mappings, [.init(source: "a", destinations: [.init(subject: "b", weight: 100)])])
        XCTAssertEqual(server.globalAccount.mappings?.map("a"), "b")
    }

    func test_bcryptQueueFull_refusesInsteadOfQueueing() throws {
        try start()
        server.maxQueuedSlowAuth = 0
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"user\":\"b1\",\"pass\":\"s3cr3t\"}\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("-ERR 'Authorization Violation'\r\n"))
        XCTAssertTrue(c.waitForClose())
        // Plain-password users are not affected.
        _ = try client("a2")
    }
}
