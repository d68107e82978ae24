import XCTest
@testable import StreamLog

/// `StreamLogConfig.spareSegments`: dropped segments become zeroed spares that new tail segments
/// take over (StreamLog+Recycle.swift).
final class SpareSegmentTests: XCTestCase {
    private func config(spares: Int) -> StreamLogConfig {
        StreamLogConfig(segmentMaxBytes: 4096, fsync: .always, compression: false, defersFileRemoval: true,
                        spareSegments: spares)
    }

    private func names(_ fs: FaultyFileSystem, _ suffix: String) throws -> [String] {
        try fs.list("/data/s").filter { $0.hasSuffix(suffix) }.sorted()
    }

    private func append(_ log: StreamLog, _ range: ClosedRange<Int>, bodyBytes: Int = 300) throws {
        for i in range { try log.append([msg("r.\(i % 4)", "m\(i)-" + String(repeating: "y", count: bodyBytes))]) }
    }

    private func sequences(_ log: StreamLog) throws -> [UInt64] {
        try log.messages(from: StreamSequence(1), maxMessages: 1000).map(\.sequence.rawValue)
    }

    func test_droppedSegments_becomeZeroedSpares_andNewTailsTakeThemOver() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config(spares: 2))
        try append(log, 1...60)
        try log.compact(upTo: StreamSequence(50))
        let dropped = try names(fs, ".dropped")
        XCTAssertGreaterThan(dropped.count, 2)
        try XCTUnwrap(log.removalJob())()
        XCTAssertEqual(try names(fs, ".dropped"), [], "the ones over the limit are removed")
        let spares = try names(fs, ".spare")
        XCTAssertEqual(spares.count, 2)
        for name in spares {
            let file = try fs.open("/data/s/" + name, create: false)
            let bytes = try file.read(count: Int(try file.size()), at: 0)
            XCTAssertGreaterThan(bytes.count, 0)
            XCTAssertTrue(bytes.allSatisfy { $0 == 0 }, "\(name) still holds its old blocks")
        }
        // Smaller messages than the old ones, so that the new tail ends inside the spare's old
        // blocks, not on a boundary of them.
        try append(log, 61...90, bodyBytes: 100)
        XCTAssertEqual(try names(fs, ".spare").count, 1, "a new tail took one over")
        let tailSize = log.lock.withLock { log.segments.last!.size }
        XCTAssertLessThan(tailSize, 4096, "the tail is still partly the spare's zeros")
        XCTAssertEqual(try sequences(log), Array(50...90))
        try log.close()

        let reopened = try openLog(fs, config(spares: 2))
        XCTAssertNil(reopened.recoveryReport.truncatedTail, "a taken-over spare's zeros are unused space")
        XCTAssertEqual(reopened.recoveryReport.corruptions, [])
        XCTAssertEqual(reopened.lock.withLock { reopened.segments.last!.size }, tailSize,
                       "the tail ends where its last block does, not after blocks of the file's old life")
        XCTAssertEqual(try sequences(reopened), Array(50...90))
        try append(reopened, 91...130)
        XCTAssertEqual(try names(fs, ".spare"), [], "open removed the spare")
        XCTAssertEqual(try sequences(reopened), Array(50...130))
        try reopened.close()
    }

    /// Spares ready and spares being made both count against the limit.
    func test_theLimit_countsSparesReadyAndInTheMaking() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config(spares: 2))
        try append(log, 1...40)
        try log.compact(upTo: StreamSequence(20))
        let first = try XCTUnwrap(log.removalJob())
        try append(log, 41...60)
        try log.compact(upTo: StreamSequence(55))
        let second = try XCTUnwrap(log.removalJob())  // made while the first still runs
        second()
        first()
        XCTAssertEqual(try names(fs, ".spare").count, 2)
        XCTAssertEqual(try names(fs, ".dropped"), [])
        XCTAssertEqual(try sequences(log), Array(55...60))
        try log.close()
    }

    /// `close` hands its spares back for removal; what a crash leaves, the next open removes.
    func test_closeGivesUpItsSpares_andOpenRemovesLeftovers() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config(spares: 2))
        try append(log, 1...60)
        try log.compact(upTo: StreamSequence(50))
        try XCTUnwrap(log.removalJob())()
        XCTAssertEqual(try names(fs, ".spare").count, 2)
        try log.close()
        try XCTUnwrap(log.removalJob(), "the closed log's spares are to be removed")()
        XCTAssertEqual(try names(fs, ".spare"), [])

        let again = try openLog(fs, config(spares: 2))
        try append(again, 61...120)
        try again.compact(upTo: StreamSequence(110))
        try XCTUnwrap(again.removalJob())()
        XCTAssertEqual(try names(fs, ".spare").count, 2)
        var rng = SeededRNG(seed: 5)
        fs.powerLoss(using: &rng)  // a crash: the spares stay behind
        let reopened = try openLog(fs, config(spares: 2))
        XCTAssertEqual(try names(fs, ".spare"), [])
        XCTAssertEqual(try sequences(reopened), Array(110...120))
        try reopened.close()
    }

    /// `releaseIdleSpares` removes the spares that stayed untaken since its previous call; the
    /// oldest spare is taken over first, so a log that keeps rolling keeps what it uses.
    func test_releaseIdleSpares_removesThoseUntakenForAWholeRound() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config(spares: 3))
        try append(log, 1...60)
        try log.compact(upTo: StreamSequence(50))
        try XCTUnwrap(log.removalJob())()
        let first = try names(fs, ".spare")
        XCTAssertEqual(first.count, 3)
        XCTAssertNil(log.releaseIdleSpares(), "the first round only notes what is ready")
        // One new tail: it takes the oldest spare over.
        let segments = log.lock.withLock { log.segments.count }
        while log.lock.withLock({ log.segments.count }) == segments { try append(log, 61...61) }
        let left = try names(fs, ".spare")
        XCTAssertEqual(left.count, 2)
        XCTAssertEqual(log.lock.withLock { log.spareFiles.map { String($0.split(separator: "/").last!) } }, left)
        XCTAssertFalse(left.contains(first.min()!), "the oldest went first")
        try XCTUnwrap(log.releaseIdleSpares(), "two stayed untaken")()
        XCTAssertEqual(try names(fs, ".spare"), [])
        XCTAssertEqual(log.lock.withLock { log.spareFiles }, [])
        XCTAssertNil(log.releaseIdleSpares())
        // New spares after a release are kept for a round, and the log goes on.
        let last = try XCTUnwrap(try sequences(log).last)
        try append(log, 1...40)
        try log.compact(upTo: StreamSequence(last + 35))
        try XCTUnwrap(log.removalJob())()
        XCTAssertEqual(try names(fs, ".spare").count, 3)
        XCTAssertNil(log.releaseIdleSpares())
        XCTAssertEqual(try names(fs, ".spare").count, 3)
        XCTAssertEqual(try sequences(log), Array((last + 35)...(last + 40)))
        try log.close()
        XCTAssertNil(log.releaseIdleSpares(), "close gave the spares up already")
    }
}
