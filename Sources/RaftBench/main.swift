import Foundation
import Raft

// RaftBench: release-build micro benchmarks of the pure Raft core.
//   swift run -c release RaftBench [proposals] [groups]
// 1. proposals/s through a 3-node in-memory group (MemoryStorage, in-process transport).
// 2. CPU cost of 10,000 idle (quiesced) groups ticked on one node.

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A 3-node group wired by an in-memory queue; the driver loop a real server would run.
final class Group {
    var nodes: [RaftNode] = []
    var storages: [MemoryStorage] = []
    var queue: [Message] = []
    var appliedCount = 0

    init(config: RaftConfig) {
        let conf = ConfState(voters: [1, 2, 3].map(NodeID.init))
        for i in 1...3 {
            let s = MemoryStorage(conf: conf)
            storages.append(s)
            nodes.append(RaftNode(id: NodeID(UInt64(i)), storage: s, config: config, random: SplitMix64(seed: UInt64(i))))
        }
    }

    func drive() {
        for (i, n) in nodes.enumerated() where n.hasReady {
            let rd = n.ready()
            let s = storages[i]
            if let snap = rd.snapshot { try! s.applySnapshot(snap) }
            try! s.append(rd.entries)
            if let hs = rd.hardState { s.setHardState(hs) }
            queue.append(contentsOf: rd.messages)
            if i == 0 { appliedCount += rd.committedEntries.count }
            n.advance(rd)
            // Keep memory flat: snapshot and compact what everyone applied long ago.
            if n.appliedIndex.rawValue % 8192 == 0 && n.appliedIndex > s.firstIndex + 4096 {
                try! s.createSnapshot(index: n.appliedIndex, conf: n.confState(atIndex: n.appliedIndex), data: [])
                try! s.compact(upTo: LogIndex(n.appliedIndex.rawValue - 1024))
            }
        }
        let msgs = queue
        queue.removeAll(keepingCapacity: true)
        for m in msgs { nodes[Int(m.to.rawValue) - 1].step(m) }
    }
}

func benchProposals(total: Int, batch: Int, payloadBytes: Int) {
    var cfg = RaftConfig()
    cfg.maxInflightMsgs = 256
    let g = Group(config: cfg)
    g.nodes[0].startElection()
    for _ in 0..<50 { g.drive() }
    precondition(g.nodes[0].role == .leader, "node 1 did not become leader")
    let leader = g.nodes[0]
    let payload = [UInt8](repeating: 0xAB, count: payloadBytes)
    let startApplied = g.appliedCount
    let t0 = wallSeconds(), c0 = cpuSeconds()
    var proposed = 0
    while g.appliedCount - startApplied < total {
        // Keep a bounded number of proposals outstanding (like a busy stream leader).
        if proposed - (g.appliedCount - startApplied) < batch * 8 && proposed < total {
            let n = min(batch, total - proposed)
            try! leader.proposeBatch(Array(repeating: payload, count: n))
            proposed += n
        }
        g.drive()
    }
    let wall = wallSeconds() - t0, cpu = cpuSeconds() - c0
    // Both rates: wall time suffers when other processes share the CPU, CPU time does not.
    print(String(format: "proposals: %d x %dB, batch %3d: %9.0f proposals/s wall, %9.0f per CPU-second (wall %.2fs, cpu %.2fs)",
                 total, payloadBytes, batch, Double(total) / wall, Double(total) / cpu, wall, cpu))
}

func benchIdleGroups(count: Int, ticks: Int) {
    var cfg = RaftConfig()
    cfg.electionTimeoutTicks = 10
    cfg.heartbeatTicks = 2
    cfg.quiesceAfterIdleTicks = 6
    let conf = ConfState(voters: [1, 2, 3].map(NodeID.init))
    var hosts: [MultiRaft] = []
    var storages: [[GroupID: MemoryStorage]] = [[:], [:], [:]]
    for n in 1...3 {
        let h = MultiRaft(nodeID: NodeID(UInt64(n)))
        for gi in 0..<count {
            let s = MemoryStorage(conf: conf)
            storages[n - 1][GroupID(UInt64(gi))] = s
            h.addGroup(RaftNode(id: NodeID(UInt64(n)), group: GroupID(UInt64(gi)), storage: s, config: cfg,
                                random: SplitMix64(seed: UInt64(n * 1_000_003 + gi))))
        }
        hosts.append(h)
    }
    var batches = 0
    func round() {
        var outbox: [MessageBatch] = []
        for (i, h) in hosts.enumerated() {
            var co = HeartbeatCoalescer(from: h.nodeID)
            for node in h.takeReadyGroups() {
                let rd = node.ready()
                let s = storages[i][node.group]!
                try! s.append(rd.entries)
                if let hs = rd.hardState { s.setHardState(hs) }
                co.add(rd.messages)
                node.advance(rd)
            }
            outbox.append(contentsOf: co.drain())
        }
        batches += outbox.count
        for b in outbox { hosts[Int(b.to.rawValue) - 1].receive(b) }
    }
    // Warm up: elect leaders everywhere, then let every group go quiet.
    var warm = 0
    while warm < 400 && hosts.contains(where: { $0.activeGroupCount > 0 }) {
        for h in hosts { h.tick() }
        for _ in 0..<3 { round() }
        warm += 1
    }
    let active = hosts.map(\.activeGroupCount)
    let host = hosts[0]
    let c0 = cpuSeconds(), t0 = wallSeconds()
    for _ in 0..<ticks { host.tick(); _ = host.takeReadyGroups() }
    let cpu = cpuSeconds() - c0, wall = wallSeconds() - t0
    let perTickUs = cpu / Double(ticks) * 1e6
    print(String(format: "idle groups: %d groups (%@ active after %d warm-up ticks), %d ticks: %.1f us CPU per tick",
                 count, "\(active)", warm, ticks, perTickUs))
    for tickMs in [100.0, 10.0] {
        print(String(format: "  at one tick per %.0f ms: %.5f CPU seconds per wall second", tickMs, perTickUs / 1e6 * (1000 / tickMs)))
    }
    _ = wall
    // For contrast: the same groups awake (heartbeating), driven for a few ticks.
    // Woken groups heartbeat until they quiesce again (after 6 idle ticks); measure 5 ticks.
    for h in hosts { for gi in 0..<count { h.group(GroupID(UInt64(gi)))!.wake() } }
    let c1 = cpuSeconds()
    let awakeTicks = 5
    for _ in 0..<awakeTicks {
        for h in hosts { h.tick() }
        round()
    }
    let awakeUs = (cpuSeconds() - c1) / Double(awakeTicks) * 1e6 / 3
    print(String(format: "  awake (heartbeating) for contrast: %.0f us CPU per tick per node (incl. delivery)", awakeUs))
}

let args = CommandLine.arguments
let total = args.count > 1 ? Int(args[1]) ?? 200_000 : 200_000
let groupCount = args.count > 2 ? Int(args[2]) ?? 10_000 : 10_000
benchProposals(total: total, batch: 1, payloadBytes: 100)
benchProposals(total: total, batch: 64, payloadBytes: 100)
benchIdleGroups(count: groupCount, ticks: 1000)
