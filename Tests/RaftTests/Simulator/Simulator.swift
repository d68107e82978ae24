import Foundation
@testable import Raft

/// A deterministic cluster simulation: one seed decides the schedule, the faults and every
/// random choice; invariants are checked after every input. Phase 1 injects faults (safety);
/// phase 2 heals everything and requires progress within a bound (liveness).
final class Simulator {
    let options: SimOptions
    private var rng: SplitMix64
    private(set) var nodes: [SimNode] = []
    private var network = SimNetwork()
    private var checker = InvariantChecker()
    private(set) var now = 0
    private(set) var events: [String] = []
    private var nextProposal: UInt64 = 0
    private var nextRead: UInt64 = 0
    /// ReadIndex requests in flight: context -> commit floor when issued.
    private var readFloors: [[UInt8]: LogIndex] = [:]
    private(set) var readsServed = 0
    private(set) var stats = (elections: 0, crashes: 0, partitions: 0, confChanges: 0, transfers: 0, snapshots: 0, quiescedNodeTicks: 0)

    static let trace = ProcessInfo.processInfo.environment["RAFT_TRACE"] != nil

    init(options: SimOptions) {
        self.options = options
        rng = SplitMix64(seed: options.seed)
        let initial = ConfState(voters: (1...options.voters).map { NodeID(UInt64($0)) })
        for i in 1...(options.voters + options.spares) {
            let node = SimNode(id: NodeID(UInt64(i)), conf: i <= options.voters ? initial : ConfState(), durable: options.durable)
            nodes.append(node)
        }
        for node in nodes { pendingStarts.append(node) }
        network.dropPercent = options.dropPercent
        network.duplicatePercent = options.duplicatePercent
        network.maxDelayTicks = options.maxDelayTicks
    }

    /// False in the liveness phase: no more crashes.
    private var faultsActive = true
    /// Nodes created but not started yet (starting can fail on a durable disk: reported by `run`).
    private var pendingStarts: [SimNode] = []

    /// Runs both phases; throws the first violated invariant.
    func run() throws {
        do {
            for node in pendingStarts { try start(node) }
            pendingStarts = []
            for _ in 0..<options.safetyTicks {
                try injectFaults()
                try step()
                try clientActivity(liveness: false)
            }
            try healAndRequireProgress()
        } catch let InvariantChecker.Violation.broken(name, detail) {
            throw SimFailure(seed: options.seed, tick: now, invariant: name, detail: detail,
                             options: options.description, events: events)
        } catch let f as SimFailure {
            throw f
        } catch {
            // A storage error (the durable disk refused to open or write): a failure, not a crash.
            throw SimFailure(seed: options.seed, tick: now, invariant: "storage", detail: "\(error)",
                             options: options.description, events: events)
        }
    }

    /// Starts a node from its disk (the seed for its randomness comes from the schedule).
    private func start(_ node: SimNode) throws {
        try node.start(config: options.raft, seed: rng.next())
    }

    /// Crashes a node (power loss on a durable disk) until `downUntilTick`.
    private func crash(_ node: SimNode, downFor ticks: Int) {
        stats.crashes += 1
        wakeAll()
        node.crash(&rng)
        node.downUntilTick = now + 1 + ticks
        log("crash \(node.id)")
    }

    // MARK: one tick

    private func step() throws {
        now += 1
        for node in nodes where node.isUp && !node.unsynced.isEmpty && rng.next(below: 2) == 0 {
            try finishSync(node)
        }
        for node in nodes where node.isUp {
            if node.raft!.isQuiesced { stats.quiescedNodeTicks += 1 }
            node.raft!.tick()
            try afterInput(node)
        }
        for m in network.due(now: now, rng: &rng) {
            guard let node = nodes.first(where: { $0.id == m.to }), let raft = node.raft else { continue }
            if Self.trace && now > options.safetyTicks + options.livenessTicks - 6 {
                print("@\(now) \(m.from)->\(m.to) \(m.term) \(m.body)".prefix(300))
            }
            raft.step(m)
            try afterInput(node)
        }
    }

