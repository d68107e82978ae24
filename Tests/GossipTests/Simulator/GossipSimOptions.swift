@testable import Gossip

/// Everything one seeded schedule does, drawn from the seed.
struct GossipSimOptions: CustomStringConvertible {
    var seed: UInt64
    var nodes: Int
    /// Seed addresses per node (indexes); node 0 is never left down, and every node's seeds
    /// include it, so a restarted node can always find the cluster again.
    var seeds: [[Int]]
    /// Every node also gets a DNS answer listing every address (a headless Service).
    var dns: Bool
    /// Ticks before each node starts.
    var startDelays: [Int]
    var faultTicks: Int
    var dropPercent: Int
    var duplicatePercent: Int
    var maxDelayTicks: Int
    var partitionPerMille: Int
    var crashPerMille: Int
    /// Nodes that crash for good when the faults end (never node 0).
    var leaveDown: [Int]
    /// Periods after healing within which every view must agree.
    var boundPeriods: Int
    var config: GossipConfig

    static func draw(seed: UInt64) -> GossipSimOptions {
        var r = SplitMix64(seed: seed ^ 0x6055_1F_5EED)
        func pick(_ values: [Int]) -> Int { values[r.next(below: values.count)] }
        let n = 3 + r.next(below: 7)
        var cfg = GossipConfig()
        cfg.periodTicks = pick([6, 8, 10])
        cfg.pingTimeoutTicks = pick([2, 3])
        cfg.indirectProbes = pick([1, 2, 3])
        cfg.suspicionMultiplier = pick([2, 3, 4])
        cfg.retransmitMultiplier = pick([1, 2, 3])
        cfg.maxPiggyback = pick([1, 3, 8])
        cfg.syncPeriods = pick([5, 10, 20])
        cfg.rejoinPeriods = pick([3, 5])
        var seeds: [[Int]] = [[]]
        // Topologies: star on node 0 (nodes learn each other only indirectly), chain plus
        // node 0, or random subsets plus node 0.
        let shape = r.next(below: 3)
        for i in 1..<n {
            var s: Set<Int> = [0]
            if shape == 1 { s.insert(i - 1) }
            if shape == 2 { for j in 0..<n where j != i && r.next(below: 3) == 0 { s.insert(j) } }
            seeds.append(s.sorted())
        }
        if r.next(below: 2) == 0 { seeds[0] = [r.next(below: n)] } // maybe itself: harmless
        let down = (1..<n).filter { _ in r.next(below: 6) == 0 }.prefix(2)
        return GossipSimOptions(
            seed: seed, nodes: n, seeds: seeds, dns: r.next(below: 4) == 0,
            startDelays: (0..<n).map { _ in r.next(below: 3) == 0 ? r.next(below: 40) : 0 },
            faultTicks: pick([100, 300, 600]),
            dropPercent: pick([0, 1, 5, 20, 40]), duplicatePercent: pick([0, 0, 5]),
            maxDelayTicks: pick([1, 2, 4, 8]),
            partitionPerMille: pick([0, 5, 20]), crashPerMille: pick([0, 3, 10]),
            leaveDown: Array(down),
            boundPeriods: 60, config: cfg)
    }

    var description: String {
        "n=\(nodes) seeds=\(seeds) dns=\(dns) faults=\(faultTicks)t drop=\(dropPercent)% dup=\(duplicatePercent)% "
            + "delay<=\(maxDelayTicks) part=\(partitionPerMille)‰ crash=\(crashPerMille)‰ leaveDown=\(leaveDown) "
            + "period=\(config.periodTicks) timeout=\(config.pingTimeoutTicks) k=\(config.indirectProbes) "
            + "susp=\(config.suspicionMultiplier) lambda=\(config.retransmitMultiplier) piggy=\(config.maxPiggyback) "
            + "sync=\(config.syncPeriods) rejoin=\(config.rejoinPeriods)"
    }
}
