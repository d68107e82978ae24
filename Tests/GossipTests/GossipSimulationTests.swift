import Foundation
import XCTest
@testable import Gossip

/// Seeded simulations of whole clusters. `GOSSIP_SEEDS=n` sets how many schedules (default
/// 200), `GOSSIP_SEED=s` replays one, `GOSSIP_SEED_BASE=b` shifts the range.
final class GossipSimulationTests: XCTestCase {
    func test_simulation_manySeededSchedules_convergeAfterFaultsHeal() {
        let env = ProcessInfo.processInfo.environment
        let seeds: [UInt64]
        if let one = env["GOSSIP_SEED"].flatMap(UInt64.init) {
            seeds = [one]
        } else {
            let count = env["GOSSIP_SEEDS"].flatMap(Int.init) ?? 200
            let base = env["GOSSIP_SEED_BASE"].flatMap(UInt64.init) ?? 1
            seeds = (0..<UInt64(max(count, 0))).map { base + $0 }
        }
        let start = Date()
        let lock = NSLock()
        var failures: [GossipSimFailure] = []
        var worst = 0, total = 0, ran = 0
        var counts = (messages: 0, crashes: 0, partitions: 0, suspicions: 0, deaths: 0, refutations: 0)
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, seeds.count))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < seeds.count {
                let sim = GossipSimulator(options: GossipSimOptions.draw(seed: seeds[i]))
                // Event text only costs time; a failing seed is re-run with it (it replays exactly).
                sim.recordEvents = false
                do {
                    try sim.run()
                    lock.lock()
                    worst = max(worst, sim.convergedAfterPeriods ?? 0)
                    total += sim.convergedAfterPeriods ?? 0
                    ran += 1
                } catch {
                    let again = GossipSimulator(options: GossipSimOptions.draw(seed: seeds[i]))
                    var detailed = error
                    do { try again.run() } catch let e { detailed = e }
                    lock.lock()
                    failures.append(detailed as? GossipSimFailure
                                    ?? GossipSimFailure(seed: seeds[i], tick: sim.now, what: "\(error)", options: "", events: []))
                }
                counts.messages += sim.stats.messages
                counts.crashes += sim.stats.crashes
                counts.partitions += sim.stats.partitions
                counts.suspicions += sim.stats.suspicions
                counts.deaths += sim.stats.deaths
                counts.refutations += sim.stats.refutations
                lock.unlock()
                i += workers
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        print("gossip-sim: \(seeds.count) seeds in \(String(format: "%.1f", elapsed)) s, \(failures.count) failed; "
              + "agreement after healing: worst \(worst) periods, mean \(String(format: "%.1f", Double(total) / Double(max(ran, 1)))); "
              + "totals: \(counts.messages) messages, \(counts.crashes) crashes, \(counts.partitions) partition changes, "
              + "\(counts.suspicions) suspicions, \(counts.deaths) deaths, \(counts.refutations) refutations")
        for f in failures.sorted(by: { $0.seed < $1.seed }).prefix(5) {
            XCTFail("\(f)\n  replay: GOSSIP_SEED=\(f.seed) swift test --filter GossipTests.GossipSimulationTests")
        }
    }

    func test_simulation_sameSeedTwice_replaysIdentically() throws {
        for seed: UInt64 in [5, 77] {
            let a = GossipSimulator(options: GossipSimOptions.draw(seed: seed))
            let b = GossipSimulator(options: GossipSimOptions.draw(seed: seed))
            try a.run()
            try b.run()
            XCTAssertEqual(a.events, b.events)
            XCTAssertEqual(a.now, b.now)
        }
    }

    /// Quiet options: no faults at all, fixed timing.
    static func quiet(seed: UInt64, nodes: Int, seeds: [[Int]]) -> GossipSimOptions {
        var o = GossipSimOptions.draw(seed: seed)
        o.nodes = nodes
        o.seeds = seeds
        o.dns = false
        o.startDelays = Array(repeating: 0, count: nodes)
        o.faultTicks = 0
        o.dropPercent = 0
        o.duplicatePercent = 0
        o.maxDelayTicks = 1
        o.partitionPerMille = 0
        o.crashPerMille = 0
        o.leaveDown = []
        o.config = GossipConfig()
        return o
    }

    func test_memberLearnedOnlyIndirectly_becomesKnownToAll() throws {
        // n1 has no seeds, n2 and n3 know only n1: n2 and n3 must learn each other by gossip
        // and connect to each other (a full mesh of transports).
        for seed: UInt64 in 1...50 {
            let sim = GossipSimulator(options: Self.quiet(seed: seed, nodes: 3, seeds: [[], [0], [0]]))
            try sim.run()
            let ids = sim.nodes.map { $0.id! }
            for n in sim.nodes {
                XCTAssertEqual(Set(n.swim!.view.keys), Set(ids), "seed \(seed)")
            }
            let n3LearnedN2 = sim.changesSeen.contains { $0.observer == 2 && $0.change.member == ids[1] }
            XCTAssertTrue(n3LearnedN2, "seed \(seed)")
            XCTAssertLessThanOrEqual(sim.convergedAfterPeriods ?? .max, 3, "seed \(seed)")
        }
    }

    func test_crashedMember_isDeclaredDeadByEveryone() throws {
        for seed: UInt64 in 1...50 {
            var o = Self.quiet(seed: seed, nodes: 5, seeds: [[], [0], [0], [1], [2]])
            o.faultTicks = 100
            o.leaveDown = [3]
            let sim = GossipSimulator(options: o)
            try sim.run()
            let crashed = MemberID(name: "n4", address: "n4:6222", token: "b1")
            for n in sim.nodes where n.swim != nil {
                XCTAssertEqual(n.swim!.status(of: crashed)?.rank, 2, "seed \(seed): \(n.swim!.myself) holds n4 as \(String(describing: n.swim!.status(of: crashed)))")
            }
        }
    }

    func test_healedSplitBrain_eachSideDeclaredTheOtherDead_reunites() throws {
        var worst = 0
        for seed: UInt64 in 1...10 {
            let o = Self.quiet(seed: seed, nodes: 6, seeds: [[], [0], [0], [0], [0], [0]])
            let sim = GossipSimulator(options: o)
            while sim.now < 60 { try sim.step(faults: false) }
            XCTAssertNil(sim.agreement(), "seed \(seed): formed")
            sim.split([0, 1, 2])
            // Long enough for suspicion to end in death on both sides.
            for _ in 0..<(30 * o.config.periodTicks) { try sim.step(faults: false) }
            let n0 = sim.nodes[0].swim!, n5 = sim.nodes[5].swim!
            XCTAssertEqual(n0.status(of: n5.myself)?.rank, 2, "seed \(seed): n1 holds n6 dead")
            XCTAssertEqual(n5.status(of: n0.myself)?.rank, 2, "seed \(seed): n6 holds n1 dead")
            sim.split(nil)
            var periods = 0
            while sim.agreement() != nil, periods < 40 {
                for _ in 0..<o.config.periodTicks { try sim.step(faults: false) }
                periods += 1
            }
            XCTAssertNil(sim.agreement(), "seed \(seed): not reunited 40 periods after healing")
            worst = max(worst, periods)
            XCTAssertGreaterThan(sim.nodes[5].swim!.incarnation, Incarnation(0), "seed \(seed): n6 refuted its death")
        }
        print("gossip-sim: split brain of 3+3 reunited within \(worst) periods of healing (worst of 10 seeds)")
    }

    func test_suspectedButAliveMember_refutes_andStaysAlive() throws {
        var suspectedSomewhere = 0
        for seed: UInt64 in 1...50 {
            var o = Self.quiet(seed: seed, nodes: 5, seeds: [[], [0], [0], [0], [0]])
            o.faultTicks = 60
            let sim = GossipSimulator(options: o)
            while sim.now < 60 { try sim.step(faults: false) }
            XCTAssertNil(sim.agreement(), "seed \(seed): formed")
            // n5 goes silent (it still hears) for two periods: long enough to be suspected,
            // shorter than the suspicion timeout.
            let victim = sim.nodes[4].id!
            sim.mute(4, ticks: 2 * o.config.periodTicks)
            for _ in 0..<(40 * o.config.periodTicks) {
                try sim.step(faults: false)
                if sim.agreement() == nil, sim.now > 60 + 3 * o.config.periodTicks { break }
            }
            XCTAssertNil(sim.agreement(), "seed \(seed)")
            let suspected = sim.changesSeen.contains { $0.change.member == victim && $0.change.status.rank == 1 }
            let died = sim.changesSeen.contains { $0.change.member == victim && $0.change.status.rank >= 2 }
            XCTAssertFalse(died, "seed \(seed): n5 was declared dead")
            if suspected {
                suspectedSomewhere += 1
                XCTAssertGreaterThan(sim.nodes[4].swim!.incarnation, Incarnation(0), "seed \(seed): refuted")
                XCTAssertEqual(sim.nodes[0].swim!.status(of: victim), .alive(sim.nodes[4].swim!.incarnation))
            }
        }
        XCTAssertGreaterThan(suspectedSomewhere, 25, "the outage should usually cause a suspicion")
    }
}
