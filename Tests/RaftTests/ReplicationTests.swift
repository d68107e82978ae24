import XCTest
@testable import Raft

final class ReplicationTests: XCTestCase {
    private func msg(_ from: UInt64, _ to: UInt64, _ term: UInt64, _ body: MessageBody) -> Message {
        Message(group: GroupID(0), from: NodeID(from), to: NodeID(to), term: Term(term), body: body)
    }

    func test_propose_threeNodes_commitsAndAppliesEverywhere() {
        let c = TestCluster(3)
        c.elect(1)
        for i in 0..<10 { try! c.node(1).propose([UInt8(i)]) }
        c.deliverAll()
        for id in 1...3 {
            XCTAssertEqual(c.appliedData(UInt64(id)), (0..<10).map { [UInt8($0)] })
        }
    }

    func test_proposalsBetweenReadies_travelInOneAppendPerFollower() throws {
        let c = TestCluster(3)
        c.elect(1)
        for i in 0..<10 { try c.node(1).propose([UInt8(i)]) }
        let appends = c.node(1).ready().messages.compactMap { m -> (NodeID, Int)? in
            guard case .appendEntries(let a) = m.body else { return nil }
            return (m.to, a.entries.count)
        }
        XCTAssertEqual(appends.map(\.0).sorted(), [NodeID(2), NodeID(3)])
        XCTAssertEqual(appends.map(\.1), [10, 10])
    }

    func test_propose_onFollower_throwsNotLeaderWithLeaderHint() {
        let c = TestCluster(3)
        c.elect(1)
        XCTAssertThrowsError(try c.node(2).propose([1])) { XCTAssertEqual($0 as? RaftError, .notLeader(leader: NodeID(1))) }
    }

