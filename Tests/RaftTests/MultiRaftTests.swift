import XCTest
@testable import Raft

final class MultiRaftTests: XCTestCase {
    /// Three hosts, each with `groups` groups over nodes 1-3; a synchronous batch transport.
    final class Hosts {
        var hosts: [NodeID: MultiRaft] = [:]
        var storages: [NodeID: [GroupID: MemoryStorage]] = [:]
        var batchesSent = 0
        var messagesSent = 0
        var down: Set<NodeID> = []

        init(groups: Int, config: RaftConfig) {
            let conf = ConfState(voters: [1, 2, 3].map(NodeID.init))
            for n in 1...3 {
                let id = NodeID(UInt64(n))
                let host = MultiRaft(nodeID: id)
                for g in 0..<groups {
                    let s = MemoryStorage(conf: conf)
                    storages[id, default: [:]][GroupID(UInt64(g))] = s
                    host.addGroup(RaftNode(id: id, group: GroupID(UInt64(g)), storage: s, config: config,
                                           random: SplitMix64(seed: UInt64(n * 100_000 + g))))
                }
                hosts[id] = host
            }
        }

        /// One driver round on every host: ready -> persist -> coalesce -> deliver.
        func round() {
            var outbox: [MessageBatch] = []
            for (id, host) in hosts.sorted(by: { $0.key < $1.key }) where !down.contains(id) {
                var co = HeartbeatCoalescer(from: id)
                for node in host.takeReadyGroups() {
                    let rd = node.ready()
                    let s = storages[id]![node.group]!
                    if let snap = rd.snapshot { try! s.applySnapshot(snap) }
                    try! s.append(rd.entries)
                    if let hs = rd.hardState { s.setHardState(hs) }
                    co.add(rd.messages)
                    node.advance(rd)
                    // As the server's driver does: a group with more to do stays on the list.
                    if node.hasReady { host.markDirty(node.group) }
                }
                outbox.append(contentsOf: co.drain())
            }
            for b in outbox where !down.contains(b.to) {
                batchesSent += 1
                messagesSent += b.messages.count + b.heartbeats.count + b.heartbeatResponses.count
                hosts[b.to]!.receive(b)
            }
        }

        func tick(_ n: Int) {
            for _ in 0..<n {
                for (id, h) in hosts where !down.contains(id) { h.tick() }
                for _ in 0..<4 { round() }
            }
        }
    }

    static func quiescingConfig() -> RaftConfig {
        var c = RaftConfig()
        c.electionTimeoutTicks = 10
        c.heartbeatTicks = 2
        c.quiesceAfterIdleTicks = 6
        return c
    }

    func test_coalescer_heartbeatsOfManyGroups_travelAsOneBatchPerPeer() {
        var co = HeartbeatCoalescer(from: NodeID(1))
        for g in 0..<100 {
            for peer in [2, 3] {
                co.add(Message(group: GroupID(UInt64(g)), from: NodeID(1), to: NodeID(UInt64(peer)), term: Term(1),
                               body: .heartbeat(Heartbeat(commit: LogIndex(5), round: 7))))
            }
        }
        let batches = co.drain()
        XCTAssertEqual(batches.map(\.to), [NodeID(2), NodeID(3)])
        XCTAssertEqual(batches[0].heartbeats.count, 100)
        XCTAssertEqual(batches[0].messages.count, 0)
        XCTAssertEqual(batches[0].expanded().count, 100)
        XCTAssertEqual(batches[0].expanded()[3].group, GroupID(3))
    }

    func test_multiRaft_idleGroups_quiesceAndStopSendingHeartbeats() {
        let h = Hosts(groups: 50, config: Self.quiescingConfig())
        h.tick(60)
        XCTAssertEqual(h.hosts.values.reduce(0) { $0 + $1.activeGroupCount }, 0)
        let before = h.messagesSent
        h.tick(50)
        XCTAssertEqual(h.messagesSent, before)
        XCTAssertEqual(h.hosts[NodeID(1)]!.group(GroupID(0))!.quiescedTicks > 0, true)
    }

    func test_multiRaft_proposalToQuiescedGroup_wakesAndCommits() throws {
        let h = Hosts(groups: 5, config: Self.quiescingConfig())
        h.tick(60)
        let host = h.hosts.values.first { $0.group(GroupID(2))!.role == .leader }!
        let leader = host.group(GroupID(2))!
        try leader.propose([1, 2, 3])
        host.markDirty(GroupID(2))
        h.tick(3)
        let applied = h.hosts.values.map { $0.group(GroupID(2))!.commitIndex }
        XCTAssertTrue(applied.allSatisfy { $0 == leader.lastIndex })
        h.tick(30)
        XCTAssertEqual(h.hosts.values.reduce(0) { $0 + $1.activeGroupCount }, 0)
    }

    func test_multiRaft_leaderDiesWhileQuiesced_wakeGroupsElectsNewLeader() {
        let h = Hosts(groups: 4, config: Self.quiescingConfig())
        h.tick(60)
        let g = GroupID(1)
        let oldLeader = h.hosts.values.first { $0.group(g)!.role == .leader }!.nodeID
        h.down.insert(oldLeader)
        h.tick(40)
        // Nobody notices on their own: the group is quiet.
        XCTAssertTrue(h.hosts.filter { $0.key != oldLeader }.allSatisfy { $0.value.group(g)!.role == .follower })
        for (id, host) in h.hosts where id != oldLeader { host.wakeQuiesced { $0.leader == oldLeader } }
        h.tick(40)
        let leaders = h.hosts.filter { $0.key != oldLeader && $0.value.group(g)!.role == .leader }
        XCTAssertEqual(leaders.count, 1)
    }

