import Foundation
import Raft
import RaftLogStorage
import StreamLog

extension MemoryStorage: DurableRaftStorage {
    /// Memory logs (memory streams, as in nats-server) have nothing to make durable.
    func sync() throws {}
    var needsSync: Bool { false }
    var hardStateNeedsSync: Bool { false }
    func beginSync() throws -> (() throws -> Void)? { nil }
    func closeLog() {}
    func backgroundJob() -> (() -> Void)? { nil }
    func idleSparesJob() -> (() -> Void)? { nil }
}

extension StreamLogRaftStorage: DurableRaftStorage {
    func closeLog() { try? close() }
}

/// Opens the Raft log of a group: on disk under `directory` (a StreamLog plus hard-state and
/// snapshot files, fsync'd by group commit), or in memory when `directory` is nil.
enum RaftStorageFactory {
    /// - Parameter ids: the bootstrap voters of a group that is new here (empty: a member that
    ///   waits to be added by the group's leader); nil opens only an existing log (returns nil
    ///   when there is none). An existing log keeps its own configuration.
    static func open(directory: String?, ids: [NodeID]?) throws -> DurableRaftStorage? {
        let conf = ConfState(voters: ids ?? [])
        guard let directory else {
            return ids == nil ? nil : MemoryStorage(conf: conf)
        }
        let fileSystem = fileSystemHook?(directory) ?? PowerCutMode.fileSystem ?? PosixFileSystem()
        if ids == nil && !fileSystem.fileExists(directory) { return nil }
        // Uncompressed: a stream's Raft log holds entries only until the next compaction (the
        // stream store keeps the messages, LZ4-compressed), and LZ4 on every round's block was
        // ~1.5% of a three-node cluster's CPU under publish load. Older compressed blocks still
        // read (the flag is per block).
        var config = RaftLogStorageConfig(compression: false)
        if let step = preallocateBytesHook ?? preallocateBytes { config.preallocateBytes = step }
        if let size = segmentMaxBytesHook ?? segmentBytes { config.segmentMaxBytes = size }
        return try StreamLogRaftStorage.open(directory: directory, fileSystem: fileSystem,
                                             config: config, bootstrap: conf)
    }

    /// Tests: the file system of the Raft log in a directory (nil: the real one), so one node's
    /// log can run out of space alone.
    nonisolated(unsafe) static var fileSystemHook: ((String) -> FileSystem?)?

    /// Tests: the size of Raft log segments (nil: the default 16 MiB), so a compaction drops
    /// whole segments after a few messages.
    nonisolated(unsafe) static var segmentMaxBytesHook: UInt64?
    /// Tests: the preallocation step of Raft logs opened from now on (0: none).
    nonisolated(unsafe) static var preallocateBytesHook: UInt64?

    /// Tuning knob `CLUSTERD_RAFT_PREALLOCATE_BYTES` (0: off; default: `RaftLogStorageConfig`'s
    /// 512 KiB), for measuring what preallocation buys on a given disk.
    static let preallocateBytes: UInt64? = ProcessInfo.processInfo.environment["CLUSTERD_RAFT_PREALLOCATE_BYTES"].flatMap { UInt64($0) }

    /// Tuning knob `CLUSTERD_RAFT_SEGMENT_BYTES` (default: `RaftLogStorageConfig`'s 16 MiB; at
    /// least 4 KiB), so that a chaos run rolls, drops and recycles Raft log segments (spares)
    /// within minutes.
    static let segmentBytes: UInt64? = ProcessInfo.processInfo.environment["CLUSTERD_RAFT_SEGMENT_BYTES"].flatMap { UInt64($0) }
}
