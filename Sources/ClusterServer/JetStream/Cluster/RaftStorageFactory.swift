import Foundation
import Raft
import RaftLogStorage

extension MemoryStorage: DurableRaftStorage {
    /// Memory logs (memory streams, as in nats-server) have nothing to make durable.
    func sync() throws {}
    func closeLog() {}
}

extension StreamLogRaftStorage: DurableRaftStorage {
    func closeLog() { try? close() }
}

/// Opens the Raft log of a group: on disk under `directory` (a StreamLog plus hard-state and
/// snapshot files, fsync'd by group commit), or in memory when `directory` is nil.
enum RaftStorageFactory {
    /// - Parameter initialPeers: the voters of a group that is new here; nil opens only an
    ///   existing log (returns nil when there is none).
    static func open(directory: String?, initialPeers: [String]?) throws -> DurableRaftStorage? {
        let conf = ConfState(voters: (initialPeers ?? []).map(RaftHost.nodeID))
        guard let directory else {
            return initialPeers == nil ? nil : MemoryStorage(conf: conf)
        }
        if initialPeers == nil && !FileManager.default.fileExists(atPath: directory) { return nil }
        let storage = try StreamLogRaftStorage.open(directory: directory, bootstrap: conf)
        if initialPeers == nil && storage.initialState().conf.voters.isEmpty {
            storage.closeLog()
            return nil
        }
        return storage
    }
}
