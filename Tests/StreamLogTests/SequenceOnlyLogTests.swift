import XCTest
@testable import StreamLog

/// A log without a subject index (`indexesSubjects: false`, the Raft log's mode) keeps the same
/// live set as a full log, and a compaction drops its prefix without reading the blocks.
final class SequenceOnlyLogTests: XCTestCase {
    private func config(indexes: Bool) -> StreamLogConfig {
        var c = smallConfig()
        c.indexesSubjects = indexes
        return c
    }

    private func live(_ log: StreamLog) throws -> [UInt64] {
        try log.messages(from: StreamSequence(1), maxMessages: 100_000).map(\.sequence.rawValue)
    }

    /// Seeded appends, deletes, compactions and reopens applied to both logs alike.
    func test_sameLiveSetAsAFullLog_throughDeletesCompactionsAndReopens() throws {
        var rng = SeededRNG(seed: 5)
        let fsFull = FaultyFileSystem(), fsBare = FaultyFileSystem()
        var full = try openLog(fsFull, config(indexes: true))
        var bare = try openLog(fsBare, config(indexes: false))
        for round in 0..<60 {
            let n = Int(rng.next() % 20) + 1
            let batch = (0..<n).map { msg("s.\($0 % 3)", "r\(round)-\($0)") }
            try full.append(batch)
            try bare.append(batch)
            let st = try full.state()
            switch rng.next() % 4 {
            case 0:
                let seq = StreamSequence(st.firstSequence + rng.next() % (st.lastSequence - st.firstSequence + 1))
                XCTAssertEqual(try bare.delete(seq), try full.delete(seq), "round \(round)")
            case 1:
                let upTo = StreamSequence(st.firstSequence + rng.next() % (st.lastSequence - st.firstSequence + 3))
                XCTAssertEqual(try bare.compact(upTo: upTo), try full.compact(upTo: upTo), "round \(round)")
            case 2:
                try full.close()
                try bare.close()
                full = try openLog(fsFull, config(indexes: true))
                bare = try openLog(fsBare, config(indexes: false))
            default:
                break
            }
            let a = try full.state(), b = try bare.state()
            XCTAssertEqual([b.messages, b.firstSequence, b.lastSequence, b.deletedCount],
                           [a.messages, a.firstSequence, a.lastSequence, a.deletedCount], "round \(round)")
            XCTAssertEqual(b.bytes, 0)
            XCTAssertEqual(b.subjectCount, 0)
        }
        XCTAssertEqual(try live(bare), try live(full))
        XCTAssertGreaterThan(try full.state().messages, 0)
    }

    /// Every read fails during the compaction: a full log needs the records it drops (their
    /// subjects and sizes), a log without the index only counts.
    func test_compaction_readsNoBlock() throws {
        for indexes in [false, true] {
            let fs = FaultyFileSystem()
            var log = try openLog(fs, config(indexes: indexes))
            for i in 0..<200 { try log.append([msg("e", "\(i)")]) }
            XCTAssertTrue(try log.delete(StreamSequence(50)))
            try log.close()
            log = try openLog(fs, config(indexes: indexes)) // no block cached
            fs.failNext(.read, count: 1_000_000)
            let removed = Result { try log.compact(upTo: StreamSequence(150)) }
            fs.clearInjectedFailures()
            if indexes {
                XCTAssertThrowsError(try removed.get(), "the full log reads what it drops")
                continue
            }
            XCTAssertEqual(try removed.get(), 148, "1...149 but the deleted 50")
            let st = try log.state()
            XCTAssertEqual([st.firstSequence, st.lastSequence, st.messages, st.deletedCount], [150, 200, 51, 0])
            try log.close()
            log = try openLog(fs, config(indexes: false))
            XCTAssertEqual(try live(log), Array(150...200))
        }
    }

    /// What only the subject index can count is refused up front, not silently ignored.
    func test_byteAndPerSubjectLimits_needTheIndex() throws {
        var c = config(indexes: false)
        c.limits.maxBytes = 1000
        XCTAssertThrowsError(try openLog(FaultyFileSystem(), c))
        let log = try openLog(FaultyFileSystem(), config(indexes: false))
        XCTAssertThrowsError(try log.updateLimits(RetentionLimits(maxMessagesPerSubject: 2)))
        XCTAssertNoThrow(try log.updateLimits(RetentionLimits(maxMessages: 2)))
    }
}
