import Atomics
import Foundation

/// Test-only wall-clock offset (docs/chaos.md, "Clock jumps"). With `CLUSTERD_TEST_CLOCK=<file>`
/// in its environment the server adds the offset written in that file (signed milliseconds,
/// one integer) to every wall-clock read of JetStream (`JSTime.nowNanos`: message timestamps,
/// max_age and per-message TTL expiry, consumer ack_wait and redelivery, pull expiry, dedup
/// windows). It reads the file at start and again on SIGURG, so a harness can jump one
/// process's clock forward or back while it runs. Monotonic time (Raft ticks, elections, the
/// delivery lease) is never shifted. Without the variable the offset is 0 and SIGURG is not
/// trapped.
public enum TestClock {
    /// The offset file, nil unless the mode is on.
    public static let offsetFile: String? = {
        guard let v = ProcessInfo.processInfo.environment["CLUSTERD_TEST_CLOCK"], !v.isEmpty else { return nil }
        return v
    }()

    private static let offset = ManagedAtomic<Int64>(0)

    public static var isEnabled: Bool { offsetFile != nil }

    /// Nanoseconds added to the real wall clock (0 unless set by `reload`).
    public static var offsetNanos: Int64 { offset.load(ordering: .relaxed) }

    /// Reads the offset file again; a missing or empty file means no offset. Returns a line for
    /// the log, or throws when the file does not hold one integer of milliseconds.
    @discardableResult
    public static func reload() throws -> String {
        guard let path = offsetFile else { return "test clock off" }
        let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard let ms = text.isEmpty ? 0 : Int64(text), abs(ms) <= 10 * 365 * 86_400_000 else {
            throw TestClockError.badOffset(path: path, text: String(text.prefix(40)))
        }
        let old = offset.exchange(ms * 1_000_000, ordering: .relaxed)
        return "test clock: wall-clock offset \(old / 1_000_000) ms -> \(ms) ms (\(path))"
    }
}

/// The offset file held something other than one integer of milliseconds (within 10 years).
public enum TestClockError: Error, CustomStringConvertible {
    case badOffset(path: String, text: String)

    public var description: String {
        switch self {
        case let .badOffset(path, text): return "test clock: \(path) does not hold an offset in milliseconds: '\(text)'"
        }
    }
}
