import XCTest
@testable import Raft

final class ReadIndexTests: XCTestCase {
    func test_readIndex_onLeader_returnsCommitAfterQuorumHeartbeat() throws {
        let c = TestCluster(3)
        c.elect(1)
        try c.node(1).propose([1])
        c.deliverAll()
        try c.node(1).readIndex(context: [1])
        c.flush()
        XCTAssertEqual(c.readStates[NodeID(1)] ?? [], [])
        c.deliverAll()
        XCTAssertEqual(c.readStates[NodeID(1)], [ReadState(index: c.node(1).commitIndex, context: [1])])
    }

    func test_readIndex_leaderCutOffFromQuorum_neverAnswers() throws {
        let c = TestCluster(3)
        c.elect(1)
        c.isolate(1)
        try c.node(1).readIndex(context: [2])
        c.deliverAll()
        XCTAssertEqual(c.readStates[NodeID(1)] ?? [], [])
    }

    func test_readIndex_onFollower_isForwardedAndAnswered() throws {
        let c = TestCluster(3)
        c.elect(1)
        try c.node(2).readIndex(context: [3])
        c.deliverAll()
        XCTAssertEqual(c.readStates[NodeID(2)], [ReadState(index: c.node(1).commitIndex, context: [3])])
    }

    func test_readIndex_leaseBased_answersWithoutRoundTrip() throws {
        var cfg = TestCluster.defaultConfig()
        cfg.readOnlyOption = .leaseBased
        let c = TestCluster(3, config: cfg)
        c.tick(times: 30)
        let leader = c.leaders.first!
        c.tick(times: 2)
        try c.nodes[leader]!.readIndex(context: [4])
        c.flush()
        XCTAssertEqual(c.readStates[leader]?.map(\.context), [[4]])
    }

    func test_readIndex_leaseExpired_fallsBackToHeartbeatRound() throws {
        var cfg = TestCluster.defaultConfig()
        cfg.readOnlyOption = .leaseBased
        let c = TestCluster(3, config: cfg)
        c.tick(times: 30)
        let leader = c.leaders.first!
        c.isolate(leader.rawValue)
        c.tick([leader.rawValue], times: 9)
        try c.nodes[leader]!.readIndex(context: [5])
        c.flush()
        XCTAssertEqual(c.readStates[leader] ?? [], [])
    }
}
