import XCTest
import Raft
@testable import ClusterServer

/// A memory stream's copy from the leader (`StagedMemoryCopy`), and the Raft side of a memory
/// install (`StreamInstall.advanceRaftLog` on the replica's own memory log).
final class StagedMemoryCopyTests: XCTestCase {
    private func msg(_ seq: UInt64) -> CatchupMessage {
        CatchupMessage(seq: seq, time: Int64(seq) * 10, subject: "s.\(seq % 2)", headers: seq == 6 ? Array("NATS/1.0\r\nX: y\r\n\r\n".utf8) : nil,
                       payload: Array("m\(seq)".utf8))
    }

    private let state = CatchupState(index: 30, term: 2, voters: [1, 2, 3], learners: [], firstSeq: 5, lastSeq: 11,
                                     deleted: [7, 8, 10, 11], consumers: [:], dedupSkews: [.init(seq: 9, skew: 5)])

    func test_copy_holdsExactlyTheStatesMessagesAtTheirSequences() throws {
        let copy = StagedMemoryCopy()
        // A first state's messages, then a newer state that removed 1...4 and 8.
        for op: StreamCatchup.Op in [.append(msg(2)), .append(msg(3)), .append(msg(8)), .removeBelow(5), .remove(8),
                                     .append(msg(9)), .finish(lastSeq: 11)] {
            XCTAssertNoThrow(try copy.apply(op), "\(op)")
        }
        XCTAssertThrowsError(try copy.commit(state), "5 and 6 are missing: the first sequence is wrong")
        let good = StagedMemoryCopy()
        for op: StreamCatchup.Op in [.append(msg(5)), .append(msg(6)), .append(msg(9)), .finish(lastSeq: 11)] { try good.apply(op) }
        XCTAssertThrowsError(try good.apply(.append(msg(9))), "sequences only grow")
        try good.commit(state)
        let st = good.store.state
        XCTAssertEqual([st.messages, st.firstSeq, st.lastSeq], [3, 5, 11])
        for seq: UInt64 in [5, 6, 9] {
            let m = try XCTUnwrap(good.store.load(seq))
            XCTAssertEqual(m.subject, msg(seq).subject)
            XCTAssertEqual(m.payload, msg(seq).payload)
            XCTAssertEqual(m.time, msg(seq).time)
            XCTAssertEqual(m.headers, msg(seq).headers)
        }
        XCTAssertNil(good.store.load(7))
        XCTAssertEqual(try good.store.append(subject: "new", headers: nil, payload: [], time: 99), 12, "numbering continues")
        XCTAssertEqual(good.dedupSkews, DedupSkews(marks: [.init(seq: 9, skew: 5)]), "the leader's dedup offsets come along")
    }

    func test_emptyCopy_endsAtTheStatesLastSequence() throws {
        let copy = StagedMemoryCopy()
        try copy.apply(.removeBelow(8))
        try copy.apply(.finish(lastSeq: 7))
        try copy.commit(CatchupState(index: 4, term: 1, voters: [1], learners: [], firstSeq: 8, lastSeq: 7, deleted: [], consumers: [:]))
        XCTAssertEqual(copy.store.state.messages, 0)
        XCTAssertEqual(try copy.store.append(subject: "a", headers: nil, payload: [], time: 1), 8)
    }

    func test_memoryRaftLog_continuesAfterTheCopiedIndex_keepingTermAndVote() throws {
        let storage = MemoryStorage(conf: ConfState(voters: [NodeID(1), NodeID(2), NodeID(3)]))
        storage.setHardState(HardState(term: Term(5), vote: NodeID(2), commit: LogIndex(0)))
        let meta = SnapshotMetadata(index: LogIndex(30), term: Term(4), conf: ConfState(voters: [NodeID(1), NodeID(2), NodeID(3)]))
        try StreamInstall.advanceRaftLog(meta, storage: storage)
        XCTAssertEqual(storage.snapshot().metadata, meta)
        XCTAssertEqual(storage.firstIndex, LogIndex(31))
        XCTAssertEqual(storage.lastIndex, LogIndex(30))
        XCTAssertEqual(storage.hardState.term, Term(5))
        XCTAssertEqual(storage.hardState.vote, NodeID(2))
    }
}
