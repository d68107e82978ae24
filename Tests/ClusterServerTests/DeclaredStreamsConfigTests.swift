import Foundation
import ServerConfig
import XCTest
@testable import ClusterServer

/// The `streams` config list, the pure reconcile decisions, and the hosts-file seam.
final class DeclaredStreamsConfigTests: XCTestCase {
    private func load(_ text: String) throws -> ServerOptions {
        let root = try ConfigParser().parse(text, fileName: "test.conf")
        var warnings: [String] = []
        return try ConfigLoader.map(root, into: ServerOptions(), warnings: &warnings)
    }

    private func json(_ s: DeclaredStream) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(s.configJSON))) as? [String: Any] ?? [:]
    }

    private func loadError(_ text: String) -> String {
        do {
            _ = try load(text)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func test_streams_mapToStreamConfigJSON() throws {
        let o = try load("""
        jetstream { store_dir: /data }
        streams: [
          { name: ORDERS, subjects: ["orders.>"], storage: file, retention: limits, num_replicas: 3,
            max_age: "72h", duplicate_window: "2m", max_bytes: 1GB, max_msg_size: "1M", max_msgs: 1000000,
            discard: old, allow_direct: true, metadata: { Owner: "team-a" } }
          { NAME: events, Subjects: ["ev.*"], max_age: 3600000000000, max_bytes: "1GiB" }
        ]
        """)
        XCTAssertEqual(o.declaredStreams.map(\.name), ["ORDERS", "events"])
        let orders = json(o.declaredStreams[0])
        XCTAssertEqual(orders["subjects"] as? [String], ["orders.>"])
        XCTAssertEqual(orders["storage"] as? String, "file")
        XCTAssertEqual((orders["num_replicas"] as? NSNumber)?.intValue, 3)
        XCTAssertEqual((orders["max_age"] as? NSNumber)?.int64Value, 72 * 3600 * 1_000_000_000)
        XCTAssertEqual((orders["duplicate_window"] as? NSNumber)?.int64Value, 120 * 1_000_000_000)
        XCTAssertEqual((orders["max_bytes"] as? NSNumber)?.int64Value, 1_073_741_824, "1GB is binary in this format")
        XCTAssertEqual((orders["max_msg_size"] as? NSNumber)?.int64Value, 1_048_576)
        XCTAssertEqual(orders["allow_direct"] as? Bool, true)
        XCTAssertEqual(orders["metadata"] as? [String: String], ["Owner": "team-a"], "nested keys keep their case")
        let events = json(o.declaredStreams[1])
        XCTAssertEqual(events["name"] as? String, "events", "top-level keys are case-insensitive")
        XCTAssertEqual(events["subjects"] as? [String], ["ev.*"])
        XCTAssertEqual((events["max_age"] as? NSNumber)?.int64Value, 3_600_000_000_000)
        XCTAssertEqual((events["max_bytes"] as? NSNumber)?.int64Value, 1_073_741_824, "quoted unquoted-style size (Helm renders strings)")
    }

    func test_streams_badInput_isAClearError() {
        XCTAssertTrue(loadError("streams: { name: A }").contains("expected a list"))
        XCTAssertTrue(loadError("streams: [ A ]").contains("streams[0]: expected a block"))
        XCTAssertTrue(loadError("streams: [ { subjects: [a] } ]").contains("needs a name"))
        XCTAssertTrue(loadError("streams: [ { name: 5 } ]").contains("needs a name"))
        XCTAssertTrue(loadError("streams: [ { name: \"a.b\" } ]").contains("can not contain '.'"))
        XCTAssertTrue(loadError("streams: [ { name: \"a b\" } ]").contains("whitespace"))
        XCTAssertTrue(loadError("streams: [ { name: \">\" } ]").contains("can not contain '>'"))
        XCTAssertTrue(loadError("streams: [ { name: A }, { name: A } ]").contains("declared twice"))
        // The nats format's trap: an unquoted 2m is the size 2,000,000.
        let trap = loadError("streams: [ { name: A, max_age: 2m } ]")
        XCTAssertTrue(trap.contains("streams[0].max_age") && trap.contains("quoted"), trap)
        XCTAssertTrue(loadError("streams: [ { name: A, max_age: -5 } ]").contains("negative"))
        XCTAssertTrue(loadError("streams: [ { name: A, max_age: true } ]").contains("duration string"))
        XCTAssertTrue(loadError("streams: [ { name: A, max_age: \"soon\" } ]").contains("max_age"))
        XCTAssertTrue(loadError("streams: [ { name: A, max_bytes: \"lots\" } ]").contains("max_bytes"))
    }

    func test_plan_decisions() {
        typealias P = DeclaredStreamPlan
        XCTAssertEqual(P.next(after: .info, reply: .error(code: 404, errCode: 10059, description: "stream not found"), configBefore: nil),
                       .call(.create))
        XCTAssertEqual(P.next(after: .info, reply: .ok(config: "{a}"), configBefore: "{a}"), .call(.update))
        XCTAssertEqual(P.next(after: .create, reply: .ok(config: "{a}"), configBefore: nil), .done(.created))
        XCTAssertEqual(P.next(after: .create, reply: .error(code: 400, errCode: 10058, description: "in use"), configBefore: nil),
                       .call(.update), "a peer created it first")
        XCTAssertEqual(P.next(after: .update, reply: .ok(config: "{a}"), configBefore: "{a}"), .done(.unchanged))
        XCTAssertEqual(P.next(after: .update, reply: .ok(config: "{b}"), configBefore: "{a}"), .done(.updated))
        for transient in [P.Reply.noResponders, .timeout, .error(code: 503, errCode: 10008, description: "JetStream system temporarily unavailable"),
                          .error(code: 408, errCode: 0, description: "timeout"),
                          .error(code: 400, errCode: 10005, description: "no suitable peers for placement"),
                          .error(code: 500, errCode: 10009, description: "JetStream cluster can not handle request"),
                          .error(code: 500, errCode: 10118, description: "stream is offline")] {
            guard case .retry = P.next(after: .create, reply: transient, configBefore: nil) else {
                return XCTFail("\(transient) must be retried")
            }
        }
        for definitive in [P.Reply.error(code: 500, errCode: 10052, description: "stream configuration update can not change storage"),
                           .error(code: 400, errCode: 10025, description: "invalid JSON"), .malformed("not a JSON object"),
                           .error(code: 404, errCode: 10059, description: "stream not found")] {
            guard case let .failed(reason) = P.next(after: .update, reply: definitive, configBefore: nil) else {
                return XCTFail("\(definitive) is definitive")
            }
            XCTAssertFalse(reason.isEmpty)
        }
        XCTAssertEqual(P.backoff(attempt: 1, initial: 0.25, maximum: 5), 0.25)
        XCTAssertEqual(P.backoff(attempt: 3, initial: 0.25, maximum: 5), 1)
        XCTAssertEqual(P.backoff(attempt: 100, initial: 0.25, maximum: 5), 5)
    }

    func test_plan_decode() {
        typealias P = DeclaredStreamPlan
        XCTAssertEqual(P.decode(.message(headers: nil, payload: Array(#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#.utf8))),
                       .error(code: 404, errCode: 10059, description: "stream not found"))
        XCTAssertEqual(P.decode(.message(headers: nil, payload: Array(#"{"config":{"b":1,"a":"x"},"state":{}}"#.utf8))),
                       .ok(config: #"{"a":"x","b":1}"#))
        XCTAssertEqual(P.decode(.message(headers: nil, payload: Array("[1]".utf8))), .malformed("not a JSON object"))
        XCTAssertEqual(P.decode(.timeout), .timeout)
        XCTAssertEqual(P.decode(.noResponders), .noResponders)
    }

    func test_hostsFile_parse() throws {
        let map = try HostsFile.parse("""
        # test overrides
        127.0.0.2  clusterd-0.clusterd-headless  clusterd-0.clusterd-headless.default.svc.cluster.local
        127.0.0.3\tClusterd-1.clusterd-headless   # trailing comment
        ::1 six
        127.0.0.9 clusterd-0.clusterd-headless
        """)
        XCTAssertEqual(map["clusterd-0.clusterd-headless"], "127.0.0.2", "first line wins")
        XCTAssertEqual(map["clusterd-0.clusterd-headless.default.svc.cluster.local"], "127.0.0.2")
        XCTAssertEqual(map["clusterd-1.clusterd-headless"], "127.0.0.3", "names are case-insensitive")
        XCTAssertEqual(map["six"], "::1")
        XCTAssertThrowsError(try HostsFile.parse("not-an-ip name")) { XCTAssertTrue("\($0)".contains("hosts:1")) }
        XCTAssertThrowsError(try HostsFile.parse("\n127.0.0.1")) { XCTAssertTrue("\($0)".contains("hosts:2: address 127.0.0.1 names no host")) }
    }
}