    func test_multiRaft_leaderLosesBothFollowersWhileQuiesced_wakeQuiescedStepsItDown() {
        let h = Hosts(groups: 4, config: Self.quiescingConfig())
        h.tick(60)
        let g = GroupID(1)
        let leaderHost = h.hosts.values.first { $0.group(g)!.role == .leader }!
        for id in h.hosts.keys where id != leaderHost.nodeID { h.down.insert(id) }
        h.tick(40)
        // A quiesced leader does not tick: it notices nothing on its own.
        XCTAssertEqual(leaderHost.group(g)!.role, .leader)
        // Only the groups the predicate names wake.
        leaderHost.wakeQuiesced { $0.group == g }
        h.tick(40)
        XCTAssertNotEqual(leaderHost.group(g)!.role, .leader)
        XCTAssertTrue(leaderHost.group(g)!.lostQuorum)
        let others = (0..<4).map { GroupID(UInt64($0)) }.filter { $0 != g && leaderHost.group($0)!.isQuiesced }
        XCTAssertTrue(others.allSatisfy { leaderHost.group($0)!.role == .leader || leaderHost.group($0)!.leader != nil })
        XCTAssertTrue(others.allSatisfy { !leaderHost.group($0)!.lostQuorum })
    }

    /// The driver reschedules itself on `hasDirtyGroups` instead of scanning every group for a
    /// Ready: every input that gives a group a Ready must have marked it.
    func test_multiRaft_groupsWithWork_areMarkedDirty_andIdleHostsAreClean() throws {
        let groups = 12
        let h = Hosts(groups: groups, config: Self.quiescingConfig())
        func readyWithoutMark(_ host: MultiRaft) -> Bool {
            !host.hasDirtyGroups && (0..<groups).contains { host.group(GroupID(UInt64($0)))!.hasReady }
        }
        for _ in 0..<70 {
            for host in h.hosts.values {
                host.tick()
                XCTAssertFalse(readyWithoutMark(host), "after a tick")
            }
            for _ in 0..<4 {
                h.round()
                for host in h.hosts.values { XCTAssertFalse(readyWithoutMark(host), "after delivery") }
            }
        }
        // All quiesced and drained: nothing to do, nothing marked.
        for host in h.hosts.values {
            XCTAssertFalse(host.hasDirtyGroups)
            XCTAssertEqual(host.activeGroupCount, 0)
        }
        let host = h.hosts.values.first { $0.group(GroupID(3))!.role == .leader }!
        try host.group(GroupID(3))!.propose([7])
        host.markDirty(GroupID(3))
        XCTAssertTrue(host.hasDirtyGroups)
    }

    /// A quiesced group is not visited by the host's tick; one that wakes is, until it quiesces
    /// again; and the ticks it slept through still count on its clock (leases, heartbeat rounds).
    func test_multiRaft_quiescedGroupsAreNotTicked_wokenOnesAreUntilTheyQuiesceAgain() throws {
        let h = Hosts(groups: 8, config: Self.quiescingConfig())
        h.tick(60)
        for host in h.hosts.values {
            XCTAssertEqual(host.groupCount, 8)
            XCTAssertEqual(host.tickingGroupCount, 0)
        }
        let host = h.hosts.values.first { $0.group(GroupID(5))!.role == .leader }!
        let leader = host.group(GroupID(5))!
        try leader.propose([9])
        // The proposal woke the group: it is back on the tick list, without a markDirty.
        XCTAssertEqual(host.tickingGroupCount, 1)
        host.markDirty(GroupID(5))
        h.tick(1)
        XCTAssertEqual(h.hosts.values.map(\.tickingGroupCount), [1, 1, 1])
        h.tick(40)
        XCTAssertTrue(h.hosts.values.allSatisfy { $0.group(GroupID(5))!.commitIndex == leader.lastIndex })
        XCTAssertEqual(h.hosts.values.map(\.tickingGroupCount), [0, 0, 0])
        // Every node's clock counts every host tick (101), quiesced or not.
        for host in h.hosts.values {
            for g in 0..<8 {
                let node = host.group(GroupID(UInt64(g)))!
                XCTAssertEqual(node.ticksSinceStart, 101)
                XCTAssertGreaterThan(node.quiescedTicks, 0)
            }
        }
    }

    /// A removed group leaves the tick list; a quiesced follower woken by `wakeQuiesced` joins it.
    func test_multiRaft_removedGroupLeavesTickList_wakeGroupsRejoins() {
        let h = Hosts(groups: 3, config: Self.quiescingConfig())
        h.tick(60)
        let host = h.hosts[NodeID(1)]!
        let g = GroupID(0)
        let node = host.group(g)!
        node.wake()
        XCTAssertEqual(host.tickingGroupCount, 1)
        host.removeGroup(g)
        host.tick()
        XCTAssertEqual(host.tickingGroupCount, 0)
        let follower = h.hosts.values.first { $0.group(GroupID(1))!.role == .follower }!
        let leaderID = follower.group(GroupID(1))!.leader!
        follower.wakeQuiesced { $0.leader == leaderID }
        XCTAssertGreaterThan(follower.tickingGroupCount, 0)
    }
}
