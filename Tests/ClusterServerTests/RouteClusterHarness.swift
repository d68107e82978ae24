import Foundation
import Logging
import NIOConcurrencyHelpers
import XCTest
@testable import ClusterServer
#if canImport(Glibc)
import Glibc
#endif

/// Keeps log lines of a test server so tests can assert on what an operator would read.
final class CapturedLog: @unchecked Sendable {
    private let lock = NIOLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    func contains(_ text: String) -> Bool { lock.withLock { lines.contains { $0.contains(text) } } }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        log.append("[\(level)] \(message)")
    }
}

/// Starts in-process nodes on free loopback ports and tears them all down.
final class RouteCluster {
    private(set) var nodes: [NATSServer] = []
    private(set) var logs: [CapturedLog] = []

    /// Starts one node with the given seed routes (`nats://127.0.0.1:P`) and cluster port
    /// (-1 = any free port).
    @discardableResult
    func start(name: String, clusterName: String? = "test", clusterPort: Int = -1, routes: [Int] = [],
               logLevel: Logger.Level = .info, configure: (inout ServerOptions) -> Void = { _ in }) throws -> NATSServer {
        var o = ServerOptions()
        o.serverName = name
        o.host = "127.0.0.1"
        o.port = -1
        o.httpHost = "127.0.0.1"
        o.httpPort = -1
        o.threads = 2
        o.clusterName = clusterName
        o.clusterHost = "127.0.0.1"
        o.clusterPort = clusterPort
        o.routes = routes.map { "nats://127.0.0.1:\($0)" }
        configure(&o)
        let log = CapturedLog()
        let logger = Logger(label: name) { _ in CapturingLogHandler(log: log, logLevel: logLevel) }
        let server = NATSServer(options: o, logger: logger)
        try server.start()
        nodes.append(server)
        logs.append(log)
        return server
    }

    /// Stops one node (as a crash would end its routes) and forgets it.
    func stop(_ server: NATSServer) {
        server.shutdown()
        server.waitUntilShutdown()
        if let i = nodes.firstIndex(where: { $0 === server }) {
            nodes.remove(at: i)
            logs.remove(at: i)
        }
    }

    func stopAll() {
        for n in nodes.reversed() {
            n.shutdown()
            n.waitUntilShutdown()
        }
        nodes.removeAll()
        logs.removeAll()
    }

    /// True once every node has a route to every other node.
    var isFullMesh: Bool {
        let ids = Set(nodes.map(\.serverID))
        return nodes.allSatisfy { n in Set(n.routeManager?.peerIDs ?? []) == ids.subtracting([n.serverID]) }
    }

    func waitForFullMesh(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(waitUntil { self.isFullMesh }, "mesh did not form: \(nodes.map { $0.routeManager?.peerIDs.count ?? 0 })",
                      file: file, line: line)
    }
}

/// Polls `condition` every 10 ms until it holds (true) or `seconds` pass (false).
func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A TCP port that was free a moment ago (bind to 0, read, close).
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}
