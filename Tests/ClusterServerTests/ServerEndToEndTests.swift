import Foundation
import Logging
import NIOConcurrencyHelpers
import XCTest
@testable import ClusterServer

final class ServerEndToEndTests: XCTestCase {
    private var server: NATSServer!

    private func start(_ configure: (inout ServerOptions) -> Void = { _ in }) throws {
        server = try startTestServer(configure)
    }

    override func tearDown() {
        server?.shutdown()
        server?.waitUntilShutdown()
        server = nil
    }

    private func client(_ connect: String = "{\"verbose\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1}") throws -> RawClient {
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT \(connect)\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"), "no PONG after CONNECT: \(c.text)")
        c.clear()
        return c
    }

    /// A PING/PONG round trip guarantees the server processed everything sent before it.
    private func sync(_ c: RawClient) {
        let before = c.count(of: "PONG\r\n")
        c.send("PING\r\n")
        XCTAssertTrue(c.waitForCount("PONG\r\n", before + 1), "no PONG: \(c.text.suffix(200))")
    }

    func test_connect_infoCarriesNatsFields() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        XCTAssertTrue(c.text.hasPrefix("INFO {"))
        let json = try JSONSerialization.jsonObject(with: Data(c.text.dropFirst(5).utf8)) as! [String: Any]
        XCTAssertEqual(json["server_id"] as? String, server.serverID)
        XCTAssertEqual((json["server_id"] as? String)?.count, 56)
        XCTAssertEqual(json["headers"] as? Bool, true)
        XCTAssertEqual(json["proto"] as? Int, 1)
        XCTAssertEqual(json["max_payload"] as? Int, 1_048_576)
        XCTAssertEqual(json["port"] as? Int, server.clientPort)
        XCTAssertNotNil(json["client_id"])
        XCTAssertEqual(json["client_ip"] as? String, "127.0.0.1")
    }

    func test_pubSub_deliversToWildcardSubscribers() throws {
        try start()
        let sub = try client()
        sub.send("SUB foo.* 1\r\nSUB foo.> 2\r\nSUB bar 3\r\n")
        sync(sub)
        let pub = try client()
        pub.send("PUB foo.x 5\r\nhello\r\nPUB foo.x.y reply.1 2\r\nhi\r\n")
        sync(pub)
        XCTAssertTrue(sub.waitFor("MSG foo.x.y 2 reply.1 2\r\nhi\r\n"))
        XCTAssertTrue(sub.text.contains("MSG foo.x 1 5\r\nhello\r\n"))
        XCTAssertTrue(sub.text.contains("MSG foo.x 2 5\r\nhello\r\n"))
        XCTAssertFalse(sub.text.contains(" 3 "))
    }

    func test_queueGroup_eachMessageToExactlyOneMember() throws {
        try start()
        let a = try client(), b = try client(), plain = try client()
        a.send("SUB work w 1\r\n"); b.send("SUB work w 1\r\n"); plain.send("SUB work 9\r\n")
        sync(a); sync(b); sync(plain)
        let pub = try client()
        let n = 200
        for i in 0..<n { pub.send("PUB work \(String(i).count)\r\n\(i)\r\n") }
        sync(pub)
        XCTAssertTrue(plain.waitFor("MSG work 9 3\r\n199\r\n"))
        sync(a); sync(b)
        let got = a.count(of: "MSG work 1 ") + b.count(of: "MSG work 1 ")
        XCTAssertEqual(got, n)
        XCTAssertGreaterThan(a.count(of: "MSG work 1 "), 0)
        XCTAssertGreaterThan(b.count(of: "MSG work 1 "), 0)
        XCTAssertEqual(plain.count(of: "MSG work 9 "), n)
    }

    func test_request_withoutResponders_gets503() throws {
        try start()
        let c = try client()
        c.send("SUB _INBOX.abc.* 1\r\nPUB service.none _INBOX.abc.1 2\r\nhi\r\n")
        XCTAssertTrue(c.waitFor("HMSG _INBOX.abc.1 1 44 44\r\nNATS/1.0 503\r\nNats-Subject: service.none\r\n\r\n\r\n"), c.text)
    }

    func test_requestReply_roundTrip() throws {
        try start()
        let responder = try client()
        responder.send("SUB svc.echo 1\r\n")
        sync(responder)
        let requester = try client()
        requester.send("SUB _INBOX.r.* 5\r\nPUB svc.echo _INBOX.r.1 4\r\nping\r\n")
        XCTAssertTrue(responder.waitFor("MSG svc.echo 1 _INBOX.r.1 4\r\nping\r\n"))
        responder.send("PUB _INBOX.r.1 4\r\npong\r\n")
        XCTAssertTrue(requester.waitFor("MSG _INBOX.r.1 5 4\r\npong\r\n"))
    }

    func test_unsubWithMax_stopsAfterMax() throws {
        try start()
        let c = try client()
        c.send("SUB t 1\r\nUNSUB 1 2\r\n")
        sync(c)
        c.send("PUB t 1\r\na\r\nPUB t 1\r\nb\r\nPUB t 1\r\nc\r\n")
        sync(c)
        XCTAssertEqual(c.count(of: "MSG t 1 1"), 2, c.text)
        XCTAssertEqual(server.sublist.count, 0)
    }

    func test_echoFalse_doesNotDeliverOwnMessages() throws {
        try start()
        let c = try client("{\"echo\":false,\"verbose\":false}")
        c.send("SUB e 1\r\nPUB e 1\r\nx\r\n")
        sync(c)
        XCTAssertFalse(c.text.contains("MSG"))
    }

    func test_headersFalseSubscriber_getsPayloadOnly() throws {
        try start()
        let old = try client("{}")
        old.send("SUB h 1\r\n")
        sync(old)
        let pub = try client()
        pub.send("HPUB h 22 27\r\nNATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n")
        XCTAssertTrue(old.waitFor("MSG h 1 5\r\nhello\r\n"), old.text)
        let modern = try client()
        modern.send("SUB h 2\r\n")
        sync(modern)
        pub.send("HPUB h 22 27\r\nNATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n")
        XCTAssertTrue(modern.waitFor("HMSG h 2 22 27\r\nNATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n"))
    }

    func test_verbose_acksEachOp() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        c.send("CONNECT {\"verbose\":true}\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"))
        XCTAssertEqual(c.count(of: "+OK\r\n"), 3)
    }

    func test_defaults_connectWithoutFlagsIsVerboseAndPedantic() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.clear()
        c.send("CONNECT {}\r\nSUB foo 1\r\nPUB foo.* 1\r\nx\r\nPUB foo 2\r\nhi\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"))
        XCTAssertEqual(c.text, "+OK\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n", c.text)
    }

    func test_badConnectJSON_closesSilently() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.clear()
        c.send("CONNECT {bad\r\n")
        XCTAssertTrue(c.waitForClose())
        XCTAssertEqual(c.text, "")
    }

    func test_invalidSubject_errorsButKeepsConnection() throws {
        try start()
        let c = try client()
        c.send("SUB foo..bar 1\r\n")
        XCTAssertTrue(c.waitFor("-ERR 'Invalid Subject'\r\n"))
        sync(c)
    }

    func test_unknownOp_errorsAndCloses() throws {
        try start()
        let c = try client()
        c.send("FOO\r\n")
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(c.text.contains("-ERR 'Unknown Protocol Operation'"))
    }

    func test_payloadOverMax_errorsAndCloses_otherClientsUnaffected() throws {
        try start { $0.maxPayload = 1024 }
        let bystander = try client()
        let c = try client()
        c.send("PUB foo 2048\r\n")
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(c.text.contains("-ERR 'Maximum Payload Violation'"))
        sync(bystander)
    }

    func test_controlLineOverLimit_errorsAndCloses() throws {
        try start()
        let c = try client()
        c.send("SUB " + String(repeating: "a", count: 5000))
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(c.text.contains("-ERR 'maximum control line exceeded'"))
    }

    func test_noRespondersWithoutHeaders_isRefused() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        c.send("CONNECT {\"no_responders\":true}\r\n")
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(c.text.contains("-ERR 'no responders requires headers support'"))
    }

    func test_tokenAuth_acceptsRightTokenRefusesWrong() throws {
        try start { $0.authToken = "s3cret" }
        let good = try RawClient(port: server.clientPort)
        XCTAssertTrue(good.waitFor("\"auth_required\":true"))
        good.send("CONNECT {\"auth_token\":\"s3cret\"}\r\nPING\r\n")
        XCTAssertTrue(good.waitFor("PONG"))
        let bad = try RawClient(port: server.clientPort)
        bad.send("CONNECT {\"auth_token\":\"nope\"}\r\nPING\r\n")
        XCTAssertTrue(bad.waitForClose())
        XCTAssertTrue(bad.text.contains("-ERR 'Authorization Violation'"))
        let early = try RawClient(port: server.clientPort)
        early.send("PUB x 0\r\n\r\n")
        XCTAssertTrue(early.waitForClose())
        XCTAssertTrue(early.text.contains("-ERR 'Authorization Violation'"))
        XCTAssertEqual(server.stats.authFailures.load(ordering: .relaxed), 2)
    }

    func test_usersList_eachUserAuthenticatesOthersRefused() throws {
        try start { $0.users = [UserConfig(user: "alice", password: "pa"), UserConfig(user: "bob", password: "pb")] }
        for (u, p, ok) in [("alice", "pa", true), ("bob", "pb", true), ("bob", "pa", false), ("eve", "pa", false)] {
            let c = try RawClient(port: server.clientPort)
            c.send("CONNECT {\"verbose\":false,\"user\":\"\(u)\",\"pass\":\"\(p)\"}\r\nPING\r\n")
            if ok {
                XCTAssertTrue(c.waitFor("PONG\r\n"), u)
            } else {
                XCTAssertTrue(c.waitForClose(), u)
                XCTAssertTrue(c.text.contains("-ERR 'Authorization Violation'"), u)
            }
        }
    }

    func test_authTimeout_closesSilentClient() throws {
        try start {
            $0.username = "u"
            $0.password = "p"
            $0.authTimeoutSeconds = 0.2
        }
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(c.text.contains("-ERR 'Authentication Timeout'"))
    }

    func test_staleConnection_closedAfterUnansweredPings() throws {
        try start {
            $0.pingIntervalSeconds = 0.1
            $0.pingMax = 2
        }
        let c = try client()
        XCTAssertTrue(c.waitForClose())
        XCTAssertEqual(c.count(of: "PING\r\n"), 2)
        XCTAssertTrue(c.text.contains("-ERR 'Stale Connection'"))
    }

    func test_slowConsumer_isDisconnectedAndCounted() throws {
        try start { $0.maxPending = 256 * 1024 }
        let slow = try client()
        slow.send("SUB flood 1\r\n")
        sync(slow)
        let pub = try client()
        let payload = String(repeating: "x", count: 8192)
        // Never read from `slow`: the kernel buffers fill, then our pending buffer.
        for _ in 0..<2000 { pub.send("PUB flood 8192\r\n\(payload)\r\n") }
        sync(pub)
        var closed = false
        for _ in 0..<100 where !closed {
            closed = server.stats.slowConsumers.load(ordering: .relaxed) == 1
            if !closed { usleep(20_000) }
        }
        XCTAssertTrue(closed)
        sync(pub)
    }

    func test_maxConnections_refusesExtraClient() throws {
        try start { $0.maxConnections = 1 }
        let first = try client()
        defer { withExtendedLifetime(first) {} }
        let extra = try RawClient(port: server.clientPort)
        XCTAssertTrue(extra.waitForClose(), extra.text)
        XCTAssertTrue(extra.text.contains("-ERR 'maximum connections exceeded'"), extra.text)
    }

    /// A health check whose answer changes between two calls (a replica catching up) is asked
    /// once per request: /healthz used to ask the failing one twice and crash on its second,
    /// healthy, answer.
    func test_healthz_asksEachCheckOnce_soAFlappingCheckCannotCrashIt() throws {
        try start()
        let calls = NIOLockedValueBox(0)
        server.healthChecks.append { _ in
            calls.withLockedValue { n in
                n += 1
                return n % 2 == 1 ? "catching up" : nil
            }
        }
        for i in 0..<4 {
            let health = try httpGet(port: server.monitoringPort, path: "/healthz")
            XCTAssertEqual(health.status, i % 2 == 0 ? 503 : 200, health.body)
        }
        XCTAssertEqual(calls.withLockedValue { $0 }, 4)
    }

    func test_monitoring_healthzVarzConnzSubszMetrics() throws {
        try start()
        let c = try client("{\"name\":\"probe\",\"lang\":\"raw\"}")
        c.send("SUB m.> 1\r\nPUB m.x 2\r\nhi\r\n")
        sync(c)
        let health = try httpGet(port: server.monitoringPort, path: "/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertTrue(health.body.contains("\"status\" : \"ok\""), health.body)
        let varz = try JSONSerialization.jsonObject(with: Data(try httpGet(port: server.monitoringPort, path: "/varz").body.utf8)) as! [String: Any]
        XCTAssertEqual(varz["server_id"] as? String, server.serverID)
        XCTAssertEqual(varz["in_msgs"] as? Int, 1)
        XCTAssertEqual(varz["out_msgs"] as? Int, 1)
        XCTAssertEqual(varz["subscriptions"] as? Int, 1)
        XCTAssertEqual(varz["connections"] as? Int, 1)
        let connz = try JSONSerialization.jsonObject(with: Data(try httpGet(port: server.monitoringPort, path: "/connz?subs=1").body.utf8)) as! [String: Any]
        let conns = connz["connections"] as! [[String: Any]]
        XCTAssertEqual(conns.first?["name"] as? String, "probe")
        XCTAssertEqual(conns.first?["subscriptions_list"] as? [String], ["m.>"])
        let subsz = try httpGet(port: server.monitoringPort, path: "/subsz?subs=1&test=m.y")
        XCTAssertTrue(subsz.body.contains("\"num_subscriptions\" : 1"))
        XCTAssertTrue(subsz.body.contains("\"subject\" : \"m.>\""))
        let routez = try httpGet(port: server.monitoringPort, path: "/routez")
        XCTAssertTrue(routez.body.contains("\"num_routes\" : 0"))
        let metrics = try httpGet(port: server.monitoringPort, path: "/metrics")
        XCTAssertTrue(metrics.body.contains("clusterd_in_msgs_total 1"), metrics.body)
        XCTAssertTrue(metrics.body.contains("clusterd_subscriptions 1"))
        XCTAssertEqual(try httpGet(port: server.monitoringPort, path: "/nope").status, 404)
    }

    func test_shutdown_flushesQueuedMessagesThenCloses() throws {
        try start()
        let sub = try client()
        sub.send("SUB s 1\r\n")
        sync(sub)
        let pub = try client()
        pub.send("PUB s 3\r\nbye\r\n")
        sync(pub)
        server.shutdown()
        XCTAssertTrue(sub.waitForClose())
        XCTAssertTrue(sub.text.contains("MSG s 1 3\r\nbye\r\n"))
    }
}
