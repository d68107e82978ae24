import Foundation

/// The clusterd processes of one process test, with their stores under one temporary
/// directory: the setup the process tests share. `stopAll()` (from tearDown) stops and reaps
/// every node, by PID, even one whose start failed, and removes the directory.
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

    func stopAll() {
        for n in nodes { n.stop() }
        nodes.removeAll()
        try? FileManager.default.removeItem(at: tempDir)
    }
}
