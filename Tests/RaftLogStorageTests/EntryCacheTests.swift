import Raft
@testable import RaftLogStorage
import XCTest

/// The pure pieces: the run-length term index and the recent-entry cache.
final class EntryCacheTests: XCTestCase {
    func test_termRuns_lookupTruncateCompact() {
        var r = TermRuns()
        for i in UInt64(1)...30 { XCTAssertTrue(r.append(index: LogIndex(i), term: Term(i <= 10 ? 1 : i <= 20 ? 3 : 4))) }
        XCTAssertEqual(r.runs.count, 3)
        XCTAssertFalse(r.append(index: LogIndex(31), term: Term(2)), "terms never go back")
        XCTAssertEqual(r.term(at: LogIndex(1)), Term(1))
        XCTAssertEqual(r.term(at: LogIndex(10)), Term(1))
        XCTAssertEqual(r.term(at: LogIndex(11)), Term(3))
        XCTAssertEqual(r.term(at: LogIndex(30)), Term(4))
        r.truncate(after: LogIndex(15))
        XCTAssertEqual(r.runs.count, 2)
        XCTAssertEqual(r.term(at: LogIndex(15)), Term(3))
        r.compact(upTo: LogIndex(12))
        XCTAssertEqual(r.runs.count, 1)
        XCTAssertEqual(r.runs[0].start, LogIndex(13))
        XCTAssertEqual(r.term(at: LogIndex(14)), Term(3))
    }

    func test_entryCache_boundedByBytes_contiguous_andServesOnlyFullHits() {
        var c = EntryCache(limitBytes: 10 * 34)  // ten entries of 10 data bytes (+24)
        c.append((1...25).map { Entry(term: Term(1), index: LogIndex($0), data: [UInt8](repeating: 1, count: 10)) })
        XCTAssertLessThanOrEqual(c.bytes, 340)
        XCTAssertEqual(c.entries.last?.index, LogIndex(25))
        XCTAssertEqual(c.bytes, c.entries.reduce(0) { $0 + $1.sizeBytes })
        let first = c.first!
        XCTAssertNil(c.entries(from: first.prev, to: LogIndex(26), maxBytes: .max), "a partial hit goes to the log")
        XCTAssertEqual(c.entries(from: first, to: LogIndex(26), maxBytes: 0)?.count, 1)
        XCTAssertEqual(c.entries(from: LogIndex(24), to: LogIndex(26), maxBytes: .max)?.map(\.index), [LogIndex(24), LogIndex(25)])
        c.truncate(after: LogIndex(23))
        XCTAssertEqual(c.entries.last?.index, LogIndex(23))
        c.append([Entry(term: Term(2), index: LogIndex(30))])  // not contiguous: starts over
        XCTAssertEqual(c.entries.map(\.index), [LogIndex(30)])
        c.compact(upTo: LogIndex(30))
        XCTAssertTrue(c.entries.isEmpty)
        XCTAssertEqual(c.bytes, 0)
    }
}
