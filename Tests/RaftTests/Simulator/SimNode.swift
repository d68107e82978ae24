@testable import Raft

/// One simulated server: persisted storage that survives crashes, a `RaftNode` that does not,
/// and a tiny state machine (a running hash of applied entries).
final class SimNode {
    let id: NodeID
    let disk: SimDisk
    /// Open while the node is up (reopened from `disk` on every start).
    private(set) var storage: RaftStorage!
    var raft: RaftNode?
    /// Permanently stopped (decommissioned after removal).
    var stopped = false
    var downUntilTick = 0
    var appliedIndex = LogIndex.zero
    var stateHash: UInt64 = 0
    var lastSeenCommit = LogIndex.zero
    /// Read states waiting until `appliedIndex` reaches them: (state, issue-time floor).
    var waitingReads: [(ReadState, LogIndex)] = []
    /// Background-sync schedules: writes not synced yet, with the messages waiting for them.
    var unsynced: [(write: UInt64, messages: [Message])] = []

    init(id: NodeID, conf: ConfState, durable: Bool) {
        self.id = id
        disk = durable ? DurableDisk(conf: conf) : MemoryDisk(conf: conf)
    }

    var isUp: Bool { raft != nil }

    /// Starts (or restarts) from what storage holds, as a real server would after a crash.
    func start(config: RaftConfig, seed: UInt64) throws {
        storage = try disk.open()
        let snap = storage.snapshot()
        appliedIndex = snap.metadata.index
        stateHash = Self.decodeHash(snap.data)
        lastSeenCommit = storage.initialState().hardState.commit
        waitingReads = []
        unsynced = []
        raft = RaftNode(id: id, storage: storage, config: config, random: SplitMix64(seed: seed))
    }

    /// Stops the node; with a durable disk the power goes too (unsynced writes may be lost).
    func crash(_ rng: inout SplitMix64) {
        raft = nil
        waitingReads = []
        unsynced = []
        disk.powerLoss(&rng)
        storage = nil
    }

    static func mix(_ hash: UInt64, _ e: Entry) -> UInt64 {
        var h = hash ^ 0xCBF2_9CE4_8422_2325
        h = (h ^ e.index.rawValue) &* 0x100_0000_01B3
        h = (h ^ UInt64(e.type.rawValue)) &* 0x100_0000_01B3
        for b in e.data { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    static func encodeHash(_ h: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: h >> (8 * UInt64($0))) } }
    static func decodeHash(_ b: [UInt8]) -> UInt64 {
        guard b.count == 8 else { return 0 }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[$1]) << (8 * UInt64($1)) }
    }
}
