import XCTest
@testable import Gossip

/// Single-node behaviour of the state machine, driven by hand.
final class SWIMTests: XCTestCase {
    static func id(_ n: Int, boot: Int = 0) -> MemberID {
        MemberID(name: "n\(n)", address: "10.0.0.\(n):6222", token: "boot\(boot)-\(n)")
    }

    var cfg: GossipConfig {
        var c = GossipConfig()
        c.periodTicks = 10
        c.pingTimeoutTicks = 3
        c.indirectProbes = 2
        return c
    }

    /// A node that knows `others` as alive(0), its directives discarded.
    func node(_ n: Int, knowing others: [Int]) -> SWIM {
        var s = SWIM(myself: Self.id(n), config: cfg, seed: UInt64(n))
        let join = GossipMessage(from: Self.id(others[0]), incarnation: Incarnation(0), kind: .syncReply,
                                 updates: others.map { MemberUpdate(member: Self.id($0), status: .alive(Incarnation(0))) })
        _ = s.receive(join)
        return s
    }

    static func sends(_ ds: [GossipDirective]) -> [(GossipMessage, MemberID)] {
        ds.compactMap { if case let .send(m, to) = $0 { return (m, to) } else { return nil } }
    }

    static func changes(_ ds: [GossipDirective]) -> [MemberChange] {
        ds.compactMap { if case let .changed(c) = $0 { return c } else { return nil } }
    }

    func ticks(_ s: inout SWIM, _ n: Int) -> [GossipDirective] {
        (0..<n).flatMap { _ in s.tick() }
    }

    func test_learningMembers_reportsChanges_andConnectsToThem() {
        var s = SWIM(myself: Self.id(1), config: cfg, seed: 1)
        let out = s.receive(GossipMessage(from: Self.id(2), incarnation: Incarnation(4), kind: .sync,
                                          updates: [MemberUpdate(member: Self.id(3), status: .alive(Incarnation(1)))]))
        XCTAssertEqual(Set(Self.changes(out).map(\.member)), [Self.id(2), Self.id(3)])
        XCTAssertTrue(out.contains(.connect(address: Self.id(3).address)))
        XCTAssertEqual(s.status(of: Self.id(2)), .alive(Incarnation(4)))
        // A sync is answered with the full view.
        let reply = Self.sends(out).first { $0.0.kind == .syncReply }
        XCTAssertEqual(reply?.1, Self.id(2))
        XCTAssertEqual(Set(reply?.0.updates.map(\.member) ?? []), [Self.id(1), Self.id(2), Self.id(3)])
    }

    func test_probe_pingIsAcked_andNobodyIsSuspected() {
        var s = node(1, knowing: [2])
        let out = ticks(&s, 10)
        guard let (ping, to) = Self.sends(out).first, case let .ping(seq) = ping.kind else { return XCTFail("no ping: \(out)") }
        XCTAssertEqual(to, Self.id(2))
        _ = s.receive(GossipMessage(from: Self.id(2), incarnation: Incarnation(0), kind: .ack(seq: seq)))
        _ = ticks(&s, 10)
        XCTAssertEqual(s.status(of: Self.id(2)), .alive(Incarnation(0)))
    }

    func test_noAck_asksHelpersIndirectly_thenSuspects_thenDeclaresDead() {
        var s = node(1, knowing: [2, 3, 4])
        var out = ticks(&s, 10)
        guard let (_, target) = Self.sends(out).first(where: { if case .ping = $0.0.kind { true } else { false } }) else {
            return XCTFail("no ping")
        }
        out = ticks(&s, cfg.pingTimeoutTicks)
        let reqs = Self.sends(out).filter { if case .pingReq(_, let t) = $0.0.kind { t == target } else { false } }
        XCTAssertEqual(reqs.count, 2, "k = 2 helpers")
        XCTAssertFalse(reqs.contains { $0.1 == target })
        out = ticks(&s, cfg.periodTicks - cfg.pingTimeoutTicks)
        XCTAssertEqual(s.status(of: target), .suspect(Incarnation(0)))
        XCTAssertTrue(Self.changes(out).contains { $0.member == target && $0.status == .suspect(Incarnation(0)) })
        // Suspicion lasts multiplier * ceil(log2(4 + 1)) = 3 * 3 periods.
        _ = ticks(&s, 3 * 3 * cfg.periodTicks - 1)
        XCTAssertEqual(s.status(of: target), .suspect(Incarnation(0)))
        _ = ticks(&s, 1)
        XCTAssertEqual(s.status(of: target), .dead(Incarnation(0)))
    }

