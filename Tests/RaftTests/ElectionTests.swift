import XCTest
@testable import Raft

final class ElectionTests: XCTestCase {
    func test_tick_singleNodeElectionTimeout_becomesLeader() {
        let c = TestCluster(1)
        c.tick(times: 25)
        XCTAssertEqual(c.node(1).role, .leader)
        XCTAssertEqual(c.node(1).term, Term(1))
    }

    func test_tick_threeNodes_electsExactlyOneLeader() {
        let c = TestCluster(3)
        c.tick(times: 30)
        XCTAssertEqual(c.leaders.count, 1)
        let term = c.node(1).term
        XCTAssertTrue([1, 2, 3].allSatisfy { c.node(UInt64($0)).term == term })
    }

    func test_requestVote_candidateWithStaleLog_isRejected() {
        var cfg = TestCluster.defaultConfig()
        cfg.preVote = false
        cfg.checkQuorum = false
        let c = TestCluster(3, config: cfg)
        c.elect(1)
        try! c.node(1).propose([1])
        c.isolate(3)
        try! c.node(1).propose([2])
        c.deliverAll()
        // n3 missed an entry: "a candidate with a stale log loses".
        c.heal()
        c.node(3).campaign(.election)
        c.deliverAll()
        XCTAssertNotEqual(c.node(3).role, .leader)
        XCTAssertEqual(c.node(3).vote, NodeID(3))
    }

