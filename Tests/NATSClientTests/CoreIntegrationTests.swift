import Foundation
import NIOCore
import XCTest
@testable import NATSClient

final class CoreIntegrationTests: IntegrationTestCase {
    func test_publish_withSubscriberOnOtherConnection_deliversInOrder() async throws {
        let sub = try await connect()
        let pub = try await connect()
        let subscription = try sub.subscribe("greet.*")
        try await sub.flush()
        for i in 0..<3 { try await pub.publish("greet.\(i)", payload: "hello \(i)") }
        try await pub.flush()
        let got = try await collect(subscription, count: 3)
        XCTAssertEqual(got.map(\.subject), ["greet.0", "greet.1", "greet.2"])
        XCTAssertEqual(got.map(\.string), ["hello 0", "hello 1", "hello 2"])
        XCTAssertEqual(sub.serverInfo?.headers, true)
    }

    func test_publish_manyMessages_arriveCompleteThroughBatchedWrites() async throws {
        let sub = try await connect()
        let pub = try await connect()
        let counter = Counter()
        let total = 20_000
        _ = try sub.subscribe("bulk") { _ in counter.increment() }
        try await sub.flush()
        let payload = [UInt8](repeating: 0x61, count: 100)
        for _ in 0..<total { try await pub.publish("bulk", payload: payload) }
        try await pub.flush()
        let received = try await counter.wait(for: total, timeout: .seconds(20))
        XCTAssertEqual(received, total)
        XCTAssertEqual(pub.statistics.outMsgs, total)
    }

    func test_subscribe_withQueueGroup_deliversEachMessageToOneMember() async throws {
        let a = try await connect()
        let b = try await connect()
        let pub = try await connect()
        let countA = Counter(), countB = Counter(), plain = Counter()
        _ = try a.subscribe("work", queue: "workers") { _ in countA.increment() }
        _ = try b.subscribe("work", queue: "workers") { _ in countB.increment() }
        _ = try a.subscribe("work") { _ in plain.increment() }
        try await a.flush()
        try await b.flush()
        for i in 0..<200 { try await pub.publish("work", payload: "\(i)") }
        try await pub.flush()
        let plainCount = try await plain.wait(for: 200)
        XCTAssertEqual(plainCount, 200)
        try await a.flush()
        try await b.flush()
        XCTAssertEqual(countA.count + countB.count, 200, "every message goes to exactly one queue member")
        XCTAssertGreaterThan(countA.count, 0)
        XCTAssertGreaterThan(countB.count, 0)
    }