    /// Handles everything the node produced, in the order a real driver must use.
    private func afterInput(_ node: SimNode) throws {
        guard let raft = node.raft else { return }
        var rounds = 0
        while raft.hasReady && rounds < 64 {
            rounds += 1
            let rd = raft.ready()
            // A snapshot replaces the log: background writes are synced first (as RaftHost does).
            let background = options.asyncWrites && rd.snapshot == nil
            if rd.snapshot != nil && !node.unsynced.isEmpty { try finishSync(node, handleOutput: false) }
            if let snap = rd.snapshot {
                try node.storage.applySnapshot(snap)
            }
            if !rd.entries.isEmpty {
                try checker.persisting(rd.entries, into: node.storage, node: node.id)
                try node.storage.append(rd.entries)
            }
            if let hs = rd.hardState { node.storage.setHardState(hs) }
            // A leader's appends may leave before its own write is durable (§10.2.1).
            let (early, late) = rd.splitMessages()
            for m in early { network.send(m, now: now, rng: &rng) }
            // Durable disks: a crash between writing and syncing loses what the Ready wrote
            // (torn), and nothing that depends on it was sent yet.
            if faultsActive && chance(options.midReadyCrashPerMille) {
                crash(node, downFor: rng.next(below: 20))
                log("(mid-ready)")
                return
            }
            if !background {
                try node.disk.sync(node.storage)
                for m in late { network.send(m, now: now, rng: &rng) }
            }
            if let snap = rd.snapshot {
                node.appliedIndex = snap.metadata.index
                node.stateHash = SimNode.decodeHash(snap.data)
                try checker.applied(node.appliedIndex, hash: node.stateHash, node: node.id)
            }
            for e in rd.committedEntries {
                guard e.index == node.appliedIndex.next else {
                    throw InvariantChecker.Violation.broken("apply order", "\(node.id) applies \(e.index) after \(node.appliedIndex)")
                }
                node.stateHash = SimNode.mix(node.stateHash, e)
                node.appliedIndex = e.index
                try checker.applied(e.index, hash: node.stateHash, node: node.id)
            }
            for rs in rd.readStates { try readStateArrived(node, rs) }
            if background {
                node.unsynced.append((raft.advanceWritten(rd), late))
            } else {
                raft.advance(rd)
            }
            try serveReads(node)
        }
        if raft.commitIndex > node.lastSeenCommit {
            try checker.committed(upTo: raft.commitIndex, from: node.lastSeenCommit, raft: raft, node: node.id)
            node.lastSeenCommit = raft.commitIndex
        }
        if raft.role == .leader {
            if checker.leaderOfTerm[raft.term] == nil {
                stats.elections += 1
                log("\(node.id) leads \(raft.term)")
            }
            try checker.sawLeader(node.id, term: raft.term, raft: raft)
        }
    }

    /// The background sync of a node finishes: everything written so far is durable, the
    /// messages that waited for it go out, and the node hears which writes are durable.
    private func finishSync(_ node: SimNode, handleOutput: Bool = true) throws {
        guard let raft = node.raft, let last = node.unsynced.last else { return }
        try node.disk.sync(node.storage)
        for (_, messages) in node.unsynced {
            for m in messages { network.send(m, now: now, rng: &rng) }
        }
        node.unsynced = []
        raft.synced(throughWrite: last.write)
        if handleOutput { try afterInput(node) }
    }

    // MARK: reads

    private func readStateArrived(_ node: SimNode, _ rs: ReadState) throws {
        guard let floor = readFloors.removeValue(forKey: rs.context) else { return }
        // Linearizability: the read reflects every write committed before it was issued.
        guard rs.index >= floor else {
            throw InvariantChecker.Violation.broken("linearizable read", "\(node.id) read at \(rs.index) < committed \(floor) at issue")
        }
        node.waitingReads.append((rs, floor))
    }

