import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One `clusterd` child process with its own ports and store directory. Always reaped:
/// `stop()` in tearDown, and the harness kills by PID (never by name).
final class ClusterdProcess {
    let name: String
    let clientPort: Int
    let httpPort: Int
    let storeDir: URL
    private let binary: String
    private(set) var process: Process?
    private var stderrData = Data()
    private let stderrLock = NSLock()
    /// Signalled by the stderr reader at end of file: every line the current run wrote is in
    /// `stderrData` (a process that has exited may still have lines in the pipe).
    private var stderrClosed: DispatchSemaphore?

    init(name: String, binary: String, storeDir: URL) throws {
        self.name = name
        self.binary = binary
        self.storeDir = storeDir
        self.clientPort = try FreePort.pick()
        self.httpPort = try FreePort.pick()
    }

    /// The clusterd binary: $CLUSTERD_BIN, or .build/debug/clusterd beside this package.
    static func binary() throws -> String {
        if let p = ProcessInfo.processInfo.environment["CLUSTERD_BIN"], FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        let p = dir.appendingPathComponent(".build/debug/clusterd").path
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw HarnessError("clusterd binary not found (build it, or set CLUSTERD_BIN)")
        }
        return p
    }

    var url: String { "nats://127.0.0.1:\(clientPort)" }
    /// `num_routes` from `/routez`; -1 when it does not answer.
    var routeCount: Int {
        guard let r = try? HTTP.get(port: httpPort, path: "/routez"),
              let json = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any] else { return -1 }
        return json["num_routes"] as? Int ?? -1
    }
    var pid: Int32? { process?.processIdentifier }
    var isRunning: Bool { process?.isRunning ?? false }

    var stderrText: String {
        stderrLock.lock(); defer { stderrLock.unlock() }
        return String(decoding: stderrData, as: UTF8.self)
    }

    /// The last `count` characters of what the process wrote to stderr (for failure messages).
    func stderrTail(_ count: Int = 3000) -> String {
        String(stderrText.suffix(count))
    }

    /// Starts the process and waits (bounded) until it is ready (`waitReady`).
    func start(extraArgs: [String] = []) throws {
        precondition(process == nil || !(process!.isRunning), "\(name) already running")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["-a", "127.0.0.1", "-p", String(clientPort), "-m", String(httpPort), "--http_host", "127.0.0.1",
                       "-n", name] + extraArgs
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = FileHandle.nullDevice
        let closed = DispatchSemaphore(value: 0)
        // Blocking reads on a thread of their own, not `readabilityHandler`: tearing down that
        // handler's dispatch read source races the descriptor's close and has crashed the test
        // process in libdispatch (`_dispatch_event_loop_drain`, a known corelibs race; seen once
        // in CI here). A blocking read registers nothing with libdispatch; end of file ends it.
        let reader = pipe.fileHandleForReading
        Thread { [weak self] in
            var buf = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(reader.fileDescriptor, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break } // end of file (or an error: nothing more to read)
                guard let self else { continue } // keep draining so the child never blocks on stderr
                self.stderrLock.lock(); self.stderrData.append(contentsOf: buf[..<n]); self.stderrLock.unlock()
            }
            closed.signal()
        }.start()
        let logStart = stderrLock.withLock { stderrData.count }
        try p.run()
        process = p
        stderrClosed = closed
        try waitReady(logFrom: logStart)
    }

    /// Waits (bounded) until this run logged "Server is ready" (logged once every listener is
    /// bound) and `/healthz?js-server-only=true` answers 200 (a clustered JetStream node's plain
    /// `/healthz` waits for a meta leader, which needs the nodes started after it). The log line is the process's own, so a listener of
    /// another process on one of its ports cannot pass for it; and a node that loses a port
    /// exits before logging it, which is reported here with its log.
    private func waitReady(logFrom logStart: Int, timeoutSeconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let p = process, !p.isRunning {
                awaitStderrEOF()
                throw HarnessError("\(name) exited with \(p.terminationStatus) during start: \(stderrTail())")
            }
            let log = stderrLock.withLock { stderrData.count > logStart ? Data(stderrData[logStart...]) : Data() }
            if String(decoding: log, as: UTF8.self).contains("[INF] Server is ready"),
               (try? HTTP.get(port: httpPort, path: "/healthz?js-server-only=true").status) == 200 {
                return
            }
            usleep(50_000)
        }
        throw HarnessError("\(name) not ready within \(timeoutSeconds)s: \(stderrTail())")
    }

    /// After the process exited: waits (bounded) until its stderr is read to the end, so
    /// `stderrText` holds its last lines ("Server Exiting..").
    private func awaitStderrEOF() {
        guard let closed = stderrClosed else { return }
        stderrClosed = nil
        _ = closed.wait(timeout: .now() + 5) // bounded: a descendant may hold the pipe open
    }

    func signal(_ sig: Int32) {
        guard let pid, isRunning else { return }
        kill(pid, sig)
    }

    /// kill -9 and wait for the exit (reaped by Foundation's Process).
    func kill9() {
        signal(SIGKILL)
        process?.waitUntilExit()
        awaitStderrEOF()
    }

    /// SIGTERM, bounded wait, then SIGKILL. Returns the exit status.
    @discardableResult
    func stop(timeoutSeconds: Double = 10) -> Int32 {
        guard let p = process else { return 0 }
        if p.isRunning {
            kill(p.processIdentifier, SIGCONT)  // a paused process cannot handle SIGTERM
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(timeoutSeconds)
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
            }
        }
        p.waitUntilExit()
        awaitStderrEOF()
        return p.terminationStatus
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

enum FreePort {
    private static let lock = NSLock()
    /// Every port handed out in this process: the kernel may give a port again as soon as the
    /// probing socket closes, so two nodes of one test could otherwise share one.
    private static var handedOut: Set<Int> = []
    /// Ports below the kernel's ephemeral range (ip_local_port_range): the kernel never picks
    /// them for an outgoing connection's source port or a bind to port 0, so no client of another
    /// process takes one between the pick and the node's bind, or while a node restarts on it
    /// (the compat and chaos harnesses pick from the same range). nil: let the kernel choose.
    private static let listenRange: ClosedRange<Int>? = {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
              let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap({ Int($0) }),
              low > 12000 else { return nil }
        return 10000...(low - 1)
    }()

    /// A TCP port that was free on 127.0.0.1 a moment ago and was never handed out before in
    /// this process (bounded retries). Which free port is environment, not test logic: the
    /// choice is not seeded.
    static func pick() throws -> Int {
        for _ in 0..<1000 {
            guard let port = try bindable(listenRange.map { Int.random(in: $0) } ?? 0) else { continue }
            if lock.withLock({ handedOut.insert(port).inserted }) { return port }
        }
        throw HarnessError("no fresh free port after 1000 tries")
    }

    /// Binds `port` (0: the kernel chooses) on loopback; the bound port, or nil if it is taken.
    private static func bindable(_ port: Int) throws -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { ptr -> Bool in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        return ok ? Int(UInt16(bigEndian: addr.sin_port)) : nil
    }
}

enum HTTP {
    /// A GET over a raw socket with a 2 s receive timeout.
    static func get(port: Int, path: String) throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw HarnessError("connect failed") }
        let req = Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data.append(contentsOf: buf[..<n])
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, text.components(separatedBy: "\r\n\r\n").dropFirst().joined())
    }
}
