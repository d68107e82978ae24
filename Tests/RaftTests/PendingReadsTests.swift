import XCTest
@testable import Raft

/// The driver's ReadIndex bookkeeping (`PendingReads`) against real Raft nodes: a read is served
/// only after its index is applied locally, and a read a deposed leader took never is.
final class PendingReadsTests: XCTestCase {
    private func isAppend(_ m: Message) -> Bool {
        if case .appendEntries = m.body { return true }
        return false
    }

    func test_followerRead_waitsUntilTheConfirmedIndexIsApplied() throws {
        let c = TestCluster(3)
        c.elect(1)
        var reads = PendingReads<String>()
        // Node 3 misses three writes (its appends are dropped) ...
        for i in 0..<3 { try c.node(1).propose([UInt8(i)]) }
        c.deliverAll { !(self.isAppend($0) && $0.to == NodeID(3)) }
        XCTAssertEqual(c.node(1).commitIndex, c.node(1).lastIndex)
        let behind = c.node(3).appliedIndex
        XCTAssertLessThan(behind, c.node(1).commitIndex)
        // ... then asks for a read; the leader confirms it at its commit index.
        let ctx = reads.register(group: c.node(3).group, waiter: "r1", deadline: 100)
        try c.node(3).readIndex(context: ctx)
        c.deliverAll { !(self.isAppend($0) && $0.to == NodeID(3)) }
        let states = c.readStates[NodeID(3)] ?? []
        XCTAssertEqual(states.map(\.index), [c.node(1).commitIndex])
        XCTAssertEqual(reads.confirm(states, group: c.node(3).group, applied: c.node(3).appliedIndex), [],
                       "not served while node 3 has not applied the read index")
        XCTAssertEqual(reads.count, 1)
        // Once the entries arrive and apply, the read is served.
        c.tick(times: 5)
        XCTAssertEqual(c.node(3).appliedIndex, c.node(1).commitIndex)
        XCTAssertEqual(reads.applied(group: c.node(3).group, upTo: c.node(3).appliedIndex), ["r1"])
        XCTAssertEqual(reads.count, 0)
    }

    func test_readOnDeposedLeader_isNeverConfirmedAndExpires() throws {
        let c = TestCluster(3)
        c.elect(1)
        try c.node(1).propose([1])
        c.deliverAll()
        // Node 1 is cut off; 2 and 3 elect 2, which commits a newer write.
        c.isolate(1)
        c.tick([2, 3], times: 30)
        XCTAssertTrue(c.node(2).role == .leader || c.node(3).role == .leader)
        let newLeader = c.node(2).role == .leader ? c.node(2) : c.node(3)
        try newLeader.propose([2])
        c.deliverAll()
        // The old leader still believes it leads (no tick passed on it) and takes a read.
        XCTAssertEqual(c.node(1).role, .leader)
        var reads = PendingReads<String>()
        let ctx = reads.register(group: c.node(1).group, waiter: "stale", deadline: 5)
        try c.node(1).readIndex(context: ctx)
        c.heal()
        c.deliverAll()
        XCTAssertNotEqual(c.node(1).role, .leader, "the old leader learned the newer term")
        XCTAssertEqual(c.readStates[NodeID(1)] ?? [], [], "no quorum confirmed the deposed leader's read")
        XCTAssertEqual(reads.expire(now: 4), [])
        XCTAssertEqual(reads.expire(now: 5), ["stale"])
        XCTAssertEqual(reads.count, 0)
    }

    func test_cancelAndDrop_removeReadsOfThatGroupOnly() {
        var reads = PendingReads<Int>()
        let a = reads.register(group: GroupID(1), waiter: 1, deadline: 10)
        _ = reads.register(group: GroupID(2), waiter: 2, deadline: 10)
        let c = reads.register(group: GroupID(1), waiter: 3, deadline: 10)
        XCTAssertNotEqual(a, c, "contexts are unique")
        XCTAssertEqual(reads.cancel(context: a), 1)
        XCTAssertNil(reads.cancel(context: a))
        // A confirmation for another group's context is ignored.
        XCTAssertEqual(reads.confirm([ReadState(index: LogIndex(1), context: c)], group: GroupID(2), applied: LogIndex(5)), [])
        XCTAssertEqual(reads.drop(group: GroupID(1)), [3])
        XCTAssertEqual(reads.count, 1)
    }
}
