import Logging
import NIOCore
import NIOConcurrencyHelpers
import XCTest
@testable import ClusterServer

final class InternalClientTests: XCTestCase {
    private func makeServer() throws -> NATSServer {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 1
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let s = NATSServer(options: o, logger: logger)
        try s.start()
        return s
    }

    func test_internalSubscriber_receivesClientPublishAndCanReply() throws {
        let server = try makeServer()
        defer { server.shutdown(); server.waitUntilShutdown() }
        let got = NIOLockedValueBox<[String]>([])
        let sub = server.subscribeInternal("svc.>") { msg in
            got.withLockedValue { $0.append(msg.subject + ":" + String(buffer: msg.payload)) }
            if let reply = msg.reply {
                server.publishInternal(subject: reply, payload: ByteBuffer(string: "ok"))
            }
        }
        let c = try RawClient(port: server.clientPort)
        c.send("CONNECT {\"verbose\":false}\r\nSUB _INBOX.1 1\r\nPUB svc.a _INBOX.1 2\r\nhi\r\n")
        XCTAssertTrue(c.waitFor("MSG _INBOX.1 1 2\r\nok\r\n"))
        XCTAssertEqual(got.withLockedValue { $0 }, ["svc.a:hi"])
        XCTAssertTrue(server.hasInterest("svc.b"))
        server.unsubscribeInternal(sub)
        XCTAssertFalse(server.hasInterest("svc.b"))
        XCTAssertEqual(server.publishInternal(subject: "svc.a", payload: ByteBuffer()), 0)
    }

    /// A target that repeats (a consumer's inbox) is cached from its second delivery on (the
    /// sublist's second-miss admission); a one-off target is not cached. Both reach the subscriber.
    func test_deliverAs_cachesOnlyTargetsThatRepeat() throws {
        let server = try makeServer()
        defer { server.shutdown(); server.waitUntilShutdown() }
        let got = NIOLockedValueBox(0)
        let sub = server.subscribeInternal("_INBOX.>") { _ in got.withLockedValue { $0 += 1 } }
        defer { server.unsubscribeInternal(sub) }
        let sublist = server.globalAccount.sublist
        let before = sublist.cacheCount
        XCTAssertEqual(server.deliverAs(subject: "s", to: "_INBOX.once", reply: nil, headers: nil, payload: [1]), 1)
        XCTAssertEqual(sublist.cacheCount, before)
        for _ in 0..<3 {
            XCTAssertEqual(server.deliverAs(subject: "s", to: "_INBOX.pull", reply: nil, headers: nil, payload: [1]), 1)
        }
        XCTAssertEqual(sublist.cacheCount, before + 1)
        XCTAssertEqual(got.withLockedValue { $0 }, 4)
    }
}
