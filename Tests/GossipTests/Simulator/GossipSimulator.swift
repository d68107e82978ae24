@testable import Gossip

/// A failed schedule: the seed replays it exactly.
struct GossipSimFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var tick: Int
    var what: String
    var options: String
    var events: [String]

    var description: String {
        "gossip-sim seed \(seed) tick \(tick): \(what)\n  options: \(options)\n  last events:\n    "
            + events.suffix(25).joined(separator: "\n    ")
    }
}

/// N SWIM nodes on a simulated network: seeded loss, duplication, delay, partitions
/// (symmetric and one-way), crashes and restarts (a restart is a new boot token). After the
/// fault phase everything heals (some nodes stay down) and every live view must agree within
/// `boundPeriods` protocol periods.
final class GossipSimulator {
    final class Node {
        let index: Int
        var boot = 0
        var swim: SWIM?
        var startAt = 0
        var downUntil: Int?
        let address: String
        /// The running boot's identity, kept beside `swim`: reading it through the optional
        /// struct would copy the whole state machine on every lookup.
        var id: MemberID?
        init(index: Int) {
            self.index = index
            self.address = "n\(index + 1):6222"
        }
    }

    struct InFlight {
        var at: Int
        var from: Int
        var to: MemberID
        var bytes: [UInt8]
    }

    let options: GossipSimOptions
    private(set) var nodes: [Node]
    private var rng: SplitMix64
    private var inFlight: [InFlight] = []
    /// Directed pairs (from, to) that cannot talk.
    private var blocked: Set<[Int]> = []
    private var dropPercent: Int
    private var duplicatePercent: Int
    private var maxDelay: Int
    private(set) var now = 0
    private(set) var events: [String] = []
    private var healedAt: Int?
    /// Periods from healing to agreement (set when the run converged).
    private(set) var convergedAfterPeriods: Int?
    var stats = (messages: 0, dropped: 0, crashes: 0, partitions: 0, suspicions: 0, deaths: 0, refutations: 0)
    /// Every status change any node reported, per member (for scenario assertions).
    private(set) var changesSeen: [(observer: Int, change: MemberChange)] = []
    var recordEvents = true
    /// A scenario's one-way mute: (node, tick it ends).
    var unmuteAt: (Int, Int)?

    init(options: GossipSimOptions) {
        self.options = options
        self.nodes = (0..<options.nodes).map(Node.init)
        self.rng = SplitMix64(seed: options.seed)
        self.dropPercent = options.dropPercent
        self.duplicatePercent = options.duplicatePercent
        self.maxDelay = options.maxDelayTicks
        for (i, n) in nodes.enumerated() { n.startAt = options.startDelays[i] }
    }

    func log(_ s: @autoclosure () -> String) {
        if recordEvents { events.append("t\(now) \(s())") }
    }

    func fail(_ what: String) -> GossipSimFailure {
        GossipSimFailure(seed: options.seed, tick: now, what: what, options: options.description, events: events)
    }

    // MARK: - running

    /// Fault phase, heal, then run until every live view agrees (or the bound passes).
    func run() throws {
        while now < options.faultTicks {
            try step(faults: true)
        }
        heal()
        let bound = now + options.boundPeriods * options.config.periodTicks
        while now < bound {
            try step(faults: false)
            if now % options.config.periodTicks == 0, agreement() == nil {
                convergedAfterPeriods = (now - healedAt!) / options.config.periodTicks
                return
            }
        }
        throw fail("no agreement \(options.boundPeriods) periods after healing: \(agreement() ?? "")")
    }

    /// Advances one tick: deliveries, faults, then every node's tick.
    func step(faults: Bool) throws {
        now += 1
        let due = inFlight.filter { $0.at <= now }
        inFlight.removeAll { $0.at <= now }
        for m in due { try deliver(m) }
        if faults { injectFaults() }
        if let (i, t) = unmuteAt, now >= t {
            blocked = blocked.filter { $0[0] != i }
            unmuteAt = nil
            log("unmute n\(i + 1)")
        }
        for n in nodes {
            if n.id == nil, let until = n.downUntil, until <= now { boot(n) }
            if n.id == nil, n.downUntil == nil, n.boot == 0, n.startAt <= now { boot(n) }
            guard n.id != nil else { continue }
            let out = n.swim!.tick()
            try perform(out, at: n)
        }
    }

    func boot(_ n: Node) {
        n.boot += 1
        n.downUntil = nil
        let id = MemberID(name: "n\(n.index + 1)", address: n.address, token: "b\(n.boot)")
        n.swim = SWIM(myself: id, config: options.config, seed: rng.next())
        n.id = id
        log("boot \(id)")
        var out = n.swim!.setSeeds(options.seeds[n.index].map { nodes[$0].address })
        if options.dns {
            out += n.swim!.dnsAnswer(name: "cluster:6222", addresses: nodes.map(\.address))
        }
        try? perform(out, at: n)
    }

    func crash(_ n: Node, until: Int?) {
        guard n.id != nil else { return }
        stats.crashes += 1
        log("crash n\(n.index + 1)\(until.map { " until t\($0)" } ?? " for good")")
        n.swim = nil
        n.id = nil
        n.downUntil = until
    }

    // MARK: - network

    private func deliver(_ m: InFlight) throws {
        guard let dest = nodes.first(where: { $0.id == m.to }), !blocked.contains([m.from, dest.index]) else { return }
        let msg: GossipMessage
        do {
            msg = try GossipCodec.decode(m.bytes)
        } catch {
            throw fail("codec: \(error)")
        }
        let out = dest.swim!.receive(msg)
        try perform(out, at: dest)
    }