    func test_request_withResponder_returnsReplyForEachConcurrentRequest() async throws {
        let responder = try await connect()
        let requester = try await connect()
        _ = try responder.subscribe("svc.upper") { msg in
            try? responder.publishNow(msg.reply!, payload: msg.string.uppercased())
        }
        try await responder.flush()
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<20 {
                group.addTask { (i, try await requester.request("svc.upper", payload: "req \(i)").string) }
            }
            for try await (i, reply) in group { XCTAssertEqual(reply, "REQ \(i)") }
        }
    }

    func test_request_withNoSubscriber_throwsNoResponders() async throws {
        let requester = try await connect()
        do {
            _ = try await requester.request("nobody.home", payload: "x", timeout: .seconds(3))
            XCTFail("expected noResponders")
        } catch let error as NATSError {
            XCTAssertEqual(error, .noResponders(subject: "nobody.home"))
        }
    }

    func test_request_withSilentSubscriber_timesOut() async throws {
        let silent = try await connect()
        let requester = try await connect()
        _ = try silent.subscribe("svc.silent") { _ in }
        try await silent.flush()
        let start = NIODeadline.now()
        do {
            _ = try await requester.request("svc.silent", payload: "x", timeout: .milliseconds(200))
            XCTFail("expected timeout")
        } catch let error as NATSError {
            XCTAssertEqual(error, .timeout)
        }
        XCTAssertLessThan(NIODeadline.now() - start, .seconds(2))
    }

    func test_unsubscribe_withMax_endsSequenceAfterMaxMessages() async throws {
        let sub = try await connect()
        let pub = try await connect()
        let subscription = try sub.subscribe("limited")
        try subscription.unsubscribe(after: 3)
        try await sub.flush()
        for i in 0..<10 { try await pub.publish("limited", payload: "\(i)") }
        try await pub.flush()
        var got: [String] = []
        for await m in subscription { got.append(m.string) }  // ends by itself after 3
        XCTAssertEqual(got, ["0", "1", "2"])
    }

    func test_unsubscribe_stopsDelivery() async throws {
        let nc = try await connect()
        let counter = Counter()
        let subscription = try nc.subscribe("stop") { _ in counter.increment() }
        try await nc.flush()
        try await nc.publish("stop", payload: "1")
        let first = try await counter.wait(for: 1)
        XCTAssertEqual(first, 1)
        try subscription.unsubscribe()
        try await nc.publish("stop", payload: "2")
        try await nc.flush()
        XCTAssertEqual(counter.count, 1)
    }

    func test_publish_withHeaders_deliversHeadersUnchanged() async throws {
        let sub = try await connect()
        let pub = try await connect()
        let subscription = try sub.subscribe("hdr")
        try await sub.flush()
        var headers: NATSHeaders = ["Nats-Msg-Id": "42", "X-Multi": "a", "x-multi": "lower", "X-Multi": "b"]
        headers.append("Empty", "")
        try await pub.publish("hdr", payload: "body", headers: headers)
        try await pub.publish("hdr", payload: "plain")
        try await pub.flush()
        let got = try await collect(subscription, count: 2)
        XCTAssertEqual(got[0].headers, headers)
        XCTAssertEqual(got[0].headers?.values(for: "X-Multi"), ["a", "b"])
        XCTAssertEqual(got[0].string, "body")
        XCTAssertNil(got[1].headers)
        XCTAssertEqual(got[1].string, "plain")
    }

    func test_publish_withInvalidInput_throwsWithoutBreakingConnection() async throws {
        let nc = try await connect()
        await assertThrows(.invalidSubject("bad subject")) { try await nc.publish("bad subject", payload: "x") }
        await assertThrows(.invalidSubject("")) { try await nc.publish("", payload: "x") }
        let tooBig = [UInt8](repeating: 0, count: 1_048_577)
        await assertThrows(.payloadTooLarge(size: 1_048_577, max: 1_048_576)) { try await nc.publish("big", payload: tooBig) }
        XCTAssertThrowsError(try nc.subscribe("a.>.b"))
        try await nc.flush()
        XCTAssertEqual(nc.status, .connected)
    }

    func test_close_thenOperations_throwConnectionClosed() async throws {
        let nc = try await connect()
        let subscription = try nc.subscribe("x")
        await nc.close()
        XCTAssertEqual(nc.status, .closed)
        await assertThrows(.connectionClosed) { try await nc.publish("x", payload: "y") }
        await assertThrows(.connectionClosed) { try await nc.flush() }
        var count = 0
        for await _ in subscription { count += 1 }
        XCTAssertEqual(count, 0, "subscription ended on close")
    }

    func test_close_withoutFlush_stillWritesEverythingBuffered() async throws {
        let sub = try await connect()
        let counter = Counter()
        _ = try sub.subscribe("close.flush") { _ in counter.increment() }
        try await sub.flush()
        let pub = try await connect()
        let payload = [UInt8](repeating: 7, count: 512)
        for _ in 0..<20_000 { try await pub.publish("close.flush", payload: payload) }
        await pub.close()
        let received = try await counter.wait(for: 20_000, timeout: .seconds(10))
        XCTAssertEqual(received, 20_000)
    }

    func test_drain_deliversPublishedMessagesThenCloses() async throws {
        let sub = try await connect()
        let pub = try await connect()
        let subscription = try sub.subscribe("drain.me")
        try await sub.flush()
        for i in 0..<100 { try await pub.publish("drain.me", payload: "\(i)") }
        try await pub.flush()
        try await sub.drain()
        XCTAssertEqual(sub.status, .closed)
        var got = 0
        for await _ in subscription { got += 1 }
        XCTAssertEqual(got, 100)
    }

    func test_connect_withNoServerListening_throwsConnectionFailed() async throws {
        let port = try NATSServerProcess.freePort()
        do {
            _ = try await NATSConnection.connect("nats://127.0.0.1:\(port)")
            XCTFail("expected failure")
        } catch let error as NATSError {
            guard case .connectionFailed = error else { return XCTFail("got \(error)") }
        }
    }

    func test_connect_withSecondServerUp_usesIt() async throws {
        let deadPort = try NATSServerProcess.freePort()
        let nc = try await NATSConnection.connect("nats://127.0.0.1:\(deadPort),\(server.url)")
        XCTAssertEqual(nc.connectedServer?.port, server.port)
        await nc.close()
    }

    func assertThrows(_ expected: NATSError, _ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async {
        do {
            try await body()
            XCTFail("expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error as? NATSError, expected, file: file, line: line)
        }
    }
}
