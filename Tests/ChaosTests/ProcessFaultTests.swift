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
        procs?.stopAll()
    }

    private func roundTrip(_ c: NATSConnection, subject: String, payload: String) async throws {
        let sub = try c.subscribe(subject)
        try await c.flush()
        try await c.publish(subject, payload: payload)
        var it = sub.makeAsyncIterator()
        let m = await it.next()
        XCTAssertEqual(m.map { String(buffer: $0.payload) }, payload)
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
        let sub = try c.subscribe("paused")
        try await c.flush()
        node.signal(SIGSTOP)
        for i in 0..<50 { try await c.publish("paused", payload: "\(i)") }
        node.signal(SIGCONT)
        try await c.flush(timeout: .seconds(10))
        var got: [String] = []
        for await m in sub {
            got.append(String(buffer: m.payload))
            if got.count == 50 { break }
        }
        XCTAssertEqual(got, (0..<50).map(String.init))
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
        p.waitUntilExit()
        let err = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertTrue(err.contains("[FTL]"), err)
    }
}