    private func serveReads(_ node: SimNode) throws {
        guard !node.waitingReads.isEmpty else { return }
        node.waitingReads.removeAll { (rs, _) in
            guard node.appliedIndex >= rs.index else { return false }
            readsServed += 1
            return true
        }
    }

    // MARK: faults

    private func injectFaults() throws {
        let n = nodes.count
        if chance(options.partitionPerMille) {
            stats.partitions += 1
            wakeAll()
            switch rng.next(below: 4) {
            case 0:
                network.blocked = []
                log("heal")
            case 1: // isolate one node both ways, often the leader (many leader changes, divergent logs)
                let a = rng.next(below: 2) == 0 ? (anyLeader()?.id.rawValue ?? 1) : UInt64(1 + rng.next(below: n))
                for b in 1...UInt64(n) where b != a { network.blocked.insert([a, b]); network.blocked.insert([b, a]) }
                log("isolate n\(a)")
            case 2: // asymmetric: one node cannot send to the others
                let a = UInt64(1 + rng.next(below: n))
                for b in 1...UInt64(n) where b != a { network.blocked.insert([a, b]) }
                log("mute n\(a)")
            default: // random split into two sides
                network.blocked = []
                var side: [Bool] = (0..<n).map { _ in rng.next(below: 2) == 0 }
                side[0] = true
                for a in 0..<n { for b in 0..<n where side[a] != side[b] { network.blocked.insert([UInt64(a + 1), UInt64(b + 1)]) } }
                log("split \(side.map { $0 ? "A" : "B" }.joined())")
            }
        }
        for node in nodes where !node.isUp && !node.stopped && node.downUntilTick <= now {
            try start(node)
            log("restart \(node.id)")
        }
        if chance(options.crashPerMille) {
            let node = rng.next(below: 2) == 0 ? (anyLeader() ?? nodes[0]) : nodes[rng.next(below: n)]
            if node.isUp { crash(node, downFor: rng.next(below: 60)) }
        }
    }

    // MARK: clients and operators

    private func clientActivity(liveness: Bool) throws {
        // With quiescence, clients come in bursts so groups go idle (and must wake) in between.
        if options.raft.quiesceAfterIdleTicks != nil && !liveness && (now / 40) % 2 == 1 { return }
        if chance(options.proposePerMille), let leader = anyLeader() {
            nextProposal += 1
            let data = SimNode.encodeHash(options.seed &* 1_000_003 &+ nextProposal)
            _ = try? leader.raft!.propose(data)
            try afterInput(leader)
        }
        if chance(options.readPerMille) {
            let node = nodes[rng.next(below: nodes.count)]
            if let raft = node.raft {
                nextRead += 1
                let ctx = Array("r\(nextRead)".utf8)
                readFloors[ctx] = checker.maxCommitted
                if (try? raft.readIndex(context: ctx)) == nil { readFloors[ctx] = nil }
                try afterInput(node)
            }
        }
        if chance(options.snapshotPerMille) {
            let node = nodes[rng.next(below: nodes.count)]
            if let raft = node.raft, node.appliedIndex > node.storage.firstIndex + 8 {
                let index = node.appliedIndex
                try node.storage.createSnapshot(index: index, conf: raft.confState(atIndex: index),
                                                data: SimNode.encodeHash(node.stateHash))
                try node.storage.compact(upTo: LogIndex(index.rawValue - UInt64(rng.next(below: 4))))
                stats.snapshots += 1
            }
        }
        guard !liveness else { return }
        if chance(options.transferPerMille), let leader = anyLeader() {
            let voters = leader.raft!.conf.voters.filter { $0 != leader.id }
            if let target = voters.isEmpty ? nil : voters[rng.next(below: voters.count)],
               (try? leader.raft!.transferLeadership(to: target)) != nil {
                stats.transfers += 1
                log("transfer \(leader.id)->\(target)")
            }
            try afterInput(leader)
        }
        if chance(options.confChangePerMille), let leader = anyLeader() {
            try proposeMembershipChange(leader)
        }
    }