    private func send(_ msg: GossipMessage, from: Int, to: MemberID, lossy: Bool = true) {
        stats.messages += 1
        guard let dest = nodes.first(where: { $0.id?.address == to.address }), !blocked.contains([from, dest.index]) else {
            stats.dropped += 1
            return
        }
        if lossy, dropPercent > 0, rng.next(below: 100) < dropPercent {
            stats.dropped += 1
            return
        }
        let bytes = GossipCodec.encode(msg)
        let copies = lossy && duplicatePercent > 0 && rng.next(below: 100) < duplicatePercent ? 2 : 1
        for _ in 0..<copies {
            inFlight.append(InFlight(at: now + 1 + rng.next(below: maxDelay), from: from, to: to, bytes: bytes))
        }
    }

    private func perform(_ out: [GossipDirective], at n: Node) throws {
        for d in out {
            guard let me = n.id else { return }
            switch d {
            case let .send(m, to):
                send(m, from: n.index, to: to)
            case let .connect(address):
                // A route: both ends exchange join messages when the link works both ways.
                guard let peer = nodes.first(where: { $0.address == address }), let them = peer.id, peer !== n,
                      !blocked.contains([n.index, peer.index]), !blocked.contains([peer.index, n.index]) else { continue }
                send(n.swim!.joinMessage(), from: n.index, to: them, lossy: false)
                send(peer.swim!.joinMessage(), from: peer.index, to: me, lossy: false)
            case let .changed(c):
                if let p = c.previous, !c.status.supersedes(p) {
                    throw fail("n\(n.index + 1) replaced \(p) by \(c.status) for \(c.member)")
                }
                changesSeen.append((n.index, c))
                switch c.status {
                case .suspect: stats.suspicions += 1
                case .dead: stats.deaths += 1
                case .alive: if c.previous.map({ $0.rank > 0 }) == true { stats.refutations += 1 }
                case .left: break
                }
                log("n\(n.index + 1): \(c.member) \(c.previous.map(String.init(describing:)) ?? "new") -> \(c.status)")
            }
        }
    }

    // MARK: - faults

    private func injectFaults() {
        let n = nodes.count
        if options.partitionPerMille > 0, rng.next(below: 1000) < options.partitionPerMille {
            stats.partitions += 1
            switch rng.next(below: 4) {
            case 0:
                blocked = []
                log("heal partitions")
            case 1:
                let a = rng.next(below: n)
                for b in 0..<n where b != a { blocked.insert([a, b]); blocked.insert([b, a]) }
                log("isolate n\(a + 1)")
            case 2:
                let a = rng.next(below: n)
                for b in 0..<n where b != a { blocked.insert([a, b]) }
                log("mute n\(a + 1) (hears, cannot send)")
            default:
                blocked = []
                let side = (0..<n).map { _ in rng.next(below: 2) == 0 }
                for a in 0..<n { for b in 0..<n where side[a] != side[b] { blocked.insert([a, b]) } }
                log("split \(side.map { $0 ? "A" : "B" }.joined())")
            }
        }
        if options.crashPerMille > 0, rng.next(below: 1000) < options.crashPerMille {
            crash(nodes[rng.next(below: n)], until: now + 1 + rng.next(below: 100))
        }
    }

    /// Ends the faults: links work, no loss, delay one tick; down nodes come back except
    /// those chosen to stay down, which crash now if they are up.
    func heal() {
        blocked = []
        dropPercent = 0
        duplicatePercent = 0
        maxDelay = 1
        healedAt = now
        log("HEAL")
        for n in nodes {
            if options.leaveDown.contains(n.index) {
                crash(n, until: nil)
                n.downUntil = nil
                n.startAt = Int.max
            } else if n.id == nil {
                n.startAt = now
                n.downUntil = now
            }
        }
    }

    // MARK: - checks

    /// nil when every live node's view holds exactly the live nodes' current boots, all
    /// alive, at the same incarnations; else what differs.
    func agreement() -> String? {
        let live = nodes.compactMap(\.swim)
        let ids = Set(live.map(\.myself))
        var reference: [MemberID: MemberStatus]?
        for s in live {
            let v = s.view.filter { $0.value.isLive }
            if Set(v.keys) != ids {
                return "\(s.myself) sees live \(v.keys.sorted()), expected \(ids.sorted())"
            }
            if let bad = v.first(where: { $0.value.rank != 0 }) { return "\(s.myself) holds \(bad.key) \(bad.value)" }
            if let r = reference, r != v { return "\(s.myself) differs: \(v) vs \(r)" }
            reference = v
        }
        return nil
    }
}

extension GossipSimulator {
    /// Scenario fault: nodes in `side` and the rest cannot talk either way (nil heals).
    func split(_ side: Set<Int>?) {
        blocked = []
        guard let side else { log("heal partitions"); return }
        for a in nodes.indices { for b in nodes.indices where side.contains(a) != side.contains(b) { blocked.insert([a, b]) } }
        log("split \(side.sorted())")
    }

    /// One-way fault for scenario tests: node `index` cannot send for `ticks` ticks.
    func mute(_ index: Int, ticks: Int) {
        for b in nodes.indices where b != index { blocked.insert([index, b]) }
        log("mute n\(index + 1) for \(ticks) ticks")
        unmuteAt = (index, now + ticks)
    }
}
