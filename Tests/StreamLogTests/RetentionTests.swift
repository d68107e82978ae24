import XCTest
@testable import StreamLog

final class RetentionTests: XCTestCase {
    func test_maxMessages_discardOld_removesOldest_andSurvivesReopen() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs, smallConfig(limits: RetentionLimits(maxMessages: 10)))
        for i in 1...25 { try log.append([msg("a", "m\(i)")]) }
        var st = try log.state()
        XCTAssertEqual(st.messages, 10)
        XCTAssertEqual(st.firstSequence, 16)
        try log.close()
        log = try openLog(fs, smallConfig(limits: RetentionLimits(maxMessages: 10)))
        st = try log.state()
        XCTAssertEqual(st.messages, 10)
        XCTAssertEqual(st.firstSequence, 16)
    }

    func test_discardNew_rejectsWithNatsWording() throws {
        let log = try openLog(FaultyFileSystem(), smallConfig(limits: RetentionLimits(
            maxMessages: 2, maxBytes: 1000, maxMessagesPerSubject: 1, maxMessageSize: 8,
            discard: .new, discardNewPerSubject: true)))
        try log.append([msg("a", "1")])
        XCTAssertThrowsError(try log.append([msg("a", "2")])) {
            XCTAssertEqual($0 as? StreamLogError, .maxMessagesPerSubjectExceeded)
            XCTAssertEqual("\($0)", "maximum messages per subject exceeded")
        }
        try log.append([msg("b", "2")])
        XCTAssertThrowsError(try log.append([msg("c", "3")])) {
            XCTAssertEqual("\($0)", "maximum messages exceeded")
        }
        XCTAssertThrowsError(try log.append([msg("d", "123456789")])) {
            XCTAssertEqual("\($0)", "message size exceeds maximum allowed")
        }
        XCTAssertEqual(try log.state().messages, 2)
    }

    func test_discardNew_maxBytes_rejectsWholeBatch() throws {
        let log = try openLog(FaultyFileSystem(), smallConfig(limits: RetentionLimits(maxBytes: 200, discard: .new)))
        try log.append([msg("a", String(repeating: "x", count: 100))])
        XCTAssertThrowsError(try log.append([msg("a", "y"), msg("a", String(repeating: "z", count: 100))])) {
            XCTAssertEqual("\($0)", "maximum bytes exceeded")
        }
        XCTAssertEqual(try log.state().messages, 1)
    }

    func test_maxBytes_discardOld_keepsUnderLimit() throws {
        let log = try openLog(FaultyFileSystem(), smallConfig(limits: RetentionLimits(maxBytes: 1000)))
        for i in 0..<100 { try log.append([msg("b", String(repeating: "x", count: 50 + i % 7))]) }
        let st = try log.state()
        XCTAssertLessThanOrEqual(st.bytes, 1000)
        XCTAssertGreaterThan(st.messages, 5)
        XCTAssertEqual(st.lastSequence, 100)
    }

    func test_maxMessagesPerSubject_keepsNewestPerSubject_likeKV() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs, smallConfig(limits: RetentionLimits(maxMessagesPerSubject: 1)))
        for i in 0..<300 { try log.append([msg("kv.\(i % 10)", "rev\(i)")]) }
        var st = try log.state(perSubject: true)
        XCTAssertEqual(st.messages, 10)
        XCTAssertEqual(st.subjectCount, 10)
        XCTAssertEqual(payloadText(try log.lastMessage(subject: "kv.3")), "rev293")
        try log.close()
        log = try openLog(fs, smallConfig(limits: RetentionLimits(maxMessagesPerSubject: 1)))
        st = try log.state(perSubject: true)
        XCTAssertEqual(st.messages, 10)
        XCTAssertEqual(Set(st.subjects!.values), [1])
    }

    func test_maxAge_expiresByInjectedClock() throws {
        let clock = TestClock()
        let base = clock.now
        let log = try openLog(FaultyFileSystem(), smallConfig(limits: RetentionLimits(maxAgeNanos: 1_000)), clock: clock)
        for i in 0..<10 { try log.append([msg("t", "m\(i)", ts: base + Int64(i) * 100)]) }
        clock.now = base + 1_450
        XCTAssertEqual(try log.expire(now: clock.now), 5)
        XCTAssertEqual(try log.state().firstSequence, 6)
        XCTAssertEqual(try log.firstSequence(atOrAfter: base + 250), StreamSequence(6))
    }

    func test_updateLimits_atRuntime_appliesImmediately() throws {
        let log = try openLog(FaultyFileSystem())
        for i in 0..<50 { try log.append([msg("u.\(i % 5)", "m\(i)")]) }
        try log.updateLimits(RetentionLimits(maxMessagesPerSubject: 2))
        XCTAssertEqual(try log.state().messages, 10)
        try log.updateLimits(RetentionLimits(maxMessages: 3))
        XCTAssertEqual(try log.state().messages, 3)
        XCTAssertEqual(try log.state().firstSequence, 48)
        XCTAssertEqual(log.limits.maxMessages, 3)
    }

    func test_purge_variants() throws {
        let log = try openLog(FaultyFileSystem())
        for i in 1...40 { try log.append([msg(i % 2 == 0 ? "p.even" : "p.odd", "m\(i)")]) }
        XCTAssertEqual(try log.purge(.init(subject: "p.even", keep: 5)), 15)
        XCTAssertEqual(try log.state(perSubject: true).subjects?["p.even"], 5)
        XCTAssertEqual(try log.purge(.init(subject: "p.odd", upToSequence: 11)), 5)
        XCTAssertEqual(try log.lastMessage(subject: "p.odd")?.sequence, StreamSequence(39))
        XCTAssertEqual(try log.purge(.init(keep: 3)), 15 + 5 - 3)
        XCTAssertEqual(try log.state().messages, 3)
        XCTAssertEqual(try log.purge(), 3)
        let st = try log.state()
        XCTAssertEqual(st.messages, 0)
        XCTAssertEqual(st.firstSequence, 41)
        XCTAssertEqual(st.lastSequence, 40)
        XCTAssertEqual(try log.append([msg("x", "after")]).firstSequence, 41)
    }

    func test_state_reportsDeletedAndTimestamps() throws {
        let log = try openLog(FaultyFileSystem())
        for i in 1...10 { try log.append([msg("s", "m\(i)", ts: Int64(i))]) }
        try log.delete(StreamSequence(1))
        try log.delete(StreamSequence(5))
        try log.delete(StreamSequence(6))
        let st = try log.state()
        XCTAssertEqual(st.messages, 7)
        XCTAssertEqual(st.firstSequence, 2)
        XCTAssertEqual(st.deletedCount, 2)
        XCTAssertEqual(st.firstTimestamp, 2)
        XCTAssertEqual(st.lastTimestamp, 10)
    }

    func test_manySubjects_indexScales() throws {
        let log = try StreamLog.memory(config: StreamLogConfig(segmentMaxBytes: 8 << 20, compression: false))
        let n = 20_000
        var batch: [NewMessage] = []
        for i in 0..<n {
            batch.append(msg("subj.\(i)", "v"))
            if batch.count == 500 { try log.append(batch); batch.removeAll() }
        }
        XCTAssertEqual(try log.state().subjectCount, n)
        XCTAssertEqual(try log.lastMessage(subject: "subj.12345")?.sequence, StreamSequence(12346))
    }
}
