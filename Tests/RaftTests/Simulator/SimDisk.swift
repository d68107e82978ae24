import Raft
import RaftLogStorage
import StreamLog

/// Where a simulated node keeps what survives a crash. The simulator opens storage when a node
/// starts, syncs after persisting each Ready (before sending its messages) and cuts the power
/// when the node crashes.
protocol SimDisk: AnyObject {
    /// The storage a (re)starting node uses.
    func open() throws -> RaftStorage
    /// Makes everything handed to `storage` durable (the driver's fsync).
    func sync(_ storage: RaftStorage) throws
    /// A crash: whatever was not made durable may be lost; `storage` objects become unusable.
    func powerLoss(_ rng: inout SplitMix64)
}

/// `MemoryStorage`: everything written counts as durable at once; a crash loses nothing of it.
final class MemoryDisk: SimDisk {
    let storage: MemoryStorage
    init(conf: ConfState) { storage = MemoryStorage(conf: conf) }
    func open() throws -> RaftStorage { storage }
    func sync(_ storage: RaftStorage) throws {}
    func powerLoss(_ rng: inout SplitMix64) {}
}

/// `StreamLogRaftStorage` over `FaultyFileSystem`: a crash drops every write that was not
/// fsync'd (tearing the last one), so only what `sync()` and the durable calls promised
/// survives. Small segments so logs roll, seal and are dropped by compaction; open reads only
/// the newest 16 entries' terms (older ones come from the log on demand).
final class DurableDisk: SimDisk {
    let fs = FaultyFileSystem()
    let conf: ConfState
    init(conf: ConfState) { self.conf = conf }

    func open() throws -> RaftStorage {
        try StreamLogRaftStorage.open(directory: "/node", fileSystem: fs,
                                      config: RaftLogStorageConfig(segmentMaxBytes: 4096, openScanEntries: 16), bootstrap: conf)
    }

    func sync(_ storage: RaftStorage) throws {
        let s = storage as! StreamLogRaftStorage
        if s.needsSync { try s.sync() }
    }

    func powerLoss(_ rng: inout SplitMix64) { fs.powerLoss(using: &rng) }
}