    func test_indirectAck_relayedByHelper_preventsSuspicion() {
        var s = node(1, knowing: [2, 3])
        var out = ticks(&s, 10)
        guard let (ping, target) = Self.sends(out).first, case let .ping(seq) = ping.kind else { return XCTFail() }
        out = ticks(&s, cfg.pingTimeoutTicks)
        guard let (_, helper) = Self.sends(out).first else { return XCTFail("no ping-req") }
        _ = s.receive(GossipMessage(from: helper, incarnation: Incarnation(0), kind: .ack(seq: seq)))
        _ = ticks(&s, cfg.periodTicks)
        XCTAssertEqual(s.status(of: target), .alive(Incarnation(0)))
    }

    func test_helper_relaysPingReq_andForwardsTheAck() {
        var h = node(2, knowing: [1, 3])
        var out = h.receive(GossipMessage(from: Self.id(1), incarnation: Incarnation(0), kind: .pingReq(seq: 77, target: Self.id(3))))
        guard let (ping, to) = Self.sends(out).first, case let .ping(mine) = ping.kind else { return XCTFail() }
        XCTAssertEqual(to, Self.id(3))
        out = h.receive(GossipMessage(from: Self.id(3), incarnation: Incarnation(0), kind: .ack(seq: mine)))
        let acks = Self.sends(out).filter { $0.0.kind == .ack(seq: 77) }
        XCTAssertEqual(acks.map(\.1), [Self.id(1)])
    }

    func test_suspectedMember_refutesWithHigherIncarnation() {
        var s = node(2, knowing: [1])
        let out = s.receive(GossipMessage(from: Self.id(1), incarnation: Incarnation(0), kind: .ping(seq: 5),
                                          updates: [MemberUpdate(member: Self.id(2), status: .suspect(Incarnation(0)))]))
        XCTAssertEqual(s.incarnation, Incarnation(1))
        let ack = Self.sends(out).first { $0.0.kind == .ack(seq: 5) }
        XCTAssertEqual(ack?.0.incarnation, Incarnation(1))
        XCTAssertTrue(ack?.0.updates.contains(MemberUpdate(member: Self.id(2), status: .alive(Incarnation(1)))) ?? false)
        // The suspecter takes the refutation.
        var s1 = node(1, knowing: [2])
        _ = s1.receive(GossipMessage(from: Self.id(3), incarnation: Incarnation(0), kind: .syncReply,
                                     updates: [MemberUpdate(member: Self.id(2), status: .suspect(Incarnation(0)))]))
        XCTAssertEqual(s1.status(of: Self.id(2)), .suspect(Incarnation(0)))
        _ = s1.receive(ack!.0)
        XCTAssertEqual(s1.status(of: Self.id(2)), .alive(Incarnation(1)))
    }

    func test_forgedMaximalIncarnation_doesNotWrapAround() {
        var s = node(2, knowing: [1])
        _ = s.receive(GossipMessage(from: Self.id(1), incarnation: Incarnation(0), kind: .syncReply,
                                    updates: [MemberUpdate(member: Self.id(2), status: .suspect(Incarnation(.max - 1)))]))
        XCTAssertEqual(s.incarnation, Incarnation(.max))
        _ = s.receive(GossipMessage(from: Self.id(1), incarnation: Incarnation(0), kind: .syncReply,
                                    updates: [MemberUpdate(member: Self.id(2), status: .dead(Incarnation(.max)))]))
        XCTAssertEqual(s.incarnation, Incarnation(.max), "saturated, not wrapped to 0")
    }

    func test_memberThatWeHoldDead_isToldSoItCanRefute() {
        var s = node(1, knowing: [2])
        _ = s.receive(GossipMessage(from: Self.id(3), incarnation: Incarnation(0), kind: .syncReply,
                                    updates: [MemberUpdate(member: Self.id(2), status: .dead(Incarnation(0)))]))
        let out = s.receive(GossipMessage(from: Self.id(2), incarnation: Incarnation(0), kind: .ping(seq: 1)))
        let told = Self.sends(out).filter { $0.1 == Self.id(2) && $0.0.kind == .syncReply }
        XCTAssertTrue(told.first?.0.updates.contains(MemberUpdate(member: Self.id(2), status: .dead(Incarnation(0)))) ?? false)
        var two = node(2, knowing: [1])
        _ = two.receive(told[0].0)
        XCTAssertEqual(two.incarnation, Incarnation(1))
        XCTAssertEqual(two.status(of: two.myself), .alive(Incarnation(1)))
    }

