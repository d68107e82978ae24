import Foundation
import Logging
import XCTest
@testable import ClusterServer
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client for byte-exact protocol tests. Reads time out (bounded waits).
final class RawClient {
    private let fd: Int32
    private(set) var received: [UInt8] = []
    private(set) var closedByPeer = false

    /// `receiveBufferBytes` shrinks the kernel's receive buffer (set before connect), so a
    /// client that never reads pushes back on the server after a few KiB, not megabytes.
    init(port: Int, timeoutMs: Int = 3000, receiveBufferBytes: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // Sends are bounded too: a server that stops reading ends the send, not the test run.
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    /// Ends the connection now (the descriptor is released in deinit).
    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Sends everything, or stops when the peer closed (returns the bytes sent).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Int {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return off }
            off += n
        }
        return off
    }

    /// Reads until `text` appears in what was received (returns true) or the read times out
    /// or the peer closes (returns false).
    @discardableResult
    func waitFor(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        while true {
            if contains(needle) { return true }
            if !readOnce() { return contains(needle) }
        }
    }

    /// Reads until `text` occurs `n` times (true) or the read times out / the peer closes.
    @discardableResult
    func waitForCount(_ text: String, _ n: Int) -> Bool {
        while true {
            if count(of: text) >= n { return true }
            if !readOnce() { return count(of: text) >= n }
        }
    }

    /// Reads until the peer closes; true if it closed before the timeout.
    func waitForClose() -> Bool {
        while readOnce() {}
        return closedByPeer
    }

    var text: String { String(decoding: received, as: UTF8.self) }

    func clear() { received.removeAll() }

    func count(of text: String) -> Int {
        let s = self.text
        return s.components(separatedBy: text).count - 1
    }

    private func readOnce() -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            received.append(contentsOf: buf[..<n])
            return true
        }
        // A reset counts as closed: the server closes with our unread bytes still queued.
        if n == 0 || (n < 0 && errno == ECONNRESET) { closedByPeer = true }
        return false
    }

    private func contains(_ needle: [UInt8]) -> Bool {
        guard needle.count <= received.count else { return false }
        let first = needle[0]
        var i = 0
        let last = received.count - needle.count
        while i <= last {
            if received[i] == first && received[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// One HTTP GET over a raw socket (no Foundation networking needed).
func httpGet(port: Int, path: String) throws -> (status: Int, body: String) {
    let c = try RawClient(port: port)
    c.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    _ = c.waitForClose()
    let text = c.text
    let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
    let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    return (status, body)
}

extension RawClient {
    /// Connects, reads INFO, sends `CONNECT <json>` and waits for the PONG; the buffer is
    /// then empty.
    static func connected(port: Int, connect json: String,
                          file: StaticString = #filePath, line: UInt = #line) throws -> RawClient {
        let c = try RawClient(port: port)
        XCTAssertTrue(c.waitFor("\r\n"), file: file, line: line)
        c.send("CONNECT \(json)\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"), "no PONG after CONNECT \(json): \(c.text)", file: file, line: line)
        c.clear()
        return c
    }

    /// A PING/PONG round trip: the server processed everything sent before it.
    func sync(file: StaticString = #filePath, line: UInt = #line) {
        let before = count(of: "PONG\r\n")
        send("PING\r\n")
        XCTAssertTrue(waitForCount("PONG\r\n", before + 1), "no PONG: \(text.suffix(200))", file: file, line: line)
    }
}

/// An in-process server on free loopback ports (client and monitoring), two event loops,
/// quiet unless a logger is given; `configure` adjusts the options first.
func startTestServer(logger: Logger? = nil, _ configure: (inout ServerOptions) -> Void = { _ in }) throws -> NATSServer {
    let server = makeTestServer(logger: logger, configure)
    try server.start()
    return server
}

/// The server `startTestServer` starts, not started yet.
func makeTestServer(logger: Logger? = nil, _ configure: (inout ServerOptions) -> Void = { _ in }) -> NATSServer {
    var o = ServerOptions()
    o.host = "127.0.0.1"
    o.port = -1
    o.httpHost = "127.0.0.1"
    o.httpPort = -1
    o.threads = 2
    configure(&o)
    var quiet = Logger(label: "test")
    quiet.logLevel = .critical
    return NATSServer(options: o, logger: logger ?? quiet)
}
