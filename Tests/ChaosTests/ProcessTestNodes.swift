import Foundation
import XCTest

/// The clusterd processes of one process test, with their stores under one temporary
/// directory: the setup the process tests share. `stopAll(failed:)` (from tearDown) stops and
/// reaps every node, by PID, even one whose start failed, prints their logs if the test failed,
/// and removes the directory.
final class ProcessTestNodes {
    let tempDir: URL
    private(set) var nodes: [ClusterdProcess] = []

    /// Creates the temporary directory `<prefix>-<uuid>`.
    init(prefix: String) throws {
        tempDir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tempDir, withIntermediateDirectories: true)
    }

    /// Starts node `name` (its store in the temporary directory) with `args` and waits until it
    /// is healthy (`ClusterdProcess.start`).
    @discardableResult
    func start(_ name: String, args: [String] = []) throws -> ClusterdProcess {
        let n = try ClusterdProcess(name: name, binary: try ClusterdProcess.binary(), storeDir: tempDir.appendingPathComponent(name))
        nodes.append(n) // before starting: a node that fails to start is still stopped
        try n.start(extraArgs: args)
        return n
    }

    /// Polls `condition` every 20 ms until it holds or `seconds` pass; whether it held. Tests
    /// wait on the condition itself, never on a fixed sleep.
    static func waitUntil(seconds: Double, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return condition()
    }

    /// Stops and reaps every node. When the test `failed`, also prints each node's PID, exit
    /// status, ports and stderr tail (after its stop): CI keeps the test output, not the
    /// temporary directory.
    func stopAll(failed: Bool = false) {
        for n in nodes {
            let status = n.stop()
            if failed {
                print("--- \(n.name) (pid \(n.pid.map(String.init) ?? "-"), exit \(status), client port \(n.clientPort), http port \(n.httpPort)) stderr tail:\n\(n.stderrTail())\n--- end \(n.name)")
            }
        }
        nodes.removeAll()
        try? FileManager.default.removeItem(at: tempDir)
    }
}

extension XCTestCase {
    /// Whether this test recorded a failure (or threw) so far; usable in tearDown, where
    /// `testRun.hasSucceeded` is still false because the run has not stopped.
    var hasRecordedFailure: Bool { (testRun?.totalFailureCount ?? 0) > 0 }
}
