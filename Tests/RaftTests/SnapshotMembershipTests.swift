import XCTest
@testable import Raft

final class SnapshotTests: XCTestCase {
    func test_installSnapshot_followerBehindCompactedLog_catchesUpFromSnapshot() throws {
        let c = TestCluster(3)
        c.elect(1)
        c.isolate(3)
        for i in 0..<20 { try c.node(1).propose([UInt8(i)]) }
        c.deliverAll()
        let leader = c.node(1), s1 = c.storages[NodeID(1)]!
        let applied = leader.appliedIndex
        try s1.createSnapshot(index: applied, conf: leader.confState(atIndex: applied), data: [42])
        try s1.compact(upTo: applied)
        c.heal()
        c.tick(times: 3)
        XCTAssertEqual(c.storages[NodeID(3)]!.snapshot().data, [42])
        XCTAssertEqual(c.node(3).commitIndex, leader.commitIndex)
        try c.node(1).propose([99])
        c.deliverAll()
        XCTAssertEqual(c.appliedData(3).last, [99])
    }

    func test_installSnapshot_olderThanCommit_isIgnored() {
        let c = TestCluster(1)
        c.tick(times: 25)
        for i in 0..<3 { try! c.node(1).propose([UInt8(i)]) }
        c.deliverAll()
        let n = RaftNode(id: NodeID(2), storage: MemoryStorage(conf: ConfState(voters: [NodeID(1), NodeID(2)])),
                         config: TestCluster.defaultConfig(), random: SplitMix64(seed: 3))
        let snap = Snapshot(metadata: SnapshotMetadata(index: LogIndex(2), term: Term(1), conf: ConfState(voters: [NodeID(1), NodeID(2)])), data: [1])
        n.step(Message(group: GroupID(0), from: NodeID(1), to: NodeID(2), term: Term(1), body: .installSnapshot(snap)))
        XCTAssertEqual(n.commitIndex, LogIndex(2))
        n.advance(n.ready())
        n.step(Message(group: GroupID(0), from: NodeID(1), to: NodeID(2), term: Term(1), body: .installSnapshot(snap)))
        XCTAssertNil(n.ready().snapshot)
    }
}

final class MembershipTests: XCTestCase {
    func test_confChange_addLearner_receivesLogButDoesNotVote() throws {
        let c = TestCluster(3)
        c.elect(1)
        try c.node(1).propose([1])
        c.deliverAll()
        c.add(NodeID(4))
        try c.node(1).proposeConfChange(ConfChange(.addLearner, NodeID(4)))
        c.deliverAll()
        c.tick(times: 2)
        XCTAssertEqual(c.node(4).conf.learners, [NodeID(4)])
        XCTAssertEqual(c.appliedData(4), [[1]])
        XCTAssertEqual(c.node(1).conf.voters.count, 3)
        // A learner never campaigns.
        c.isolate(4)
        c.tick([4], times: 50)
        XCTAssertEqual(c.node(4).role, .follower)
    }

    func test_confChange_promoteLearner_countsTowardQuorum() throws {
        let c = TestCluster(3)
        c.elect(1)
        c.add(NodeID(4))
        try c.node(1).proposeConfChange(ConfChange(.addLearner, NodeID(4)))
        c.deliverAll()
        try c.node(1).proposeConfChange(ConfChange(.addVoter, NodeID(4)))
        c.deliverAll()
        XCTAssertEqual(c.node(1).conf.voters, [1, 2, 3, 4].map(NodeID.init))
        // With 4 voters, a quorum is 3: two isolated nodes block commits.
        c.isolate(2)
        c.isolate(3)
        let before = c.node(1).commitIndex
        try c.node(1).propose([5])
        c.deliverAll()
        XCTAssertEqual(c.node(1).commitIndex, before)
    }

    func test_confChange_secondBeforeFirstCommits_isRefused() throws {
        let c = TestCluster(3)
        c.elect(1)
        c.isolate(2)
        c.isolate(3)
        try c.node(1).proposeConfChange(ConfChange(.addLearner, NodeID(4)))
        XCTAssertThrowsError(try c.node(1).proposeConfChange(ConfChange(.addLearner, NodeID(5)))) {
            XCTAssertEqual($0 as? RaftError, .confChangeInProgress)
        }
    }

    func test_confChange_removeFollower_shrinksQuorum() throws {
        let c = TestCluster(3)
        c.elect(1)
        try c.node(1).proposeConfChange(ConfChange(.remove, NodeID(3)))
        c.deliverAll()
        XCTAssertEqual(c.node(1).conf.voters, [NodeID(1), NodeID(2)])
        c.isolate(3)
        try c.node(1).propose([7])
        c.deliverAll()
        XCTAssertEqual(c.appliedData(2).last, [7])
    }

    func test_confChange_removeLeader_leaderStepsDownAfterCommit() throws {
        let c = TestCluster(3)
        c.elect(1)
        try c.node(1).proposeConfChange(ConfChange(.remove, NodeID(1)))
        c.deliverAll()
        XCTAssertEqual(c.node(1).role, .follower)
        XCTAssertFalse(c.node(1).conf.contains(NodeID(1)))
        c.tick([2, 3], times: 40)
        XCTAssertEqual(c.leaders.count, 1)
        XCTAssertNotEqual(c.leaders.first, NodeID(1))
    }

