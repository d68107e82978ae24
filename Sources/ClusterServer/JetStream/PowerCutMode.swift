import Foundation
import StreamLog

/// Test-only power-loss mode (docs/chaos.md, "Power cut"). With `CLUSTERD_TEST_POWER_CUT=1` in
/// its environment, every file this server writes for JetStream — stream logs, Raft logs and
/// their state files, consumer records, stream metadata and markers (`AtomicFile`) — goes
/// through one `PowerCutFileSystem`, and SIGPWR makes the process drop everything it had not
/// fsync'd and die like kill -9: a power cut of this node only. Never set in production; it
/// serializes all file I/O of the process.
public enum PowerCutMode {
    /// The process-wide tracking file system, nil unless the mode is on.
    public static let fileSystem: PowerCutFileSystem? =
        ProcessInfo.processInfo.environment["CLUSTERD_TEST_POWER_CUT"] == "1" ? PowerCutFileSystem() : nil

    public static var isEnabled: Bool { fileSystem != nil }

    /// The power cut (SIGPWR's handler): undo what is not durable, then SIGKILL this process.
    public static func cutAndDie() {
        guard let fs = fileSystem else { return }
        fs.powerCutAndDie()
    }
}