    func test_requestVote_sameTermSecondCandidate_isRefused() {
        let r = RaftNode(id: NodeID(1), storage: MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init))),
                         config: TestCluster.defaultConfig(), random: SplitMix64(seed: 1))
        let req = VoteRequest(lastLogIndex: .zero, lastLogTerm: .zero, preVote: false, transfer: false)
        r.leaseGuardAfterRestart = false
        r.step(Message(group: GroupID(0), from: NodeID(2), to: NodeID(1), term: Term(1), body: .requestVote(req)))
        r.step(Message(group: GroupID(0), from: NodeID(3), to: NodeID(1), term: Term(1), body: .requestVote(req)))
        let votes = r.ready().messages.compactMap { m -> (NodeID, Bool)? in
            if case .voteResponse(let v) = m.body { return (m.to, v.granted) }
            return nil
        }
        XCTAssertEqual(votes.map(\.0), [NodeID(2), NodeID(3)])
        XCTAssertEqual(votes.map(\.1), [true, false])
        XCTAssertEqual(r.vote, NodeID(2))
    }

    func test_step_staleTermAppend_isIgnoredAndAnsweredWithNewerTerm() {
        let c = TestCluster(3)
        c.elect(1)
        let follower = c.node(2)
        let before = follower.lastIndex
        let stale = Message(group: GroupID(0), from: NodeID(3), to: NodeID(2), term: Term(0),
                            body: .appendEntries(AppendEntries(prevLogIndex: before, prevLogTerm: follower.term(at: before)!,
                                                               entries: [Entry(term: Term(0), index: before.next, data: [9])],
                                                               commit: .zero)))
        follower.step(stale)
        XCTAssertEqual(follower.lastIndex, before)
        let replies = follower.ready().messages
        XCTAssertEqual(replies.count, 1)
        XCTAssertEqual(replies.first?.term, follower.term)
    }

    func test_preVote_partitionedNodeRejoins_doesNotDisturbHealthyLeader() {
        let c = TestCluster(3)
        c.elect(1)
        let term = c.node(1).term
        c.isolate(3)
        // n3 times out repeatedly while cut off; pre-vote keeps its term from growing.
        c.tick([3], times: 60)
        XCTAssertEqual(c.node(3).term, term)
        c.heal()
        c.tick(times: 5)
        XCTAssertEqual(c.node(1).role, .leader)
        XCTAssertEqual(c.node(1).term, term)
    }

    func test_preVote_disabled_partitionedNodeRejoins_bumpsTerm() {
        // The counterpart that shows what pre-vote prevents.
        var cfg = TestCluster.defaultConfig()
        cfg.preVote = false
        cfg.checkQuorum = false
        let c = TestCluster(3, config: cfg)
        c.elect(1)
        let term = c.node(1).term
        c.isolate(3)
        c.tick([3], times: 60)
        XCTAssertGreaterThan(c.node(3).term, term)
    }

    func test_checkQuorum_leaderLosesQuorum_stepsDown() {
        let c = TestCluster(3)
        c.elect(1)
        XCTAssertFalse(c.node(1).lostQuorum)
        c.isolate(1)
        c.tick([1], times: 25)
        XCTAssertEqual(c.node(1).role, .follower)
        XCTAssertTrue(c.node(1).lostQuorum, "check-quorum's step down is reported as a lost quorum")
        // Leading again clears it (whoever wins the election after the heal hands it to n1).
        c.heal()
        c.tick(times: 60)
        if let other = c.leaders.first, other != NodeID(1) {
            try! c.node(other.rawValue).transferLeadership(to: NodeID(1))
            c.deliverAll()
        }
        XCTAssertEqual(c.leaders, [NodeID(1)])
        XCTAssertFalse(c.node(1).lostQuorum)
    }

    func test_transferLeadership_isNoLostQuorum() {
        let c = TestCluster(3)
        c.elect(1)
        try! c.node(1).transferLeadership(to: NodeID(2))
        c.deliverAll()
        XCTAssertEqual(c.leaders, [NodeID(2)])
        XCTAssertFalse(c.node(1).lostQuorum, "a leadership handed over is not a lost quorum")
    }

    func test_checkQuorum_followerInLease_ignoresVoteRequest() {
        let c = TestCluster(3)
        c.elect(1)
        let term = c.node(1).term
        // A forced (non-pre) vote request from n3 is ignored by n2, who hears from n1.
        let req = VoteRequest(lastLogIndex: c.node(3).lastIndex, lastLogTerm: c.node(3).term(at: c.node(3).lastIndex)!,
                              preVote: false, transfer: false)
        c.node(2).step(Message(group: GroupID(0), from: NodeID(3), to: NodeID(2), term: term.next, body: .requestVote(req)))
        XCTAssertEqual(c.node(2).term, term)
        XCTAssertEqual(c.node(2).leader, NodeID(1))
    }

    func test_transferLeadership_upToDateTarget_becomesLeader() {
        let c = TestCluster(3)
        c.elect(1)
        try! c.node(1).propose([1])
        c.deliverAll()
        try! c.node(1).transferLeadership(to: NodeID(2))
        c.deliverAll()
        XCTAssertEqual(c.leaders, [NodeID(2)])
        XCTAssertEqual(c.node(1).role, .follower)
    }

    func test_transferLeadership_laggingTarget_catchesUpFirst() {
        let c = TestCluster(3)
        c.elect(1)
        c.isolate(3)
        for i in 0..<5 { try! c.node(1).propose([UInt8(i)]) }
        c.deliverAll()
        try! c.node(1).transferLeadership(to: NodeID(3))
        XCTAssertThrowsError(try c.node(1).propose([9])) { XCTAssertEqual($0 as? RaftError, .transferInProgress) }
        c.heal()
        c.tick([1], times: 1)
        XCTAssertEqual(c.leaders, [NodeID(3)])
        XCTAssertEqual(c.node(3).lastIndex, c.node(1).lastIndex)
    }

    func test_transferLeadership_unreachableTarget_isAbandonedAfterElectionTimeout() {
        let c = TestCluster(3)
        c.elect(1)
        c.isolate(3)
        try! c.node(1).propose([1])
        c.deliverAll()
        try! c.node(1).transferLeadership(to: NodeID(3))
        c.tick([1, 2], times: 12)
        XCTAssertEqual(c.node(1).role, .leader)
        XCTAssertNil(c.node(1).transferTarget)
        XCTAssertNoThrow(try c.node(1).propose([2]))
        // No TimeoutNow ever went out (the target never caught up): the lease is sound again,
        // so delivery under it (consumers) does not stall for the rest of the term.
        c.tick([1, 2], times: 3)
        XCTAssertNotNil(c.node(1).leaseStartTick)
    }

    func test_transferLeadership_timeoutNowLost_leaderStepsDown_andTheNextTermHasALease() {
        let c = TestCluster(3)
        c.elect(1)
        try! c.node(1).propose([1])
        c.deliverAll()
        let term = c.node(1).term
        c.isolate(2)
        try! c.node(1).transferLeadership(to: NodeID(2))
        c.deliverAll() // the TimeoutNow is lost (or sits unread at a paused target)
        c.heal()
        XCTAssertNil(c.node(1).leaseStartTick)
        c.tick([1], times: 12)
        // It could still be read and win a forced election: no lease can be trusted in this
        // term, so the leader steps down rather than lead on without one.
        XCTAssertNotEqual(c.node(1).role, .leader)
        c.tick(times: 60)
        XCTAssertEqual(c.leaders.count, 1)
        let leader = c.node(c.leaders[0].rawValue)
        XCTAssertGreaterThan(leader.term, term)
        XCTAssertNotNil(leader.leaseStartTick)
    }
}
