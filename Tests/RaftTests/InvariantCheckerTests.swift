import XCTest
@testable import Raft

/// The simulator is only as good as its checker: each check must fire on a violation.
final class InvariantCheckerTests: XCTestCase {
    private func leaderNode(_ id: UInt64) -> RaftNode {
        let r = RaftNode(id: NodeID(id), storage: MemoryStorage(conf: ConfState(voters: [NodeID(id)])),
                         config: RaftConfig(), random: SplitMix64(seed: id))
        r.startElection()
        return r
    }

    func test_sawLeader_twoLeadersInOneTerm_throwsElectionSafety() throws {
        var c = InvariantChecker()
        let a = leaderNode(1), b = leaderNode(2)
        try c.sawLeader(a.id, term: Term(1), raft: a)
        XCTAssertThrowsError(try c.sawLeader(b.id, term: Term(1), raft: b))
    }

    func test_applied_differentHistoryAtSameIndex_throwsStateMachineSafety() throws {
        var c = InvariantChecker()
        try c.applied(LogIndex(1), hash: 10, node: NodeID(1))
        XCTAssertNoThrow(try c.applied(LogIndex(1), hash: 10, node: NodeID(2)))
        XCTAssertThrowsError(try c.applied(LogIndex(1), hash: 11, node: NodeID(3)))
    }

    func test_persisting_differentPayloadForSameIndexAndTerm_throwsLogMatching() throws {
        var c = InvariantChecker()
        try c.persisting([Entry(term: Term(1), index: LogIndex(1), data: [1])], into: MemoryStorage(), node: NodeID(1))
        XCTAssertThrowsError(try c.persisting([Entry(term: Term(1), index: LogIndex(1), data: [2])], into: MemoryStorage(), node: NodeID(2)))
    }

    func test_sawLeader_missingCommittedEntry_throwsLeaderCompleteness() throws {
        var c = InvariantChecker()
        let full = leaderNode(1)
        // Its no-op persisted: a leader's own copy counts toward commit only once durable.
        let rd = full.ready()
        try (full.log.storage as! MemoryStorage).append(rd.entries)
        full.advance(rd)
        XCTAssertGreaterThan(full.commitIndex, .zero)
        try c.committed(upTo: full.commitIndex, from: .zero, raft: full, node: full.id)
        let empty = RaftNode(id: NodeID(2), storage: MemoryStorage(conf: ConfState(voters: [NodeID(2)])),
                             config: RaftConfig(), random: SplitMix64(seed: 2))
        XCTAssertThrowsError(try c.sawLeader(empty.id, term: Term(5), raft: empty))
    }
}
