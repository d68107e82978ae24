import XCTest
@testable import StreamLog

/// `append(_:at:)`: a copy that keeps its origin's sequences (a stream's mirror) stores a
/// message past a gap; the skipped sequences are gone, also after a reopen with or without the
/// log's snapshot (the records carry their sequences).
final class AppendAtSequenceTests: XCTestCase {
    func test_gaps_areDeletedSequences_andSurviveAReopen() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        try log.append([msg("a", "1")], at: 1)
        XCTAssertEqual(try log.append([msg("a", "3"), msg("b", "4")], at: 3).lastSequence, 4)
        try log.append([msg("a", "9")], at: 9)
        try log.append([msg("a", "10")])
        let before = try log.state(perSubject: true)
        XCTAssertEqual([before.messages, before.firstSequence, before.lastSequence, before.deletedCount], [5, 1, 10, 5])
        XCTAssertEqual(log.deletedSequences(limit: 10), [2, 5, 6, 7, 8])
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 10).map(\.sequence.rawValue), [1, 3, 4, 9, 10])
        XCTAssertNil(try log.message(StreamSequence(6)))
        XCTAssertThrowsError(try log.append([msg("a", "x")], at: 10), "not above the last")
        XCTAssertEqual(try log.state(perSubject: true), before, "a refused append changes nothing")
        try log.close()
        log = try openLog(fs)
        XCTAssertEqual(try log.state(perSubject: true), before)
        try log.close()
        for name in try fs.list("/data/s") where name.hasSuffix(".idx") || name.hasSuffix(".snap") {
            try fs.remove("/data/s/" + name)
        }
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.fullReplay)
        XCTAssertEqual(try log.state(perSubject: true), before)
        XCTAssertEqual(payloadText(try log.message(StreamSequence(9))), "9")
    }

    /// An empty log (a mirror of a purged origin) starts at the first sequence it is given,
    /// with nothing deleted below it, however far that is.
    func test_emptyLog_startsAtTheGivenSequence() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        try log.append([msg("a", "x")], at: 1_000_000_000_000)
        var st = try log.state()
        XCTAssertEqual([st.messages, st.firstSequence, st.lastSequence, st.deletedCount], [1, 1_000_000_000_000, 1_000_000_000_000, 0])
        try log.close()
        log = try openLog(fs)
        st = try log.state()
        XCTAssertEqual([st.messages, st.firstSequence, st.lastSequence, st.deletedCount], [1, 1_000_000_000_000, 1_000_000_000_000, 0])
    }
}
