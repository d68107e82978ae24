import Foundation
import Logging
import NIOConcurrencyHelpers

/// Log lines in nats-server's shape: `[pid] 2026/11/22 07:45:00.123456 [INF] message`.
/// Harnesses that start nats-server grep for these lines, so the shape is part of the
/// drop-in contract.
public struct NATSLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let sink: LogSink

    public init(level: Logger.Level, sink: LogSink) {
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        sink.write("[\(sink.pid)] \(sink.timestamp()) [\(Self.tag(level))] \(message)\n")
    }

    static func tag(_ level: Logger.Level) -> String {
        switch level {
        case .trace: return "TRC"
        case .debug: return "DBG"
        case .info, .notice: return "INF"
        case .warning: return "WRN"
        case .error: return "ERR"
        case .critical: return "FTL"
        }
    }
}

/// Where log lines go: stderr, or a file (`-l`). Serialised so lines never interleave.
public final class LogSink: @unchecked Sendable {
    private let lock = NIOLock()
    private let handle: FileHandle
    let pid = getpid()
    private let formatter: DateFormatter

    public init(path: String?) throws {
        if let path {
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(atPath: path, contents: nil)
            }
            guard let h = FileHandle(forWritingAtPath: path) else {
                throw NSError(domain: "clusterd", code: 1, userInfo: [NSLocalizedDescriptionKey: "cannot open log file \(path)"])
            }
            h.seekToEndOfFile()
            handle = h
        } else {
            handle = FileHandle.standardError
        }
        formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy/MM/dd HH:mm:ss"
    }

    /// `2026/11/22 07:45:00.123456`: DateFormatter only keeps milliseconds on Linux, so the
    /// microseconds are added by hand.
    public func timestamp() -> String {
        let now = Date()
        let micros = Int((now.timeIntervalSince1970 * 1_000_000).truncatingRemainder(dividingBy: 1_000_000))
        let base = lock.withLock { formatter.string(from: now) }
        let digits = String(micros)
        return base + "." + String(repeating: "0", count: 6 - digits.count) + digits
    }

    func write(_ line: String) {
        lock.withLock { handle.write(Data(line.utf8)) }
    }
}
