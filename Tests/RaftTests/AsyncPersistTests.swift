import XCTest
@testable import Raft

/// The background-sync contract `RaftHost` uses: `advanceWritten` after writing, `synced` once a
/// sync finished. What must hold: a leader's own copy counts toward commit only once durable,
/// nothing is applied before it is durable locally, and a truncation voids older syncs.
final class AsyncPersistTests: XCTestCase {
    private func msg(_ from: UInt64, _ to: UInt64, _ term: UInt64, _ body: MessageBody) -> Message {
        Message(group: GroupID(0), from: NodeID(from), to: NodeID(to), term: Term(term), body: body)
    }

    func test_leaderOwnCopy_countsTowardCommitOnlyAfterSynced() throws {
        let c = TestCluster(3)
        c.elect(1)
        let leader = c.node(1)
        let before = leader.commitIndex
        let index = try leader.propose([7])
        let rd = leader.ready()
        try c.storages[NodeID(1)]!.append(rd.entries)
        let (early, late) = rd.splitMessages()
        // The appends go out before the leader's own write is durable; nothing else does.
        XCTAssertEqual(Set(early.map(\.to)), [NodeID(2), NodeID(3)])
        XCTAssertTrue(late.isEmpty)
        let write = leader.advanceWritten(rd)
        // Follower 2 persists and acks; follower 3 hears nothing.
        for m in early where m.to == NodeID(2) { c.node(2).step(m) }
        c.flush()
        let acks = c.pending.filter { $0.to == NodeID(1) }
        c.pending = []
        XCTAssertFalse(acks.isEmpty)
        for m in acks { leader.step(m) }
        // Leader (unsynced) + follower 2 would be a quorum only if the leader counted itself.
        XCTAssertEqual(leader.commitIndex, before)
        XCTAssertLessThan(leader.progress(of: NodeID(1))!.match, index)
        leader.synced(throughWrite: write)
        XCTAssertEqual(leader.progress(of: NodeID(1))!.match, index)
        XCTAssertEqual(leader.commitIndex, index)
    }

    func test_leaderCommitsWithFollowers_butAppliesOnlyOnceDurableItself() throws {
        let c = TestCluster(3)
        c.elect(1)
        let leader = c.node(1)
        let index = try leader.propose([9])
        let rd = leader.ready()
        try c.storages[NodeID(1)]!.append(rd.entries)
        let write = leader.advanceWritten(rd)
        for m in rd.splitMessages().early {
            c.node(m.to.rawValue).step(m)
        }
        c.flush()
        for m in c.pending where m.to == NodeID(1) { leader.step(m) }
        c.pending = []
        // Two durable followers make a quorum: committed, but not handed out for apply here.
        XCTAssertEqual(leader.commitIndex, index)
        XCTAssertTrue(leader.ready().committedEntries.isEmpty)
        leader.synced(throughWrite: write)
        XCTAssertEqual(leader.ready().committedEntries.last?.index, index)
    }

    func test_follower_appliesCommittedEntriesOnlyAfterTheyAreSynced() {
        let s = MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init)))
        let r = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 2))
        let entries = [Entry(term: Term(1), index: LogIndex(1), data: [1]), Entry(term: Term(1), index: LogIndex(2), data: [2])]
        r.step(msg(1, 2, 1, .appendEntries(AppendEntries(prevLogIndex: .zero, prevLogTerm: .zero, entries: entries, commit: LogIndex(2)))))
        let rd = r.ready()
        XCTAssertEqual(rd.entries.count, 2)
        XCTAssertTrue(rd.committedEntries.isEmpty)
        // A follower's answer speaks for its own durable log: never early.
        XCTAssertTrue(rd.splitMessages().early.isEmpty)
        XCTAssertFalse(rd.splitMessages().afterPersist.isEmpty)
        try! s.append(rd.entries)
        let write = r.advanceWritten(rd)
        XCTAssertFalse(r.hasReady)
        r.synced(throughWrite: write)
        XCTAssertEqual(r.ready().committedEntries.map(\.index), [LogIndex(1), LogIndex(2)])
    }

    func test_truncation_voidsAnEarlierWritesSyncBeyondTheCut() {
        let s = MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init)))
        let r = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 2))
        let old = (1...3).map { Entry(term: Term(1), index: LogIndex(UInt64($0)), data: [UInt8($0)]) }
        r.step(msg(1, 2, 1, .appendEntries(AppendEntries(prevLogIndex: .zero, prevLogTerm: .zero, entries: old, commit: .zero))))
        let rd1 = r.ready()
        try! s.append(rd1.entries)
        let w1 = r.advanceWritten(rd1)
        // A new leader replaces entries 2 and 3 before the first write's sync finished.
        let replacement = [Entry(term: Term(2), index: LogIndex(2), data: [20])]
        r.step(msg(3, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(1), prevLogTerm: Term(1), entries: replacement, commit: .zero))))
        let rd2 = r.ready()
        try! s.append(rd2.entries)
        let w2 = r.advanceWritten(rd2)
        r.synced(throughWrite: w1)
        // The first sync made 1...3 durable, but 2 and 3 were cut since: only 1 counts.
        XCTAssertEqual(r.log.durable, LogIndex(1))
        r.synced(throughWrite: w2)
        XCTAssertEqual(r.log.durable, LogIndex(2))
    }
}
