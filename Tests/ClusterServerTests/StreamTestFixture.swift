import Foundation
import Logging
@testable import ClusterServer

/// Bare `Stream`s for tests that drive a stream's apply path directly (no Raft, no sockets):
/// one unstarted server and its `JetStreamService`, and fresh temporary directories, all
/// removed by `removeAll()` (call it from `tearDown`).
final class StreamTestFixture {
    let server: NATSServer
    let js: JetStreamService
    private let prefix: String
    private var dirs: [String] = []

    /// `prefix` names the temporary directories, so a leftover one tells which suite made it.
    init(prefix: String) {
        self.prefix = prefix
        let storeDirectory = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        dirs.append(storeDirectory)
        var o = ServerOptions()
        o.storeDirectory = storeDirectory
        var logger = Logger(label: prefix)
        logger.logLevel = .critical
        server = NATSServer(options: o, logger: logger)
        js = JetStreamService(server: server)
    }

    /// A new, not yet created, temporary directory.
    func newDirectory() -> String {
        let dir = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        dirs.append(dir)
        return dir
    }

    /// A stream laid out as the service lays one out: its store in `dir/msgs`, its own files
    /// (the dedup clock's marks) in `dir`. Opening the same `dir` again is a restart.
    func openStream(_ config: StreamConfig, in dir: String) throws -> ClusterServer.Stream {
        let store = try StreamLogStore(directory: dir + "/msgs", config: config, fsync: .manual)
        return ClusterServer.Stream(service: js, config: config, store: store, created: 0, directory: dir)
    }

    /// Every stored message, in sequence order.
    func storedMessages(_ stream: ClusterServer.Stream) -> [StreamMessage] {
        var out: [StreamMessage] = []
        var seq = stream.store.state.firstSeq
        while let m = stream.store.next(from: seq, filters: []) {
            out.append(m)
            seq = m.seq + 1
        }
        return out
    }

    func removeAll() {
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        dirs.removeAll()
    }
}
