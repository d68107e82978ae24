import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServerConfig
import XCTest
@testable import ClusterServer

/// Declared streams against a real in-process server: everything goes through the
/// `$JS.API` request path (`requestInternal`), as it will against the clustered JetStream.
final class DeclarativeStreamsTests: XCTestCase {
    private let fast = DeclarativeStreams.Timing(requestTimeout: 2, initialBackoff: 0.02, maxBackoff: 0.1)

    private func declared(_ text: String) throws -> [DeclaredStream] {
        try DeclaredStreamsParser.parse(ConfigParser().parse("streams: \(text)", fileName: "t.conf")["streams"]!)
    }

    /// A started server; with a store directory JetStream is configured but not started, so
    /// the test decides when `$JS.API` starts answering.
    private func startServer(storeDirectory: String?) throws -> NATSServer {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 1
        o.jetStream = storeDirectory != nil
        o.storeDirectory = storeDirectory
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = NATSServer(options: o, logger: logger)
        try server.start()
        return server
    }

    /// Polls (bounded, 5 s) until every named stream left `.pending`.
    private func settle(_ d: DeclarativeStreams, _ names: [String]) -> [String: DeclarativeStreams.State] {
        for _ in 0..<2500 {
            let s = d.snapshot
            let pending = names.contains { name in
                guard let st = s[name] else { return true }
                if case .pending = st { return true }
                return false
            }
            if !pending { return s }
            usleep(2000)
        }
        return d.snapshot
    }

    func test_createThenUnchangedThenUpdated_throughTheAPI() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        let d = DeclarativeStreams(server: h.server, timing: fast)
        defer { d.stop() }
        let v1 = try declared(#"[ { name: ORDERS, subjects: ["orders.>"], max_age: "1h" }, { name: LOGS, storage: memory } ]"#)
        d.apply(v1)
        XCTAssertEqual(settle(d, ["ORDERS", "LOGS"]), ["ORDERS": .done(.created), "LOGS": .done(.created)])
        let info = h.api("STREAM.INFO.ORDERS")["config"] as? [String: Any]
        XCTAssertEqual(info?["subjects"] as? [String], ["orders.>"])
        XCTAssertEqual((info?["max_age"] as? NSNumber)?.int64Value, 3_600_000_000_000)
        XCTAssertEqual((h.api("STREAM.INFO.LOGS")["config"] as? [String: Any])?["storage"] as? String, "memory")
        XCTAssertEqual(intValue(h.publish("orders.1", "x"), "seq"), 1, "the declared stream captures its subjects")

        // The same declaration again (a restart, another node): nothing changes.
        d.apply(v1)
        XCTAssertEqual(settle(d, ["ORDERS", "LOGS"]), ["ORDERS": .done(.unchanged), "LOGS": .done(.unchanged)])
        XCTAssertEqual(intValue(h.streamState("ORDERS"), "messages"), 1)

        // A changed declaration updates the stream in place and keeps its messages.
        d.apply(try declared(#"[ { name: ORDERS, subjects: ["orders.>", "returns.>"], max_age: "2h" } ]"#))
        XCTAssertEqual(settle(d, ["ORDERS"]), ["ORDERS": .done(.updated)])
        let updated = h.api("STREAM.INFO.ORDERS")["config"] as? [String: Any]
        XCTAssertEqual(updated?["subjects"] as? [String], ["orders.>", "returns.>"])
        XCTAssertEqual((updated?["max_age"] as? NSNumber)?.int64Value, 7_200_000_000_000)
        XCTAssertEqual(intValue(h.streamState("ORDERS"), "messages"), 1)
        XCTAssertTrue(d.prometheusText().contains("clusterd_declared_streams{state=\"ready\"} 1"))
    }

    func test_definitiveRefusal_isReportedAndTheNextStreamStillApplied() throws {
        let h = try JSHarness()
        defer { h.stop(); h.removeFiles() }
        let d = DeclarativeStreams(server: h.server, timing: fast)
        defer { d.stop() }
        _ = h.createStream(#"{"name":"MEM","subjects":["mem.>"],"storage":"memory"}"#)
        d.apply(try declared(#"""
        [ { name: BAD, retention: sometimes },
          { name: MEM, subjects: ["mem.>"], storage: file },
          { name: CLASH, subjects: ["mem.x"] },
          { name: GOOD, subjects: ["good.>"] } ]
        """#))
        let s = settle(d, ["BAD", "MEM", "CLASH", "GOOD"])
        guard case let .failed(bad)? = s["BAD"], case let .failed(mem)? = s["MEM"], case let .failed(clash)? = s["CLASH"] else {
            return XCTFail("expected failures, got \(s)")
        }
        XCTAssertTrue(bad.contains("STREAM.CREATE refused"), bad)
        XCTAssertTrue(mem.contains("STREAM.UPDATE refused") && mem.contains("10052"), mem)
        XCTAssertTrue(clash.contains("10065"), clash)
        XCTAssertEqual(s["GOOD"], .done(.created))
        XCTAssertTrue(d.prometheusText().contains("clusterd_declared_streams{state=\"failed\"} 3"))
    }

    func test_retriesUntilJetStreamAnswers() throws {
        let dir = NSTemporaryDirectory() + "declared-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try startServer(storeDirectory: dir)
        defer { server.shutdown(); server.waitUntilShutdown() }
        let d = DeclarativeStreams(server: server, timing: fast)
        defer { d.stop() }
        d.apply(try declared(#"[ { name: LATE, subjects: ["late.>"] } ]"#))
        // No JetStream yet: no responders, retried with backoff.
        var attempts = 0
        for _ in 0..<2500 where attempts < 3 {
            if case let .pending(n)? = d.snapshot["LATE"] { attempts = n }
            usleep(2000)
        }
        XCTAssertGreaterThanOrEqual(attempts, 3)
        let js = JetStreamService(server: server)
        try js.start()
        XCTAssertEqual(settle(d, ["LATE"]), ["LATE": .done(.created)])
    }

    func test_requestInternal_noRespondersAndTimeout() throws {
        let server = try startServer(storeDirectory: nil)
        defer { server.shutdown(); server.waitUntilShutdown() }
        let got = NIOLockedValueBox<[String]>([])
        server.requestInternal(subject: "nobody.home", payload: [], timeout: 5) { r in
            got.withLockedValue { $0.append("\(r)") }
        }
        let silent = server.subscribeInternal("silent") { _ in }
        defer { server.unsubscribeInternal(silent) }
        server.requestInternal(subject: "silent", payload: [], timeout: 0.05) { r in got.withLockedValue { $0.append("\(r)") } }
        let echo = server.subscribeInternal("echo") { msg in
            if let reply = msg.reply { server.publishInternal(subject: reply, payload: msg.payload) }
        }
        defer { server.unsubscribeInternal(echo) }
        server.requestInternal(subject: "echo", payload: Array("hi".utf8), timeout: 5) { r in got.withLockedValue { $0.append("\(r)") } }
        for _ in 0..<1500 where got.withLockedValue({ $0.count }) < 3 { usleep(2000) }
        let results = got.withLockedValue { $0 }.sorted()
        XCTAssertEqual(results.count, 3)
        XCTAssertTrue(results.contains("noResponders"))
        XCTAssertTrue(results.contains("timeout"))
        XCTAssertTrue(results.contains { $0.contains("message") && $0.contains("[104, 105]") }, "\(results)")
    }
}