    private func proposeMembershipChange(_ leader: SimNode) throws {
        let raft = leader.raft!
        let conf = raft.conf
        var options: [ConfChange] = []
        for node in nodes where !conf.contains(node.id) && !node.stopped { options.append(ConfChange(.addLearner, node.id)) }
        for l in conf.learners { options.append(ConfChange(.addVoter, l)); options.append(ConfChange(.remove, l)) }
        if conf.voters.count > 3 { for v in conf.voters { options.append(ConfChange(.remove, v)) } }
        guard !options.isEmpty else { return }
        let cc = options[rng.next(below: options.count)]
        if (try? raft.proposeConfChange(cc)) != nil {
            stats.confChanges += 1
            log("conf \(cc.kind) \(cc.node) by \(leader.id)")
        }
        try afterInput(leader)
    }

    // MARK: liveness

    /// Heals all faults, decommissions removed nodes, and requires a leader to commit a fresh
    /// entry on every member within `livenessTicks`.
    private func healAndRequireProgress() throws {
        faultsActive = false
        network.heal()
        wakeAll()
        log("heal all")
        for node in nodes where !node.isUp && !node.stopped {
            try start(node)
        }
        var marker: (term: Term, index: LogIndex)?
        let deadline = now + options.livenessTicks
        while now < deadline {
            decommissionRemoved()
            try step()
            try clientActivity(liveness: true)
            guard let leader = anyLeader(), let raft = leader.raft else { continue }
            if marker?.term != raft.term, let index = try? raft.propose(Array("live".utf8)) {
                marker = (raft.term, index)
                try afterInput(leader)
            }
            guard let m = marker, m.term == raft.term, raft.commitIndex >= m.index else { continue }
            let members = raft.conf.allMembers
            let done = members.allSatisfy { id in
                guard let node = nodes.first(where: { $0.id == id }), node.isUp else { return false }
                guard node.appliedIndex >= m.index else { return false }
                // Compacted means committed there, and the checker already compared committed terms.
                return node.raft!.term(at: m.index).map { $0 == m.term } ?? true
            }
            if done { return }
        }
        let status = nodes.map { n in
            n.raft.map { "\($0.id):\($0.role)/\($0.term) last=\($0.lastIndex) commit=\($0.commitIndex) applied=\(n.appliedIndex) conf=\($0.conf)" } ?? "\(n.id):down"
        }.joined(separator: " | ")
        let progress = anyLeader().map { l in l.raft!.conf.allMembers.compactMap { id in
            l.raft!.progress(of: id).map { "\(id):\($0.state) m=\($0.match) n=\($0.next) paused=\($0.isPaused) probeSent=\($0.probeSent) infl=\($0.inflights.count)" } }.joined(separator: ", ") } ?? ""
        throw InvariantChecker.Violation.broken("liveness", "no progress within \(options.livenessTicks) ticks after healing: \(status) progress: \(progress)")
    }

    /// A node no live member lists any more is shut down, as an operator would.
    private func decommissionRemoved() {
        let live = nodes.compactMap { $0.raft }
        for node in nodes where node.isUp {
            if !live.contains(where: { $0.id != node.id && $0.conf.contains(node.id) }) {
                node.crash(&rng)
                node.stopped = true
                log("decommission \(node.id)")
            }
        }
    }

    // MARK: helpers

    /// What a driver does when routes change: wake every group so elections can happen.
    private func wakeAll() {
        for node in nodes { node.raft?.wake() }
    }

    /// The leader of the highest term among live nodes, if any.
    private func anyLeader() -> SimNode? {
        nodes.filter { $0.raft?.role == .leader }.max { $0.raft!.term < $1.raft!.term }
    }

    private func chance(_ perMille: Int) -> Bool { perMille > 0 && rng.next(below: 1000) < perMille }

    private func log(_ s: String) {
        if events.count > 200 { events.removeFirst(100) }
        events.append("@\(now) \(s)")
    }
}
