import XCTest
@testable import StreamLog

final class StreamLogBasicTests: XCTestCase {
    func test_append_assignsSequences_andReadsBack() throws {
        let log = try openLog(FaultyFileSystem())
        let r = try log.append([msg("a", "1"), msg("b", "2")])
        XCTAssertEqual(r.firstSequence, 1)
        XCTAssertEqual(r.lastSequence, 2)
        try log.append([msg("a", "3")])
        XCTAssertEqual(payloadText(try log.message(StreamSequence(2))), "2")
        XCTAssertEqual(payloadText(try log.lastMessage(subject: "a")), "3")
        XCTAssertNil(try log.message(StreamSequence(4)))
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 10).map(\.sequence.rawValue), [1, 2, 3])
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 10, filter: { $0 == "a" }).count, 2)
        let st = try log.state(perSubject: true)
        XCTAssertEqual(st.messages, 3)
        XCTAssertEqual(st.firstSequence, 1)
        XCTAssertEqual(st.lastSequence, 3)
        XCTAssertEqual(st.subjects, ["a": 2, "b": 1])
        try log.close()
    }

    func test_reopen_afterManySegments_restoresEverything() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        for i in 0..<300 { try log.append([msg("s.\(i % 7)", "p\(i)", ts: Int64(i) * 10)]) }
        let before = try log.state(perSubject: true)
        try log.close()
        XCTAssertGreaterThan(try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.count, 3)
        log = try openLog(fs)
        XCTAssertEqual(try log.state(perSubject: true), before)
        XCTAssertFalse(log.recoveryReport.fullReplay)
        XCTAssertEqual(payloadText(try log.message(StreamSequence(123))), "p122")
        XCTAssertEqual(payloadText(try log.lastMessage(subject: "s.3")), "p297")
        XCTAssertEqual(try log.firstSequence(atOrAfter: 1005), StreamSequence(102))
        XCTAssertNil(try log.firstSequence(atOrAfter: 1_000_000))
    }

    func test_reopen_withoutSnapshotOrIndexes_rebuildsByFullReplay() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        for i in 0..<200 { try log.append([msg("k.\(i % 5)", "v\(i)")]) }
        try log.delete(StreamSequence(50))
        try log.purge(.init(subject: "k.1"))
        let before = try log.state(perSubject: true)
        try log.close()
        for name in try fs.list("/data/s") where name.hasSuffix(".idx") || name.hasSuffix(".snap") {
            try fs.remove("/data/s/" + name)
        }
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.fullReplay)
        XCTAssertFalse(log.recoveryReport.rebuiltIndexes.isEmpty)
        XCTAssertEqual(try log.state(perSubject: true), before)
        XCTAssertNil(try log.message(StreamSequence(50)))
    }

    func test_truncateAfterRaftIndex_betweenRecords_keepsThoseAtOrBelowIt() throws {
        let log = try openLog(FaultyFileSystem())
        for i in 1...50 { try log.append([msg("r", "e\(i)", raft: UInt64(i * 2), term: 1)]) }
        try log.truncate(afterRaftIndex: 59) // between e29 (58) and e30 (60)
        XCTAssertEqual(log.lastRaftEntry.index, 58)
        XCTAssertEqual(try log.state().lastSequence, 29)
        XCTAssertEqual(payloadText(try log.message(StreamSequence(29))), "e29")
        try log.truncate(afterRaftIndex: 1) // below the first record: none stays
        XCTAssertEqual(try log.state().messages, 0)
        XCTAssertEqual(log.lastRaftEntry.index, 0)
        XCTAssertEqual(try log.append([msg("r", "again", raft: 2, term: 2)]).firstSequence, 1)
    }

    func test_raftIndex_lookupAndTruncation() throws {
        let log = try openLog(FaultyFileSystem())
        for i in 1...50 { try log.append([msg("r", "e\(i)", raft: UInt64(i * 2), term: UInt64(1 + i / 20))]) }
        XCTAssertEqual(payloadText(try log.message(raftIndex: 40)), "e20")
        XCTAssertNil(try log.message(raftIndex: 41))
        XCTAssertThrowsError(try log.append([msg("r", "bad", raft: 100)]))
        try log.truncate(afterRaftIndex: 60)
        XCTAssertEqual(log.lastRaftEntry.index, 60)
        XCTAssertEqual(log.lastRaftEntry.term, 2)
        XCTAssertEqual(try log.state().lastSequence, 30)
        XCTAssertEqual(try log.append([msg("r", "new", raft: 61, term: 3)]).firstSequence, 31)
        XCTAssertEqual(payloadText(try log.message(raftIndex: 61)), "new")
    }

    func test_truncate_midBlock_rewritesOneBlock_andSubjectIndexFollows() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        try log.append((1...10).map { msg($0 % 2 == 0 ? "even" : "odd", "m\($0)") })
        try log.truncate(after: StreamSequence(5))
        XCTAssertEqual(try log.state().messages, 5)
        XCTAssertEqual(try log.lastMessage(subject: "even")?.sequence, StreamSequence(4))
        XCTAssertEqual(try log.lastMessage(subject: "odd")?.sequence, StreamSequence(5))
        try log.close()
        log = try openLog(fs)
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 100).map(\.sequence.rawValue), [1, 2, 3, 4, 5])
    }

    func test_truncate_acrossSegments_keepsEarlierDeletes() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        for i in 1...200 { try log.append([msg("t", "m\(i)")]) }
        try log.delete(StreamSequence(10))
        try log.truncate(after: StreamSequence(20))
        XCTAssertEqual(try log.state().messages, 19)
        try log.close()
        for name in try fs.list("/data/s") where name.hasSuffix(".snap") { try fs.remove("/data/s/" + name) }
        log = try openLog(fs)
        XCTAssertEqual(try log.state().messages, 19)
        XCTAssertNil(try log.message(StreamSequence(10)))
        XCTAssertEqual(try log.append([msg("t", "x")]).firstSequence, 21)
    }

    func test_compact_dropsWholeSegments_andMarksTheRest() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs)
        for i in 1...300 { try log.append([msg("c", "m\(i)")]) }
        let segsBefore = try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.count
        XCTAssertEqual(try log.compact(upTo: StreamSequence(250)), 249)
        XCTAssertLessThan(try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.count, segsBefore)
        let st = try log.state()
        XCTAssertEqual(st.firstSequence, 250)
        XCTAssertEqual(st.messages, 51)
        XCTAssertNil(try log.message(StreamSequence(249)))
        XCTAssertNotNil(try log.message(StreamSequence(250)))
    }

    func test_secureDelete_removesBytesFromSegment() throws {
        let fs = FaultyFileSystem()
        let log = try StreamLog.open(directory: "/data/s", fileSystem: fs,
                                     config: StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .never, compression: false))
        try log.append([msg("a", "keep-one"), msg("a", "SECRET-PAYLOAD-XYZ"), msg("a", "keep-two")])
        XCTAssertTrue(try log.delete(StreamSequence(2), secure: true))
        let seg = try fs.open("/data/s/" + Segment.fileName(base: 1), create: false)
        let bytes = try seg.read(count: Int(try seg.size()), at: 0)
        XCTAssertNil(String(decoding: bytes, as: UTF8.self).range(of: "SECRET-PAYLOAD-XYZ"))
        XCTAssertEqual(payloadText(try log.message(StreamSequence(3))), "keep-two")
        XCTAssertNil(try log.message(StreamSequence(2)))
        XCTAssertFalse(try log.delete(StreamSequence(2)))
    }

    func test_maintenance_rewritesSmallBlockSegments_andKeepsContent() throws {
        let fs = FaultyFileSystem()
        var config = smallConfig()
        config.segmentMaxBytes = 64 << 10
        var log = try StreamLog.open(directory: "/data/s", fileSystem: fs, config: config)
        for i in 0..<2000 {
            try log.append([NewMessage(subject: "j.\(i % 10)", payload: jsonPayload(i), timestamp: Int64(i))])
        }
        for s in stride(from: 1, to: 1500, by: 3) { try log.delete(StreamSequence(UInt64(s))) }
        let before = try log.messages(from: StreamSequence(1), maxMessages: 5000)
        let sizeBefore = try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.reduce(0) { $0 + (fs.fileSize("/data/s/" + $1) ?? 0) }
        XCTAssertGreaterThan(try log.runMaintenance(maxSegments: 100), 0)
        let sizeAfter = try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.reduce(0) { $0 + (fs.fileSize("/data/s/" + $1) ?? 0) }
        XCTAssertLessThan(sizeAfter, sizeBefore / 2)
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 5000), before)
        try log.close()
        for name in try fs.list("/data/s") where name.hasSuffix(".snap") { try fs.remove("/data/s/" + name) }
        log = try StreamLog.open(directory: "/data/s", fileSystem: fs, config: config)
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 5000), before)
    }

    func test_memoryLog_behavesLikeFileLog() throws {
        let log = try StreamLog.memory()
        try log.append([msg("m", "1"), msg("m", "2")])
        XCTAssertEqual(try log.state().messages, 2)
        XCTAssertEqual(payloadText(try log.lastMessage(subject: "m")), "2")
    }
}
