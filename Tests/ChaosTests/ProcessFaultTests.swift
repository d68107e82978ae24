import Foundation
import NATSClient
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Faults against real `clusterd` processes: kill -9 and restart, SIGSTOP/SIGCONT, SIGTERM.
/// Single-node today; the cluster profiles (partitions, power loss, quorum loss) build on
/// the same harness once clustering lands.
final class ProcessFaultTests: XCTestCase {
    private var procs: ProcessTestNodes!

    override func setUpWithError() throws {
        procs = try ProcessTestNodes(prefix: "chaos")
    }

    override func tearDown() {
        procs?.stopAll(failed: hasRecordedFailure)
    }

    /// Payloads a handler subscription received (on the event loop), read from the test.
    private final class Received: @unchecked Sendable {
        private let lock = NSLock()
        private var payloads: [String] = []
        func add(_ p: String) { lock.withLock { payloads.append(p) } }
        var all: [String] { lock.withLock { payloads } }
    }

    /// Subscribes, publishes `payload` and waits (bounded) for it to come back.
    private func roundTrip(_ c: NATSConnection, subject: String, payload: String) async throws {
        let got = Received()
        let sub = try c.subscribe(subject) { m in got.add(String(buffer: m.payload)) }
        try await c.flush()
        try await c.publish(subject, payload: payload)
        let arrived = try await ProcessTestNodes.waitUntil(seconds: 10) { !got.all.isEmpty }
        XCTAssertTrue(arrived, "nothing received on \(subject) within 10 s")
        XCTAssertEqual(got.all, [payload])
        try sub.unsubscribe()
    }

    func test_kill9ThenRestart_clientReconnectsAndTrafficFlows() async throws {
        let node = try procs.start("n1")
        var opts = NATSOptions(servers: [ServerAddress(host: "127.0.0.1", port: node.clientPort)])
        opts.reconnectWaitMin = .milliseconds(20)
        opts.reconnectWaitMax = .milliseconds(200)
        let c = try await NATSConnection.connect(opts)
        try await roundTrip(c, subject: "before", payload: "1")
        let oldPID = node.pid
        node.kill9()
        XCTAssertFalse(node.isRunning)
        XCTAssertEqual(node.process?.terminationReason, .uncaughtSignal)
        try node.start()
        XCTAssertNotEqual(node.pid, oldPID)
        try await c.waitUntilConnected(timeout: .seconds(10))
        try await roundTrip(c, subject: "after", payload: "2")
        await c.close()
    }

    func test_sigstopThenSigcont_bufferedPublishesArrive() async throws {
        let node = try procs.start("n1")
        let c = try await NATSConnection.connect(node.url)
        let got = Received()
        _ = try c.subscribe("paused") { m in got.add(String(buffer: m.payload)) }
        try await c.flush()
        node.signal(SIGSTOP)
        for i in 0..<50 { try await c.publish("paused", payload: "\(i)") }
        node.signal(SIGCONT)
        try await c.flush(timeout: .seconds(10))
        let all = try await ProcessTestNodes.waitUntil(seconds: 10) { got.all.count >= 50 }
        XCTAssertTrue(all, "received \(got.all.count) of 50")
        XCTAssertEqual(got.all, (0..<50).map(String.init))
        await c.close()
    }

    func test_sigterm_gracefulExitZeroWithNatsLogLines() throws {
        let node = try procs.start("n1")
        XCTAssertEqual(node.stop(), 0)
        let log = node.stderrText
        XCTAssertTrue(log.contains("[INF] Listening for client connections on 127.0.0.1:\(node.clientPort)"), log)
        XCTAssertTrue(log.contains("[INF] Server is ready"))
        XCTAssertTrue(log.contains("Trapped \"terminated\" signal"))
        XCTAssertTrue(log.contains("Server Exiting.."))
    }

    func test_portInUse_fatalLineAndNonZeroExit() throws {
        let first = try procs.start("n1")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try ClusterdProcess.binary())
        p.arguments = ["-a", "127.0.0.1", "-p", String(first.clientPort)]
        let pipe = Pipe()
        p.standardError = pipe
        try p.run()
        // Bounded: a second server that did start is killed and reaped, and the test fails.
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let err = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationReason, .exit, "the second server did not exit by itself: \(err)")
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertTrue(err.contains("[FTL]"), err)
    }
}
