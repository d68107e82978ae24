import XCTest
@testable import StreamLog

/// `StreamLogConfig.defersFileRemoval`: a compaction renames the segments it drops out of the log, and
/// `removalJob` (or the next open, after a crash) removes them.
final class DeferredRemovalTests: XCTestCase {
    private func config(deferring: Bool = false) -> StreamLogConfig {
        StreamLogConfig(segmentMaxBytes: 4096, fsync: .always, compression: false, defersFileRemoval: deferring)
    }

    private func names(_ fs: FaultyFileSystem) throws -> [String] { try fs.list("/data/s").sorted() }

    /// A log of 60 messages over several 4 KiB segments, compacted below message 50.
    private func compactedLog(_ fs: FaultyFileSystem, deferring: Bool) throws -> StreamLog {
        let log = try openLog(fs, config(deferring: deferring))
        for i in 1...60 { try log.append([msg("d.\(i % 4)", "m\(i)-" + String(repeating: "y", count: 300))]) }
        XCTAssertGreaterThan(try names(fs).filter { $0.hasSuffix(".seg") }.count, 3)
        try log.compact(upTo: StreamSequence(50))
        return log
    }

    func test_compaction_renamesDroppedSegments_andTheJobRemovesThem() throws {
        let fs = FaultyFileSystem()
        let log = try compactedLog(fs, deferring: true)
        let dropped = try names(fs).filter { $0.hasSuffix(".dropped") }
        XCTAssertFalse(dropped.isEmpty, "segments below the floor wait for the job")
        XCTAssertTrue(try names(fs).filter { $0.hasSuffix(".seg") }.allSatisfy { Segment.parseBase($0)! >= log.lock.withLock { log.segments[0].base } })
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 100).map(\.sequence.rawValue), Array(50...60))

        let job = try XCTUnwrap(log.removalJob())
        XCTAssertNil(log.removalJob(), "each dropped file is handed out once")
        job()
        XCTAssertEqual(try names(fs).filter { $0.hasSuffix(".dropped") }, [])
        try log.close()
        let reopened = try openLog(fs, config())
        XCTAssertEqual(try reopened.messages(from: StreamSequence(1), maxMessages: 100).map(\.sequence.rawValue), Array(50...60))
    }

    func test_aCrashBeforeTheJob_leavesDroppedFiles_thatTheNextOpenRemoves() throws {
        let fs = FaultyFileSystem()
        let log = try compactedLog(fs, deferring: true)
        try log.close()  // the job never ran
        XCTAssertFalse(try names(fs).filter { $0.hasSuffix(".dropped") }.isEmpty)
        let reopened = try openLog(fs, config())
        XCTAssertEqual(try names(fs).filter { $0.hasSuffix(".dropped") }, [])
        XCTAssertEqual(reopened.recoveryReport.corruptions, [])
        XCTAssertEqual(try reopened.state().firstSequence, 50)
        XCTAssertEqual(try reopened.messages(from: StreamSequence(1), maxMessages: 100).map(\.sequence.rawValue), Array(50...60))
    }

    func test_withoutDeferral_theCompactionRemovesThemItself() throws {
        let fs = FaultyFileSystem()
        let log = try compactedLog(fs, deferring: false)
        XCTAssertEqual(try names(fs).filter { $0.hasSuffix(".dropped") }, [])
        XCTAssertNil(log.removalJob())
    }
}