    func test_confChangeRecord_roundTrips_andRejectsTruncatedInput() throws {
        let r = ConfChangeRecord(change: ConfChange(.addVoter, NodeID(7)), result: ConfState(voters: [NodeID(1), NodeID(7)], learners: [NodeID(9)]))
        XCTAssertEqual(try ConfChangeRecord.decode(r.encoded()), r)
        XCTAssertThrowsError(try ConfChangeRecord.decode(Array(r.encoded().dropLast(3))))
        XCTAssertThrowsError(try ConfChangeRecord.decode([9]))
    }
}

/// `applicationInstallsSnapshots`: the follower neither installs nor acknowledges a snapshot it
/// needs; it records an offer, and after the application installed the state into storage a
/// node restarted from that storage continues from the log.
final class ApplicationSnapshotTests: XCTestCase {
    private let conf = ConfState(voters: [NodeID(1), NodeID(2)])

    private func follower(_ storage: MemoryStorage) -> RaftNode {
        var cfg = TestCluster.defaultConfig()
        cfg.applicationInstallsSnapshots = true
        return RaftNode(id: NodeID(2), storage: storage, config: cfg, random: SplitMix64(seed: 3))
    }

    private func offer(_ n: RaftNode, index: Int, term: Int = 1) {
        let snap = Snapshot(metadata: SnapshotMetadata(index: LogIndex(UInt64(index)), term: Term(UInt64(term)), conf: conf))
        n.step(Message(group: GroupID(0), from: NodeID(1), to: NodeID(2), term: Term(1), body: .installSnapshot(snap)))
    }

    func test_neededSnapshot_isOfferedNotInstalledNorAcknowledged() {
        let n = follower(MemoryStorage(conf: conf))
        offer(n, index: 50)
        let rd = n.ready()
        XCTAssertNil(rd.snapshot)
        XCTAssertFalse(rd.messages.contains { if case .appendResponse = $0.body { return true } else { return false } },
                       "a snapshot the follower has no data for must not be acknowledged")
        XCTAssertEqual(n.commitIndex, LogIndex(0))
        XCTAssertEqual(n.takeSnapshotOffer()?.index, LogIndex(50))
        XCTAssertNil(n.takeSnapshotOffer(), "an offer is handed out once")
        n.advance(rd)
    }

    func test_snapshotCoveredByTheLog_isAcknowledgedWithoutOffer() throws {
        let storage = MemoryStorage(conf: conf)
        try storage.append([Entry(term: Term(1), index: LogIndex(1), type: .normal, data: [1]),
                            Entry(term: Term(1), index: LogIndex(2), type: .normal, data: [2])])
        let n = follower(storage)
        offer(n, index: 2)
        XCTAssertNil(n.takeSnapshotOffer())
        XCTAssertEqual(n.commitIndex, LogIndex(2))
        XCTAssertTrue(n.ready().messages.contains { if case .appendResponse(let r) = $0.body { return !r.reject && r.index == LogIndex(2) } else { return false } })
    }

    func test_afterInstallIntoStorage_restartedNodeAcceptsTheNextEntries() throws {
        let storage = MemoryStorage(conf: conf)
        try storage.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: LogIndex(50), term: Term(1), conf: conf)))
        let n = follower(storage)
        n.step(Message(group: GroupID(0), from: NodeID(1), to: NodeID(2), term: Term(1),
                       body: .appendEntries(AppendEntries(prevLogIndex: LogIndex(50), prevLogTerm: Term(1),
                                                          entries: [Entry(term: Term(1), index: LogIndex(51), type: .normal, data: [7])],
                                                          commit: LogIndex(51)))))
        let rd = n.ready()
        XCTAssertTrue(rd.messages.contains { if case .appendResponse(let r) = $0.body { return !r.reject && r.index == LogIndex(51) } else { return false } })
        // Committed entries are applied once durable here too: after this Ready is persisted.
        try storage.append(rd.entries)
        n.advance(rd)
        XCTAssertEqual(n.ready().committedEntries.map(\.data), [[7]])
    }
}

/// A follower that lost its log after acknowledging entries (a wiped volume) says so on the
/// next heartbeat, and the leader stops counting on the lost copies and re-sends them.
final class LostLogTests: XCTestCase {
    func test_wipedFollower_isProbedFromItsRealEnd_andCaughtUpWithoutNewEntries() throws {
        let c = TestCluster(3)
        c.elect(1)
        for i in 0..<5 { try c.node(1).propose([UInt8(i)]) }
        c.deliverAll()
        let last = c.node(1).lastIndex
        XCTAssertEqual(c.node(1).progress(of: NodeID(3))?.match, last)
        // Node 3's disk is replaced: empty storage, same id.
        c.storages[NodeID(3)] = MemoryStorage(conf: ConfState(voters: [NodeID(1), NodeID(2), NodeID(3)]))
        c.restart(3)
        // No new entries: only heartbeats reveal the loss.
        c.tick([1], times: 2)
        c.deliverAll()
        XCTAssertEqual(c.node(3).lastIndex, last)
        XCTAssertEqual(c.appliedData(3).count, c.appliedData(1).count)
        XCTAssertEqual(c.node(1).progress(of: NodeID(3))?.match, last)
    }

    func test_staleLossReport_forAnIndexAtOrAboveMatch_isIgnored() throws {
        let c = TestCluster(2)
        c.elect(1)
        try c.node(1).propose([1])
        c.deliverAll()
        let match = try XCTUnwrap(c.node(1).progress(of: NodeID(2))?.match)
        c.node(1).step(Message(group: GroupID(0), from: NodeID(2), to: NodeID(1), term: c.node(1).hardState.term,
                               body: .appendResponse(AppendResponse(index: .zero, reject: true, hintIndex: match))))
        XCTAssertEqual(c.node(1).progress(of: NodeID(2))?.match, match)
    }
}
