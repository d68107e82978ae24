@testable import Raft

/// A tiny synchronous network for scenario tests: deliver until quiet, with links that can be cut.
final class TestCluster {
    var nodes: [NodeID: RaftNode] = [:]
    var storages: [NodeID: MemoryStorage] = [:]
    var applied: [NodeID: [Entry]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    var cut: Set<[UInt64]> = []
    var pending: [Message] = []
    let config: RaftConfig

    init(_ count: Int, learners: [UInt64] = [], config: RaftConfig = TestCluster.defaultConfig()) {
        self.config = config
        let voters = (1...UInt64(count)).map(NodeID.init)
        let conf = ConfState(voters: voters, learners: learners.map(NodeID.init))
        for id in voters + learners.map(NodeID.init) { add(id, conf: conf) }
    }

    static func defaultConfig() -> RaftConfig {
        var c = RaftConfig()
        c.electionTimeoutTicks = 10
        c.heartbeatTicks = 1
        return c
    }

    /// Adds a node with its own storage (an empty configuration for a node joining later).
    func add(_ id: NodeID, conf: ConfState = ConfState()) {
        let s = MemoryStorage(conf: conf)
        storages[id] = s
        nodes[id] = RaftNode(id: id, storage: s, config: config, random: SplitMix64(seed: id.rawValue))
        applied[id] = []
    }

    func node(_ i: UInt64) -> RaftNode { nodes[NodeID(i)]! }

    /// Restarts a node from its storage, dropping everything not persisted.
    func restart(_ i: UInt64) {
        let id = NodeID(i)
        nodes[id] = RaftNode(id: id, storage: storages[id]!, config: config, random: SplitMix64(seed: i &+ 99))
        applied[id] = []
    }

    func isolate(_ i: UInt64) {
        for j in nodes.keys.map(\.rawValue) where j != i { cut.insert([i, j]); cut.insert([j, i]) }
    }

    func heal() { cut = [] }

    /// Persists and collects every node's Ready, queueing its messages.
    func flush() {
        for id in nodes.keys.sorted() {
            let n = nodes[id]!
            while n.hasReady {
                let rd = n.ready()
                let s = storages[id]!
                if let snap = rd.snapshot { try! s.applySnapshot(snap) }
                try! s.append(rd.entries)
                if let hs = rd.hardState { s.setHardState(hs) }
                pending.append(contentsOf: rd.messages)
                applied[id]!.append(contentsOf: rd.committedEntries)
                readStates[id, default: []].append(contentsOf: rd.readStates)
                n.advance(rd)
            }
        }
    }

    /// Delivers messages until none are left (bounded). Returns the number delivered.
    @discardableResult
    func deliverAll(filter: (Message) -> Bool = { _ in true }) -> Int {
        var delivered = 0
        flush()
        var rounds = 0
        while !pending.isEmpty && rounds < 10_000 {
            rounds += 1
            let batch = pending
            pending = []
            for m in batch where !cut.contains([m.from.rawValue, m.to.rawValue]) && filter(m) {
                nodes[m.to]?.step(m)
                delivered += 1
            }
            flush()
        }
        return delivered
    }

    func tick(_ ids: [UInt64]? = nil, times: Int = 1) {
        for _ in 0..<times {
            for id in ids.map({ $0.map(NodeID.init) }) ?? nodes.keys.sorted() { nodes[id]?.tick() }
            deliverAll()
        }
    }

    /// Makes node `i` campaign now and settles the network.
    func elect(_ i: UInt64) {
        let n = node(i)
        n.campaign(config.preVote ? .preElection : .election)
        deliverAll()
    }

    var leaders: [NodeID] { nodes.values.filter { $0.role == .leader }.map(\.id).sorted() }

    func appliedData(_ i: UInt64) -> [[UInt8]] {
        applied[NodeID(i)]!.filter { $0.type == .normal }.map(\.data)
    }
}