    func test_newBootOfAKnownServer_retiresTheOldOne() {
        var s = node(1, knowing: [2, 3])
        let out = s.receive(GossipMessage(from: Self.id(2, boot: 1), incarnation: Incarnation(0), kind: .sync))
        XCTAssertEqual(s.status(of: Self.id(2)), .dead(Incarnation(0)))
        XCTAssertEqual(s.status(of: Self.id(2, boot: 1)), .alive(Incarnation(0)))
        XCTAssertTrue(Self.changes(out).contains { $0.member == Self.id(2) && $0.status == .dead(Incarnation(0)) })
        // And a node that hears of its own earlier boot declares it dead.
        var me = SWIM(myself: Self.id(1, boot: 1), config: cfg, seed: 1)
        _ = me.receive(GossipMessage(from: Self.id(2), incarnation: Incarnation(0), kind: .syncReply,
                                     updates: [MemberUpdate(member: Self.id(1), status: .alive(Incarnation(3)))]))
        XCTAssertEqual(me.status(of: Self.id(1)), .dead(Incarnation(3)))
    }

    func test_leave_tellsEveryLiveMember_andStops() {
        var s = node(1, knowing: [2, 3])
        let out = s.leave()
        XCTAssertEqual(Set(Self.sends(out).map(\.1)), [Self.id(2), Self.id(3)])
        XCTAssertEqual(s.status(of: s.myself), .left(Incarnation(0)))
        XCTAssertTrue(ticks(&s, 50).isEmpty)
        var other = node(2, knowing: [1, 3])
        _ = other.receive(Self.sends(out)[0].0)
        XCTAssertEqual(other.status(of: Self.id(1)), .left(Incarnation(0)))
        XCTAssertFalse(other.liveMembers.contains(Self.id(1)))
    }

    func test_discovery_connectsOnlyToAddressesThatAreNotLiveMembers() {
        var s = node(1, knowing: [2])
        let out = s.setSeeds([Self.id(1).address, Self.id(2).address, "10.0.0.9:6222"])
        XCTAssertEqual(out, [.connect(address: "10.0.0.9:6222")])
        XCTAssertEqual(s.dnsAnswer(name: "svc:6222", addresses: ["10.0.0.9:6222", "10.0.0.8:6222"]),
                       [.connect(address: "10.0.0.8:6222")])
        XCTAssertEqual(s.dnsAnswer(name: "svc:6222", addresses: ["10.0.0.9:6222", "10.0.0.8:6222"]), [], "nothing new")
        // Unknown addresses are retried every rejoin period.
        let later = ticks(&s, cfg.periodTicks * cfg.rejoinPeriods)
        let connects = later.filter { if case .connect = $0 { true } else { false } }
        XCTAssertEqual(Set(connects), [.connect(address: "10.0.0.9:6222"), .connect(address: "10.0.0.8:6222")])
        _ = s.dnsAnswer(name: "svc:6222", addresses: [])
        XCTAssertEqual(s.discoveryAddresses, [Self.id(1).address, Self.id(2).address, "10.0.0.9:6222"])
    }

    func test_piggybackedUpdate_isRetransmittedABoundedNumberOfTimes() {
        var s = node(1, knowing: [2, 3])
        for _ in 0..<100 { _ = s.message(.ping(seq: 1), to: Self.id(2)) } // drain the join's updates
        _ = s.receive(GossipMessage(from: Self.id(2), incarnation: Incarnation(0), kind: .syncReply,
                                    updates: [MemberUpdate(member: Self.id(4), status: .alive(Incarnation(0)))]))
        var carried = 0
        for _ in 0..<50 {
            let m = s.message(.ping(seq: 1), to: Self.id(2))
            if m.updates.contains(where: { $0.member == Self.id(4) }) { carried += 1 }
        }
        // lambda 3 * ceil(log2(4 + 1)) = 9 transmissions.
        XCTAssertEqual(carried, 9)
    }

    func test_sameSeed_sameDirectives() {
        func run() -> [GossipDirective] {
            var s = node(1, knowing: [2, 3, 4, 5])
            return ticks(&s, 300)
        }
        XCTAssertEqual(run(), run())
    }
}
