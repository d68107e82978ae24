import Logging
import NATSClient
import NIOCore
import XCTest
@testable import ClusterServer

/// The project's own Swift client against an in-process server.
final class SwiftClientEndToEndTests: XCTestCase {
    private var server: NATSServer!

    override func setUpWithError() throws {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 2
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = NATSServer(options: o, logger: logger)
        try server.start()
    }

    override func tearDown() {
        server.shutdown()
        server.waitUntilShutdown()
    }

    private func connect() async throws -> NATSConnection {
        try await NATSConnection.connect("nats://127.0.0.1:\(server.clientPort)")
    }

    func test_publishSubscribe_inOrder() async throws {
        let sub = try await connect()
        let pub = try await connect()
        let messages = try sub.subscribe("orders.>")
        try await sub.flush()
        for i in 0..<100 { try await pub.publish("orders.eu", payload: "m\(i)") }
        try await pub.flush()
        var got: [String] = []
        for await m in messages {
            got.append(String(buffer: m.payload))
            if got.count == 100 { break }
        }
        XCTAssertEqual(got, (0..<100).map { "m\($0)" })
        await sub.close()
        await pub.close()
    }

    func test_requestReply_andNoResponders() async throws {
        let responder = try await connect()
        let requester = try await connect()
        let handler = try responder.subscribe("svc.upper")
        let task = Task {
            for await m in handler {
                try? await responder.respond(to: m, payload: String(buffer: m.payload).uppercased())
            }
        }
        try await responder.flush()
        let reply = try await requester.request("svc.upper", payload: "hello", timeout: .seconds(5))
        XCTAssertEqual(String(buffer: reply.payload), "HELLO")
        do {
            _ = try await requester.request("svc.nobody", payload: "x", timeout: .seconds(5))
            XCTFail("expected no responders")
        } catch let error as NATSError {
            XCTAssertEqual(error, .noResponders(subject: "svc.nobody"))
        }
        task.cancel()
        await responder.close()
        await requester.close()
    }

    func test_headers_roundTripCaseAndMultiValues() async throws {
        let c = try await connect()
        let sub = try c.subscribe("h")
        try await c.flush()
        var headers = NATSHeaders()
        headers.append("X-Trace", "a")
        headers.append("X-Trace", "b")
        headers.append("lower", "c")
        try await c.publish("h", payload: "body", headers: headers)
        var it = sub.makeAsyncIterator()
        let m = await it.next()
        XCTAssertEqual(m?.headers?.values(for: "X-Trace"), ["a", "b"])
        XCTAssertEqual(m?.headers?.values(for: "lower"), ["c"])
        XCTAssertEqual(m.map { String(buffer: $0.payload) }, "body")
        await c.close()
    }
}
