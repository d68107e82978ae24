import Foundation
import XCTest
@testable import ClusterServer

/// Hostile clients that try to make the server hold more and more memory: each is cut off
/// (or refused) by a limit, and a well-behaved client on the same server keeps working.
final class ResourceLimitTests: XCTestCase {
    private var server: NATSServer!

    private func start(_ configure: (inout ServerOptions) -> Void = { _ in }) throws {
        server = try startTestServer(configure)
    }

    override func tearDown() {
        server?.shutdown()
        server?.waitUntilShutdown()
        server = nil
    }

    private func client(receiveBufferBytes: Int32? = nil) throws -> RawClient {
        let c = try RawClient(port: server.clientPort, receiveBufferBytes: receiveBufferBytes)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"), "no PONG after CONNECT: \(c.text)")
        c.clear()
        return c
    }

    /// A bystander publishes to itself: the server still serves other clients.
    private func assertOthersStillServed(file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try client()
        c.send("SUB alive 1\r\nPUB alive 2\r\nok\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("MSG alive 1 2\r\nok\r\n"), "bystander not served: \(c.text)", file: file, line: line)
    }

    private var subscriptionCount: Int { server.sublist.count }

    func test_thousandsOfSubscriptions_pastMaxSubscriptions_areRefusedAndTheConnectionStays() throws {
        try start { $0.maxSubscriptions = 100 }
        let c = try client()
        var burst = ""
        for i in 0..<5000 { burst += "SUB flood.\(i) \(i)\r\n" }
        c.send(burst + "PING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"), "connection closed: \(c.text.suffix(200))")
        XCTAssertEqual(c.count(of: "-ERR 'maximum subscriptions exceeded'\r\n"), 4900)
        XCTAssertEqual(subscriptionCount, 100)
        // Room again after an UNSUB: the limit counts what is held, not what was asked.
        c.clear()
        c.send("UNSUB 0\r\nSUB again 9999\r\nPUB again 1\r\nx\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"))
        XCTAssertTrue(c.text.contains("MSG again 9999 1\r\nx\r\n"), c.text)
        XCTAssertFalse(c.text.contains("-ERR"), c.text)
        try assertOthersStillServed()
    }

    func test_pubHeaderAnnouncing64MiB_isRefusedBeforeAnyPayloadArrives() throws {
        try start()
        let c = try client()
        // No payload follows: the error must come from the header alone (nothing buffered).
        c.send("PUB big \(64 * 1_048_576)\r\n")
        XCTAssertTrue(c.waitForClose())
        XCTAssertEqual(c.text, "-ERR 'Maximum Payload Violation'\r\n")
        let h = try client()
        h.send("HPUB big 12 \(64 * 1_048_576)\r\n")
        XCTAssertTrue(h.waitForClose())
        XCTAssertEqual(h.text, "-ERR 'Maximum Payload Violation'\r\n")
        try assertOthersStillServed()
    }

    func test_endlessControlLine_isCutAtMaxControlLine() throws {
        try start()
        let c = try client()
        // 1 MiB without a newline: refused once 4 KiB are buffered, not after the whole line.
        let sent = c.send(Array("SUB ".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20))
        XCTAssertTrue(c.waitForClose())
        XCTAssertEqual(c.text, "-ERR 'maximum control line exceeded'\r\n")
        XCTAssertGreaterThan(sent, 4096)
        try assertOthersStillServed()
    }

    func test_subscriberThatNeverReads_isCutOffAsSlowConsumer() throws {
        try start { $0.maxPending = 256 * 1024 }
        let slow = try client(receiveBufferBytes: 4096)
        slow.send("SUB firehose 1\r\nPING\r\n")
        XCTAssertTrue(slow.waitFor("PONG\r\n"))
        // From here on `slow` reads nothing. 32 MiB in 16 KiB messages: far more than the
        // socket buffers and max_pending together.
        let publisher = try client()
        let payload = String(repeating: "p", count: 16 * 1024)
        let message = Array("PUB firehose \(payload.utf8.count)\r\n\(payload)\r\n".utf8)
        var batch: [UInt8] = []
        for _ in 0..<64 { batch += message }
        for _ in 0..<32 { publisher.send(batch) }
        XCTAssertTrue(waitUntil { self.server.stats.slowConsumers.load(ordering: .relaxed) == 1 })
        XCTAssertTrue(slow.waitForClose(), "slow consumer still connected")
        // The publisher was never blocked or closed by its reader's slowness.
        publisher.send("PING\r\n")
        XCTAssertTrue(publisher.waitFor("PONG\r\n"))
        try assertOthersStillServed()
    }

    func test_pingFloodWithoutReading_isCutOffAtMaxPending() throws {
        try start { $0.maxPending = 64 * 1024 }
        let flooder = try client(receiveBufferBytes: 4096)
        // 2M PINGs = 12 MiB of PONGs the client never reads: more than the kernel buffers
        // hold, so the PONGs pile up in the server until max_pending cuts the client off.
        let pings = Array(String(repeating: "PING\r\n", count: 100_000).utf8)
        for _ in 0..<20 where flooder.send(pings) == pings.count {}
        XCTAssertTrue(waitUntil { self.server.stats.slowConsumers.load(ordering: .relaxed) == 1 })
        XCTAssertTrue(flooder.waitForClose(), "PING flooder still connected")
        try assertOthersStillServed()
    }
}
