import XCTest
@testable import ClusterServer
import Raft

/// The leader's queue of its own proposals: an entry is matched to a proposal only at the same
/// index, and the caller checks the term; proposals that can no longer apply are dropped; the
/// count of those with a reply (a stopping node waits for them) stays exact.
final class ProposalQueueTests: XCTestCase {
    private func publish(_ n: Int, reply: Bool = true) -> ProposedPublish {
        ProposedPublish(subject: "s.\(n)", reply: reply ? "_INBOX.x.\(n)" : nil, headers: nil, payload: [UInt8(n & 0xFF)],
                        timestamp: Int64(n))
    }

    /// One `take` and what it must return.
    private struct Take {
        var index: UInt64
        /// The term of the proposal taken; nil: no proposal is matched at `index`.
        var term: UInt64?
        /// Checked when given.
        var subject: String? = nil
        var why = ""
    }

    /// Takes at each index in turn, then checks the queue is empty with no reply left to wait for.
    private func assertTakes(_ takes: [Take], emptying q: inout ProposalQueue,
                             file: StaticString = #filePath, line: UInt = #line) {
        for t in takes {
            let got = q.take(index: LogIndex(t.index))
            if let term = t.term {
                XCTAssertEqual(got?.term, Term(term), "index \(t.index) \(t.why)", file: file, line: line)
            } else {
                XCTAssertNil(got, "index \(t.index) \(t.why)", file: file, line: line)
            }
            if let subject = t.subject {
                XCTAssertEqual(got?.publish.subject, subject, "index \(t.index) \(t.why)", file: file, line: line)
            }
        }
        XCTAssertEqual(q.count, 0, file: file, line: line)
        XCTAssertEqual(q.withReply, 0, file: file, line: line)
    }

    func test_inOrder_eachProposalIsTakenOnce() {
        var q = ProposalQueue()
        for i in 1...5 { q.append(index: LogIndex(UInt64(i)), term: Term(2), publish(i, reply: i != 3)) }
        XCTAssertEqual(q.count, 5)
        XCTAssertEqual(q.withReply, 4)
        assertTakes((1...5).map { Take(index: UInt64($0), term: 2, subject: "s.\($0)") } + [Take(index: 5, term: nil)],
                    emptying: &q)
    }

    /// Entries the node did not propose (the empty entry of a term, another leader's) are not
    /// matched; proposals below an applied index are dropped.
    func test_gapsAndSkippedProposals() {
        var q = ProposalQueue()
        q.append(index: LogIndex(3), term: Term(1), publish(3))
        q.append(index: LogIndex(4), term: Term(1), publish(4))
        q.append(index: LogIndex(7), term: Term(1), publish(7))
        XCTAssertNil(q.take(index: LogIndex(2)))
        XCTAssertEqual(q.count, 3)
        // Index 4 applies before 3 was seen (3 came in a snapshot, say): 3 is dropped.
        XCTAssertEqual(q.take(index: LogIndex(4))?.publish.subject, "s.4")
        XCTAssertNil(q.take(index: LogIndex(6)))
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(q.take(index: LogIndex(7))?.publish.subject, "s.7")
        XCTAssertEqual(q.withReply, 0)
    }

    /// Deposed, its tail cut, elected again: a new proposal at a lower index replaces the queued
    /// ones at that index and beyond, which no entry of theirs can reach any more. A proposal
    /// replaced at its index by another term's entry is returned with its own term (the caller
    /// sees the mismatch and decodes the entry).
    func test_reproposalAfterTruncation_dropsTheCutTail() {
        var q = ProposalQueue()
        for i in 10...14 { q.append(index: LogIndex(UInt64(i)), term: Term(5), publish(i)) }
        q.append(index: LogIndex(12), term: Term(7), publish(112))
        XCTAssertEqual(q.count, 3)
        XCTAssertEqual(q.withReply, 3)
        assertTakes([Take(index: 10, term: 5),
                     Take(index: 11, term: 5, why: "replaced: the caller compares it with the entry's term (6, say)"),
                     Take(index: 12, term: 7, subject: "s.112"),
                     Take(index: 13, term: nil)], emptying: &q)
    }

    /// Many proposals taken one at a time (the queue compacts its storage as it goes) stay in
    /// order and exact.
    func test_longRun_staysExact() {
        var q = ProposalQueue()
        var next = 1, applied = 0
        for round in 0..<200 {
            for _ in 0..<(round % 7 + 20) {
                q.append(index: LogIndex(UInt64(next)), term: Term(1), publish(next, reply: next % 2 == 0))
                next += 1
            }
            for _ in 0..<(round % 5 + 18) where applied + 1 < next {
                applied += 1
                XCTAssertEqual(q.take(index: LogIndex(UInt64(applied)))?.publish.subject, "s.\(applied)")
            }
            XCTAssertEqual(q.count, next - 1 - applied)
            XCTAssertEqual(q.withReply, (applied + 1..<next).filter { $0 % 2 == 0 }.count)
        }
        q.removeAll()
        XCTAssertEqual(q.count, 0)
        XCTAssertEqual(q.withReply, 0)
    }

    func test_mailbox_keepsOrder_andAsksForOneDrainPerBatch() {
        let box = IngestMailbox()
        func item(_ n: Int) -> IngestItem {
            IngestItem(stream: "S", subject: "s.\(n)", reply: nil, headers: nil, payload: [])
        }
        XCTAssertEqual(box.add(item(1)), .scheduleDrain)
        XCTAssertEqual(box.add(item(2)), .queued)
        XCTAssertEqual(box.add(item(3)), .queued)
        XCTAssertEqual(box.take().map(\.subject), ["s.1", "s.2", "s.3"])
        XCTAssertEqual(box.take().count, 0)
        XCTAssertEqual(box.add(item(4)), .scheduleDrain, "a drain that took everything: the next publish asks again")
        XCTAssertEqual(box.take().map(\.subject), ["s.4"])
    }

    /// Full by count or by bytes until a drain takes what waits; an item larger than the byte
    /// bound still enters an empty mailbox (it would never fit otherwise).
    func test_mailbox_refusesPastItsBounds_untilADrain() {
        let box = IngestMailbox(maxItems: 3, maxBytes: 100)
        func item(_ n: Int) -> IngestItem {
            IngestItem(stream: "S", subject: "s.\(n)", reply: nil, headers: nil, payload: [])
        }
        XCTAssertEqual(box.add(item(1), size: 10), .scheduleDrain)
        XCTAssertEqual(box.add(item(2), size: 10), .queued)
        XCTAssertEqual(box.add(item(3), size: 10), .queued)
        XCTAssertEqual(box.add(item(4), size: 1), .full, "three items")
        XCTAssertEqual(box.take().map(\.subject), ["s.1", "s.2", "s.3"])
        XCTAssertEqual(box.add(item(5), size: 90), .scheduleDrain)
        XCTAssertEqual(box.add(item(6), size: 11), .full, "101 bytes")
        XCTAssertEqual(box.add(item(7), size: 10), .queued, "100 bytes")
        XCTAssertEqual(box.take().map(\.subject), ["s.5", "s.7"])
        XCTAssertEqual(box.add(item(8), size: 500), .scheduleDrain, "alone, larger than the bound")
        XCTAssertEqual(box.add(item(9), size: 1), .full)
        XCTAssertEqual(box.take().map(\.subject), ["s.8"])
    }
}
