@testable import Raft

/// Everything one seeded schedule does, drawn from the seed (the fault "swarm").
struct SimOptions: CustomStringConvertible {
    var seed: UInt64
    var voters: Int
    /// Extra nodes that start outside the group and may be added by membership changes.
    var spares: Int
    var safetyTicks: Int
    var livenessTicks: Int
    var dropPercent: Int
    var duplicatePercent: Int
    var maxDelayTicks: Int
    /// Per-tick chance (per mille) of a partition change, a crash, a proposal, a read...
    var partitionPerMille: Int
    var crashPerMille: Int
    var proposePerMille: Int
    var readPerMille: Int
    var confChangePerMille: Int
    var transferPerMille: Int
    var snapshotPerMille: Int
    var raft: RaftConfig
    /// Nodes keep their state in `StreamLogRaftStorage` over `FaultyFileSystem` (crashes are
    /// power losses) instead of `MemoryStorage`.
    var durable = false
    /// Chance of a crash between persisting a Ready and syncing it (durable schedules).
    var midReadyCrashPerMille = 0
    /// Nodes sync in the background (as `RaftHost` does): a Ready is written and accepted with
    /// `advanceWritten`, its after-persist messages wait, and a later tick syncs and releases
    /// them (`synced(throughWrite:)`) while the node keeps taking input in between.
    var asyncWrites = false

    /// The same schedule with durable storage and crashes inside the persist step.
    static func drawDurable(seed: UInt64) -> SimOptions {
        var o = draw(seed: seed)
        o.durable = true
        o.midReadyCrashPerMille = o.crashPerMille / 2
        o.asyncWrites = seed % 2 == 0
        return o
    }

    static func draw(seed: UInt64, safetyTicks: Int = 200, livenessTicks: Int = 300) -> SimOptions {
        var r = SplitMix64(seed: seed ^ 0x5EED_0F_5EED)
        func pick(_ values: [Int]) -> Int { values[r.next(below: values.count)] }
        var cfg = RaftConfig()
        cfg.electionTimeoutTicks = 10
        cfg.heartbeatTicks = pick([1, 2, 3, 3])
        cfg.maxInflightMsgs = pick([1, 2, 4, 16])
        cfg.maxInflightBytes = pick([0, 0, 200])
        cfg.maxSizePerMsg = pick([1, 64, 256, 4096])
        cfg.preVote = r.next(below: 5) != 0
        cfg.checkQuorum = r.next(below: 5) != 0
        cfg.readOnlyOption = cfg.checkQuorum && r.next(below: 3) == 0 ? .leaseBased : .safe
        // One schedule in four is a "storm": five nodes, one entry per message, heavy loss and
        // constant leader churn, which is where commit-rule and log-repair bugs show up.
        if r.next(below: 4) == 0 {
            cfg.maxSizePerMsg = 1
            cfg.maxInflightMsgs = pick([1, 2])
            cfg.heartbeatTicks = 3
            return SimOptions(
                seed: seed, voters: 5, spares: 1, safetyTicks: safetyTicks, livenessTicks: livenessTicks,
                dropPercent: pick([20, 30, 40]), duplicatePercent: 5, maxDelayTicks: pick([2, 4]),
                partitionPerMille: pick([40, 80]), crashPerMille: pick([20, 40]), proposePerMille: 500,
                readPerMille: 50, confChangePerMille: 0, transferPerMille: 10, snapshotPerMille: 0, raft: cfg)
        }
        // Some schedules let idle groups quiesce; the simulated driver wakes every node on each
        // fault (a real driver wakes groups when a route drops or gossip declares a peer dead).
        cfg.quiesceAfterIdleTicks = r.next(below: 4) == 0 ? 5 : nil
        var o = SimOptions(
            seed: seed,
            voters: pick([3, 3, 5]),
            spares: 1,
            // Ordinary schedules are shorter than storms: they find bugs early or not at all.
            safetyTicks: safetyTicks * 3 / 4,
            livenessTicks: livenessTicks,
            dropPercent: pick([0, 1, 5, 10, 20]),
            duplicatePercent: pick([0, 2, 10]),
            maxDelayTicks: pick([0, 1, 3, 6]),
            partitionPerMille: pick([0, 5, 15, 30]),
            crashPerMille: pick([0, 3, 10, 20]),
            proposePerMille: pick([100, 300, 600]),
            readPerMille: pick([0, 50, 200]),
            confChangePerMille: pick([0, 0, 10, 30]),
            transferPerMille: pick([0, 5, 20]),
            snapshotPerMille: pick([0, 10, 50]),
            raft: cfg)
        o.asyncWrites = seed % 3 == 0
        return o
    }

    var description: String {
        "voters=\(voters)+\(spares) ticks=\(safetyTicks)+\(livenessTicks) drop=\(dropPercent)% dup=\(duplicatePercent)% "
            + "delay<=\(maxDelayTicks) partition=\(partitionPerMille)‰ crash=\(crashPerMille)‰ propose=\(proposePerMille)‰ "
            + "read=\(readPerMille)‰ conf=\(confChangePerMille)‰ transfer=\(transferPerMille)‰ snap=\(snapshotPerMille)‰ "
            + "hb=\(raft.heartbeatTicks) inflight=\(raft.maxInflightMsgs)/\(raft.maxInflightBytes)B msg=\(raft.maxSizePerMsg)B "
            + "preVote=\(raft.preVote) checkQuorum=\(raft.checkQuorum) reads=\(raft.readOnlyOption) "
            + "quiesce=\(raft.quiesceAfterIdleTicks.map(String.init) ?? "off")"
            + (durable ? " durable midReadyCrash=\(midReadyCrashPerMille)‰" : "")
            + (asyncWrites ? " asyncWrites" : "")
    }
}

/// A violated invariant, with where it happened and the schedule that led there.
struct SimFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var tick: Int
    var invariant: String
    var detail: String
    var options: String
    var events: [String]

    var description: String {
        "seed \(seed) tick \(tick): \(invariant): \(detail)\n  schedule: \(options)\n  last events: "
            + events.suffix(12).joined(separator: "; ")
    }
}
