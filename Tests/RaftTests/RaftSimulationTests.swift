import Foundation
import XCTest
@testable import Raft

/// Runs many seeded schedules. `RAFT_SEEDS=n` sets how many (default 2000), `RAFT_SEED=s`
/// replays one, `RAFT_SEED_BASE=b` shifts the range.
final class RaftSimulationTests: XCTestCase {
    func test_simulation_manySeededSchedules_keepSafetyAndLiveness() {
        let env = ProcessInfo.processInfo.environment
        let seeds: [UInt64]
        if let one = env["RAFT_SEED"].flatMap(UInt64.init) {
            seeds = [one]
        } else {
            let count = env["RAFT_SEEDS"].flatMap(Int.init) ?? 2000
            let base = env["RAFT_SEED_BASE"].flatMap(UInt64.init) ?? 1
            // Plus seeds that once found real bugs (see docs/raft.md), so they stay covered.
            seeds = (0..<UInt64(max(count, 0))).map { base + $0 } + (env["RAFT_SEEDS"] == nil ? Self.regressionSeeds : [])
        }
        let start = Date()
        let (failures, totals) = Self.runParallel(seeds)
        let elapsed = Date().timeIntervalSince(start)
        print("raft-sim: \(seeds.count) seeds in \(String(format: "%.1f", elapsed)) s, \(failures.count) failed; "
              + "totals: \(totals.ticks) ticks, \(totals.elections) elections, \(totals.crashes) crashes, "
              + "\(totals.partitions) partition changes, \(totals.confChanges) membership changes, "
              + "\(totals.transfers) transfers, \(totals.snapshots) snapshots, \(totals.reads) reads served, \(totals.quiesced) quiesced node-ticks")
        for f in failures.prefix(5) {
            XCTFail("\(f)\n  replay: RAFT_SEED=\(f.seed) swift test --filter RaftTests.RaftSimulationTests")
        }
    }

    func test_simulation_sameSeedTwice_replaysIdentically() throws {
        for seed: UInt64 in [3, 9452] {
            let a = Simulator(options: SimOptions.draw(seed: seed)), b = Simulator(options: SimOptions.draw(seed: seed))
            try a.run()
            try b.run()
            XCTAssertEqual(a.events, b.events)
            XCTAssertEqual(a.now, b.now)
            XCTAssertEqual(a.nodes.map(\.appliedIndex), b.nodes.map(\.appliedIndex))
            XCTAssertEqual(a.nodes.map(\.stateHash), b.nodes.map(\.stateHash))
        }
    }

    /// 9452: caught the Figure-8 mutation (commit of an earlier-term entry by counting).
    static let regressionSeeds: [UInt64] = [9452]

    /// Runs seeds on all cores; each seed is independent and deterministic.
    struct Totals {
        var ticks = 0, elections = 0, crashes = 0, partitions = 0, confChanges = 0, transfers = 0, snapshots = 0, reads = 0, quiesced = 0
    }

    static func runParallel(_ seeds: [UInt64], options: @escaping (UInt64) -> SimOptions = { SimOptions.draw(seed: $0) })
        -> ([SimFailure], Totals) {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, seeds.count))
        let lock = NSLock()
        var failures: [SimFailure] = []
        var totals = Totals()
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < seeds.count {
                let sim = Simulator(options: options(seeds[i]))
                defer {
                    lock.lock()
                    totals.ticks += sim.now
                    totals.elections += sim.stats.elections
                    totals.crashes += sim.stats.crashes
                    totals.partitions += sim.stats.partitions
                    totals.confChanges += sim.stats.confChanges
                    totals.transfers += sim.stats.transfers
                    totals.snapshots += sim.stats.snapshots
                    totals.reads += sim.readsServed
                    totals.quiesced += sim.stats.quiescedNodeTicks
                    lock.unlock()
                }
                do {
                    try sim.run()
                } catch let f as SimFailure {
                    lock.lock(); failures.append(f); lock.unlock()
                } catch {
                    lock.lock()
                    failures.append(SimFailure(seed: seeds[i], tick: 0, invariant: "error", detail: "\(error)", options: "", events: []))
                    lock.unlock()
                }
                i += workers
            }
        }
        return (failures.sorted { $0.seed < $1.seed }, totals)
    }
}
