import Foundation
import NATSClient
import NIOCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Our Swift client against a real three-node clusterd cluster: SIGTERM of the node it is on
/// sends INFO `ldm:true`; the client, which was given only that node's URL, learned the others
/// from `connect_urls`, moves to one of them, reports the move, and its subscription keeps
/// receiving.
final class LameDuckClientTests: XCTestCase {
    private var procs: ProcessTestNodes!

    override func setUpWithError() throws {
        procs = try ProcessTestNodes(prefix: "ldm")
    }

    override func tearDown() {
        procs?.stopAll(failed: hasRecordedFailure)
    }

    /// What the client saw, filled from event-loop callbacks.
    private final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var seqs: [Int] = []
        private var lameDuck: [Bool] = []
        func got(_ s: Int) { lock.lock(); seqs.append(s); lock.unlock() }
        func told(_ moving: Bool) { lock.lock(); lameDuck.append(moving); lock.unlock() }
        var received: [Int] { lock.lock(); defer { lock.unlock() }; return seqs }
        var notices: [Bool] { lock.lock(); defer { lock.unlock() }; return lameDuck }
    }

    func test_sigtermOfTheClientsNode_clientMovesByConnectURLs_andKeepsReceiving() async throws {
        let c = [try FreePort.pick(), try FreePort.pick(), try FreePort.pick()]
        for (i, name) in ["n1", "n2", "n3"].enumerated() {
            try procs.start(name, args: ["--cluster", "nats://127.0.0.1:\(c[i])", "--cluster_name", "ldm",
                                         "--routes", c.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",")])
        }
        let nodes = procs.nodes
        let (n1, n2) = (nodes[0], nodes[1])
        let rec = Recorder()
        var o = try NATSOptions(urls: [n1.url])  // only n1: the others come from connect_urls
        o.lameDuckMoveJitter = .milliseconds(100)
        o.onLameDuck = { _, moving in rec.told(moving) }
        let sub = try await NATSConnection.connect(o)
        let pub = try await NATSConnection.connect(n2.url)
        defer { Task { await sub.close(); await pub.close() } }
        let ports = Set(nodes.map(\.clientPort))
        let learned = try await ProcessTestNodes.waitUntil(seconds: 20) { Set(sub.knownServers.map(\.port)) == ports }
        XCTAssertTrue(learned, "known servers: \(sub.knownServers)")

        _ = try sub.subscribe("ldm.data") { m in if let s = Int(m.string) { rec.got(s) } }
        try await sub.flush()
        // Publish until the subscription (on n1, fed over the route) hears it.
        let publisher = Task {
            var seq = 0
            while !Task.isCancelled {
                seq += 1
                try? await pub.publish("ldm.data", payload: String(seq))
                try? await Task.sleep(nanoseconds: 5_000_000)
            }
        }
        defer { publisher.cancel() }
        let flowing = try await ProcessTestNodes.waitUntil(seconds: 20) { rec.received.count >= 20 }
        XCTAssertTrue(flowing, "received \(rec.received.count) before SIGTERM")

        n1.signal(SIGTERM)
        let moved = try await ProcessTestNodes.waitUntil(seconds: 20) {
            sub.isConnected && sub.connectedServer.map { $0.port != n1.clientPort } == true
        }
        XCTAssertTrue(moved, "connected to \(String(describing: sub.connectedServer)), status \(sub.status)")
        XCTAssertEqual(rec.notices, [true], "one lame-duck notice, with a move")
        XCTAssertEqual(sub.statistics.reconnects, 1)
        // The replayed subscription receives on the new server: messages published after the move.
        let afterMove = rec.received.max() ?? 0
        let keeps = try await ProcessTestNodes.waitUntil(seconds: 20) { rec.received.filter { $0 > afterMove }.count >= 20 }
        XCTAssertTrue(keeps, "received \(rec.received.filter { $0 > afterMove }.count) after the move")
        XCTAssertEqual(n1.stop(), 0, "SIGTERM is a clean exit: \(n1.stderrText.suffix(2000))")
    }
}