    /// `isCaughtUp` (what `/healthz` reports per stream): a follower that heard of a commit
    /// beyond the entries it holds is not, until the entries arrived; a new term's leader that
    /// only sent heartbeats (capped at what the follower holds) leaves it caught up.
    func test_isCaughtUp_followerBehindTheAnnouncedCommit_untilTheEntriesArrive() {
        let s = MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init)))
        try! s.append((1...4).map { Entry(term: Term(2), index: LogIndex($0), data: [UInt8($0)]) })
        s.setHardState(HardState(term: Term(2), vote: nil, commit: LogIndex(4)))
        let r = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 2))
        XCTAssertFalse(r.isCaughtUp, "no leader known yet")
        r.step(msg(1, 2, 2, .heartbeat(Heartbeat(commit: LogIndex(4)))))
        XCTAssertTrue(r.isCaughtUp)
        // The leader committed up to 8; this append holds none of 5...8 (sent in a later one).
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(4), prevLogTerm: Term(2), entries: [],
                                                         commit: LogIndex(8)))))
        XCTAssertEqual(r.commitIndex, LogIndex(4))
        XCTAssertFalse(r.isCaughtUp, "the leader announced commit 8")
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(4), prevLogTerm: Term(2),
                                                         entries: (5...6).map { Entry(term: Term(2), index: LogIndex($0)) },
                                                         commit: LogIndex(8)))))
        XCTAssertFalse(r.isCaughtUp, "6 of 8")
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(6), prevLogTerm: Term(2),
                                                         entries: (7...8).map { Entry(term: Term(2), index: LogIndex($0)) },
                                                         commit: LogIndex(8)))))
        XCTAssertEqual(r.commitIndex, LogIndex(8))
        XCTAssertTrue(r.isCaughtUp)
        // An older announcement does not lower the mark: it is the leader's latest.
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(8), prevLogTerm: Term(2), entries: [],
                                                         commit: LogIndex(12)))))
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(8), prevLogTerm: Term(2), entries: [],
                                                         commit: LogIndex(9)))))
        XCTAssertFalse(r.isCaughtUp)
        // A leader of a new term: its heartbeats say nothing of entries beyond ours.
        r.step(msg(3, 2, 3, .heartbeat(Heartbeat(commit: LogIndex(8)))))
        XCTAssertEqual(r.leader, NodeID(3))
        XCTAssertTrue(r.isCaughtUp)
    }

    func test_isCaughtUp_leaderYes_candidateNo() {
        let c = TestCluster(3)
        c.elect(1)
        XCTAssertTrue(c.node(1).isCaughtUp)
        c.deliverAll()
        XCTAssertTrue(c.node(2).isCaughtUp)
        c.isolate(2)
        c.tick([2], times: 100)
        XCTAssertFalse(c.node(2).isCaughtUp, "\(c.node(2).role) without a leader")
    }

    func test_appendEntries_prevTermMismatch_rejectsWithConflictHint() {
        let s = MemoryStorage(conf: ConfState(voters: [1, 2].map(NodeID.init)))
        try! s.append([Entry(term: Term(1), index: LogIndex(1)), Entry(term: Term(1), index: LogIndex(2)),
                       Entry(term: Term(2), index: LogIndex(3)), Entry(term: Term(2), index: LogIndex(4))])
        s.setHardState(HardState(term: Term(2), vote: nil, commit: LogIndex(1)))
        let r = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 2))
        // The leader of term 3 thinks index 4 has term 3: the whole term-2 run conflicts.
        r.step(msg(1, 2, 3, .appendEntries(AppendEntries(prevLogIndex: LogIndex(4), prevLogTerm: Term(3), entries: [], commit: .zero))))
        guard case .appendResponse(let resp)? = r.ready().messages.first?.body else { return XCTFail("no response") }
        XCTAssertTrue(resp.reject)
        XCTAssertEqual(resp.index, LogIndex(4))
        XCTAssertEqual(resp.hintIndex, LogIndex(4))
        XCTAssertEqual(resp.hintTerm, Term(2))
    }

    /// A follower whose committed entries the leader's log contradicts (a group acknowledging
    /// unsynced writes, after a power loss of the quorum): it neither claims to hold the
    /// leader's entries nor commits anything, and reports the divergence once. Before, an append
    /// below its commit was answered "I hold up to my commit", the leader counted it for entries
    /// it did not have, and a rejection at that index was ignored by the leader: it resent the
    /// same append for good.
    func test_appendEntries_contradictingCommittedEntries_divergedOnce_noClaimsNoCommit() {
        let s = MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init)))
        try! s.append((1...6).map { Entry(term: Term(1), index: LogIndex($0), data: [UInt8($0)]) })
        s.setHardState(HardState(term: Term(1), vote: nil, commit: LogIndex(6)))
        let r = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 2))
        _ = r.ready()
        // The leader of term 2 kept only 1...4 and wrote 5 and 6 in its term.
        let theirs = (5...6).map { Entry(term: Term(2), index: LogIndex($0), data: [200 + UInt8($0)]) }
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(4), prevLogTerm: Term(1), entries: theirs,
                                                         commit: LogIndex(6)))))
        XCTAssertEqual(r.divergedAt, LogIndex(5))
        XCTAssertEqual(r.takeDivergence(), LogIndex(5))
        XCTAssertNil(r.takeDivergence(), "reported once")
        // Neither the append nor a later probe at our commit gets an answer; a heartbeat gets
        // its plain answer (the leader keeps its quorum) and commits nothing.
        r.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(6), prevLogTerm: Term(2), entries: [],
                                                         commit: LogIndex(6)))))
        r.step(msg(1, 2, 2, .heartbeat(Heartbeat(commit: LogIndex(6), context: nil, round: 1, quiesce: false))))
        let rd = r.ready()
        XCTAssertEqual(rd.messages.count, 1, "\(rd.messages)")
        guard case .heartbeatResponse? = rd.messages.first?.body else { return XCTFail("\(rd.messages)") }
        XCTAssertTrue(rd.entries.isEmpty)
        XCTAssertEqual(r.commitIndex, LogIndex(6))
        XCTAssertEqual(try s.term(at: LogIndex(5)), Term(1), "our entries are left for the application to replace")

        // The same append to a follower whose entries 5 and 6 were never committed: the
        // ordinary conflicting-suffix replacement, no divergence.
        let s2 = MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init)))
        try! s2.append((1...6).map { Entry(term: Term(1), index: LogIndex($0), data: [UInt8($0)]) })
        s2.setHardState(HardState(term: Term(1), vote: nil, commit: LogIndex(4)))
        let r2 = RaftNode(id: NodeID(2), storage: s2, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 3))
        _ = r2.ready()
        r2.step(msg(1, 2, 2, .appendEntries(AppendEntries(prevLogIndex: LogIndex(4), prevLogTerm: Term(1), entries: theirs,
                                                          commit: LogIndex(6)))))
        XCTAssertNil(r2.divergedAt)
        let rd2 = r2.ready()
        XCTAssertEqual(rd2.entries.map(\.term), [Term(2), Term(2)])
        guard case .appendResponse(let resp)? = rd2.messages.first?.body else { return XCTFail("no response") }
        XCTAssertFalse(resp.reject)
        XCTAssertEqual(resp.index, LogIndex(6))
    }

    func test_appendEntries_conflictingSuffix_isReplacedAndLogsMatch() {
        var cfg = TestCluster.defaultConfig()
        cfg.preVote = false
        cfg.checkQuorum = false
        let c = TestCluster(3, config: cfg)
        c.elect(1)
        // n1 appends entries only it holds, then loses leadership to n2 which writes others.
        c.isolate(1)
        for i in 0..<3 { try! c.node(1).propose([100 + UInt8(i)]) }
        c.deliverAll()
        c.elect(2)
        for i in 0..<4 { try! c.node(2).propose([UInt8(i)]) }
        c.deliverAll()
        c.heal()
        c.tick(times: 3)
        // Log matching: every index now holds the same term on all nodes.
        let last = c.node(2).lastIndex
        for id in 1...3 {
            XCTAssertEqual(c.node(UInt64(id)).lastIndex, last)
            for i in 1...last.rawValue {
                XCTAssertEqual(c.node(UInt64(id)).term(at: LogIndex(i)), c.node(2).term(at: LogIndex(i)))
            }
        }
        XCTAssertFalse(c.appliedData(1).contains([100]))
    }

    /// Figure 8: a leader must not commit an entry of an earlier term by counting replicas.
    func test_commit_entryFromEarlierTermOnMajority_isNotCommittedUntilCurrentTermEntry() {
        let s = MemoryStorage(conf: ConfState(voters: [1, 2, 3].map(NodeID.init)))
        try! s.append([Entry(term: Term(1), index: LogIndex(1)), Entry(term: Term(2), index: LogIndex(2))])
        s.setHardState(HardState(term: Term(3), vote: nil, commit: LogIndex(1)))
        var cfg = TestCluster.defaultConfig()
        cfg.preVote = false
        let r = RaftNode(id: NodeID(1), storage: s, config: cfg, random: SplitMix64(seed: 1))
        r.campaign(.election)
        r.step(msg(2, 1, 4, .voteResponse(VoteResponse(granted: true, preVote: false))))
        XCTAssertEqual(r.role, .leader)
        let noop = r.lastIndex // index 3, term 4
        // The leader persists its no-op (its own copy counts toward commit only once durable).
        let rd = r.ready()
        try! s.append(rd.entries)
        r.advance(rd)
        // n2 acknowledges index 2 (the term-2 entry): a majority holds it, but it is from term 2.
        r.step(msg(2, 1, 4, .appendResponse(AppendResponse(index: LogIndex(2), reject: false))))
        XCTAssertEqual(r.commitIndex, LogIndex(1))
        // Once the term-4 no-op is on a majority, both commit.
        r.step(msg(2, 1, 4, .appendResponse(AppendResponse(index: noop, reject: false))))
        XCTAssertEqual(r.commitIndex, noop)
    }

    func test_appendEntries_malformedEntries_areDroppedWithoutCrash() {
        let c = TestCluster(3)
        c.elect(1)
        let f = c.node(2)
        let last = f.lastIndex, t = f.term
        let bad: [[Entry]] = [
            [Entry(term: t, index: last + 2)],                              // gap
            [Entry(term: t, index: last.next), Entry(term: t, index: last.next)], // repeated index
            [Entry(term: t.next, index: last.next)],                        // newer than the leader
        ]
        for ents in bad {
            f.step(msg(1, 2, t.rawValue, .appendEntries(AppendEntries(prevLogIndex: last, prevLogTerm: f.term(at: last)!,
                                                                     entries: ents, commit: .zero))))
        }
        f.step(msg(1, 2, t.rawValue, .installSnapshot(Snapshot())))
        XCTAssertEqual(f.lastIndex, last)
        XCTAssertEqual(f.ready().messages.count, 0)
    }

    func test_flowControl_inflightWindowFull_pausesUntilAcked() {
        var cfg = TestCluster.defaultConfig()
        cfg.maxInflightMsgs = 2
        cfg.maxSizePerMsg = 1
        let c = TestCluster(2, config: cfg)
        c.elect(1)
        c.deliverAll()
        for i in 0..<5 { try! c.node(1).propose([UInt8(i)]) }
        let sent = c.node(1).ready().messages.filter {
            if case .appendEntries(let a) = $0.body { return !a.entries.isEmpty } else { return false }
        }
        XCTAssertEqual(sent.count, 2)
        XCTAssertTrue(c.node(1).progress(of: NodeID(2))!.isPaused)
    }

    func test_restart_unpersistedEntriesAreLost_persistedSurvive() {
        let c = TestCluster(1)
        c.tick(times: 25)
        try! c.node(1).propose([1])
        c.deliverAll()
        try! c.node(1).propose([2]) // not flushed to storage before the crash
        c.restart(1)
        XCTAssertEqual(c.node(1).lastIndex, LogIndex(2))
        c.tick(times: 25)
        c.deliverAll()
        XCTAssertEqual(c.appliedData(1), [[1]])
    }

    /// Storage may persist the commit index lazily: after a restart the state machine's applied
    /// index can be above it. It counts as committed, and only what follows is handed out.
    func test_restart_appliedAboveStoredCommit_countsAsCommitted() {
        let s = MemoryStorage(conf: ConfState(voters: [NodeID(1), NodeID(2)]))
        try! s.append((1...6).map { Entry(term: Term(1), index: LogIndex($0), data: [UInt8($0)]) })
        s.setHardState(HardState(term: Term(1), vote: NodeID(1), commit: LogIndex(2)))
        let r = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 2),
                         applied: LogIndex(5))
        XCTAssertEqual(r.commitIndex, LogIndex(5))
        XCTAssertEqual(r.appliedIndex, LogIndex(5))
        XCTAssertTrue(r.ready().committedEntries.isEmpty)
        // An applied index past the log's end is clamped: nothing beyond the log is invented.
        let r2 = RaftNode(id: NodeID(2), storage: s, config: TestCluster.defaultConfig(), random: SplitMix64(seed: 3),
                          applied: LogIndex(9))
        XCTAssertEqual(r2.commitIndex, LogIndex(6))
        XCTAssertEqual(r2.appliedIndex, LogIndex(6))
    }

    func test_memoryStorage_appendTruncateCompact_keepsIndexesConsistent() throws {
        let s = MemoryStorage()
        try s.append((1...5).map { Entry(term: Term(1), index: LogIndex($0)) })
        try s.append([Entry(term: Term(2), index: LogIndex(4))])
        XCTAssertEqual(s.lastIndex, LogIndex(4))
        XCTAssertEqual(try s.term(at: LogIndex(4)), Term(2))
        XCTAssertThrowsError(try s.append([Entry(term: Term(2), index: LogIndex(9))]))
        try s.createSnapshot(index: LogIndex(3), conf: ConfState(), data: [7])
        try s.compact(upTo: LogIndex(3))
        XCTAssertEqual(s.firstIndex, LogIndex(4))
        XCTAssertEqual(try s.term(at: LogIndex(3)), Term(1))
        XCTAssertThrowsError(try s.term(at: LogIndex(2))) { XCTAssertEqual($0 as? StorageError, .compacted) }
        XCTAssertEqual(try s.entries(from: LogIndex(4), to: LogIndex(5), maxBytes: 0).count, 1)
    }
}
