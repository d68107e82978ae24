import XCTest
@testable import StreamLog

/// `StreamLogConfig.preallocateBytes`: zeros written ahead of the appends are unused space,
/// never data, never a torn write, and never left behind in a sealed segment.
final class PreallocationTests: XCTestCase {
    private let path = "/data/s/" + Segment.fileName(base: 1)

    private func config(step: UInt64 = 64 << 10, segmentMaxBytes: UInt64 = 1 << 20, fsync: FsyncPolicy = .always) -> StreamLogConfig {
        StreamLogConfig(segmentMaxBytes: segmentMaxBytes, fsync: fsync, compression: false, preallocateBytes: step)
    }

    func test_appends_extendTheFileAhead_andReopenSeesOnlyTheData() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config())
        for i in 0..<40 { try log.appendAndWait([msg("p.\(i % 3)", "m\(i)-" + String(repeating: "x", count: 200))]) }
        let end = log.lock.withLock { log.tail.size }
        XCTAssertGreaterThan(UInt64(fs.fileSize(path)!), end, "the file holds zeros past the last block")
        try log.close()

        let reopened = try openLog(fs, config())
        XCTAssertNil(reopened.recoveryReport.truncatedTail, "preallocated zeros are not a torn write")
        XCTAssertEqual(try reopened.state().messages, 40)
        XCTAssertEqual(reopened.lock.withLock { reopened.tail.size }, end)
        XCTAssertEqual(try reopened.append([msg("p.0", "after")]).firstSequence, 41)
        let all = try reopened.messages(from: StreamSequence(1), maxMessages: 100)
        XCTAssertEqual(all.map(\.sequence.rawValue), Array(1...41))
        XCTAssertEqual(payloadText(all.last), "after")
    }

    func test_smallLog_fileStaysWithinTwiceItsData() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config(step: 1 << 20))
        try log.appendAndWait([msg("a", "one")])
        let size = log.lock.withLock { log.tail.size }
        XCTAssertLessThanOrEqual(UInt64(fs.fileSize(path)!), size + max(4096, size),
                                 "a log with one message must not take a whole preallocation step")
    }

    func test_tornWriteInsidePreallocatedSpace_isCutAndReported() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config())
        try log.appendAndWait([msg("a", "durable")])
        let durableEnd = log.lock.withLock { log.tail.size }
        fs.failNext(.sync, count: 1_000)  // what follows never becomes durable
        try log.append([msg("a", String(repeating: "torn", count: 100))])
        // Keep the un-synced write but tear it: part of a block inside the zeros.
        struct HalfRNG: RandomNumberGenerator { var n: UInt64 = 0; mutating func next() -> UInt64 { n &+= 1; return n % 2 == 1 ? UInt64.max : UInt64.max / 2 } }
        var rng = HalfRNG()
        fs.powerLoss(using: &rng)
        fs.clearInjectedFailures()
        let reopened = try openLog(fs, config())
        XCTAssertEqual(reopened.recoveryReport.truncatedTail?.offset, durableEnd, "a partial block is a torn write")
        XCTAssertEqual(try reopened.state().messages, 1)
        XCTAssertEqual(UInt64(fs.fileSize(path)!), durableEnd, "the torn tail is cut off")
        XCTAssertEqual(try reopened.append([msg("a", "next")]).firstSequence, 2)
    }

    func test_powerLoss_keepsEveryDurableBatch() throws {
        for seed in UInt64(1)...30 {
            var rng = SeededRNG(seed: seed)
            let fs = FaultyFileSystem()
            let cfg = config(step: 4096, segmentMaxBytes: 8192)
            let log = try openLog(fs, cfg)
            var durable: UInt64 = 0
            for i in 0..<Int.random(in: 5...80, using: &rng) {
                let batch = (0..<Int.random(in: 1...4, using: &rng)).map { msg("c.\($0)", "b\(i)-\($0)" + String(repeating: "y", count: 50)) }
                if Bool.random(using: &rng) { durable = try log.appendAndWait(batch).lastSequence } else { try log.append(batch) }
            }
            fs.powerLoss(using: &rng)
            let reopened = try openLog(fs, cfg)
            XCTAssertTrue(reopened.recoveryReport.corruptions.isEmpty, "seed \(seed): \(reopened.recoveryReport.corruptions)")
            let all = try reopened.messages(from: StreamSequence(1), maxMessages: 10_000)
            XCTAssertGreaterThanOrEqual(UInt64(all.count), durable, "seed \(seed): lost durable data")
            XCTAssertEqual(all.map(\.sequence.rawValue), Array(UInt64(1)...UInt64(max(all.count, 1))).prefix(all.count).map { $0 },
                           "seed \(seed): gap")
            XCTAssertEqual(try reopened.append([msg("c.0", "next")]).firstSequence, UInt64(all.count) + 1, "seed \(seed)")
            _ = log
        }
    }

    func test_sealedSegments_endAtTheirLastBlock() throws {
        let fs = FaultyFileSystem()
        let cfg = config(step: 64 << 10, segmentMaxBytes: 4096)
        let log = try openLog(fs, cfg)
        for i in 0..<60 { try log.appendAndWait([msg("s", "m\(i)-" + String(repeating: "z", count: 150))]) }
        let sealed = log.lock.withLock { log.segments.dropLast().map { ($0.path, $0.size) } }
        XCTAssertGreaterThan(sealed.count, 1)
        for (p, size) in sealed { XCTAssertEqual(UInt64(fs.fileSize(p)!), size, "\(p) keeps preallocated zeros") }
        try log.close()
        // Without index files every sealed segment is scanned: zeros would read as damage.
        for (p, _) in sealed { try fs.remove(String(p.dropLast(4)) + ".idx") }
        let reopened = try openLog(fs, cfg)
        XCTAssertTrue(reopened.recoveryReport.corruptions.isEmpty, "\(reopened.recoveryReport.corruptions)")
        XCTAssertEqual(try reopened.state().messages, 60)
    }

    func test_powerLossRightAfterANewTail_leavesNoZerosInTheOldOne() throws {
        // The crash window of a roll or a reset: the new tail exists (its directory entry
        // synced), nothing else happened yet. The old tail, now sealed without an index file,
        // must not come back with its zeros: its rebuild would report them as damage.
        for seed in UInt64(1)...20 {
            var rng = SeededRNG(seed: seed)
            let fs = FaultyFileSystem()
            let cfg = config(fsync: .manual)
            let log = try openLog(fs, cfg)
            for i in 1...20 { try log.append([msg("r", "m\(i)", raft: UInt64(i), term: 1)]) }
            try log.sync()
            try log.lock.withLock { try log.createSegment(base: 21) }
            fs.powerLoss(using: &rng)
            let reopened = try openLog(fs, cfg)
            XCTAssertTrue(reopened.recoveryReport.corruptions.isEmpty, "seed \(seed): \(reopened.recoveryReport.corruptions)")
            XCTAssertEqual(try reopened.messages(from: StreamSequence(1), maxMessages: 100).count, 20, "seed \(seed)")
            _ = log
        }
    }

    func test_truncateThenAppend_reopensConsistently() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config())
        for i in 1...30 { try log.appendAndWait([msg("t", "m\(i)", raft: UInt64(i), term: 1)]) }
        try log.truncate(afterRaftIndex: 20)
        for i in 21...25 { try log.appendAndWait([msg("t", "n\(i)", raft: UInt64(i), term: 2)]) }
        try log.close()
        let reopened = try openLog(fs, config())
        XCTAssertNil(reopened.recoveryReport.truncatedTail)
        let all = try reopened.messages(from: StreamSequence(1), maxMessages: 100)
        XCTAssertEqual(all.map(\.sequence.rawValue), Array(1...25))
        XCTAssertEqual(all.map { payloadText($0)! }, (1...20).map { "m\($0)" } + (21...25).map { "n\($0)" })
    }

    /// `Segment.allocated` is what the file holds and never below `size`, for the tail and for
    /// every sealed, reopened, truncated or rewritten segment.
    private func assertAllocatedInvariant(_ log: StreamLog, _ fs: FaultyFileSystem, _ step: String,
                                          file: StaticString = #filePath, line: UInt = #line) {
        let segs = log.lock.withLock { log.segments.map { ($0.path, $0.size, $0.allocated, $0.sealed) } }
        for (p, size, allocated, sealed) in segs {
            XCTAssertGreaterThanOrEqual(allocated, size, "\(step): \(p)", file: file, line: line)
            XCTAssertEqual(allocated, UInt64(fs.fileSize(p) ?? -1), "\(step): \(p) file size", file: file, line: line)
            if sealed { XCTAssertEqual(allocated, size, "\(step): sealed \(p) holds no zeros", file: file, line: line) }
        }
    }

    func test_allocated_neverBelowSize_acrossSealTruncateRewriteAndReopen() throws {
        let fs = FaultyFileSystem()
        let cfg = config(step: 64 << 10, segmentMaxBytes: 4096)
        var log = try openLog(fs, cfg)
        for i in 1...100 { try log.appendAndWait([msg("a.\(i % 4)", "m\(i)-" + String(repeating: "z", count: 150))]) }
        XCTAssertGreaterThan(log.lock.withLock { log.segments.count }, 4)
        assertAllocatedInvariant(log, fs, "after rolls")

        // A cut at a sealed segment's end makes it the tail without rewriting any of its blocks.
        let boundary = log.lock.withLock { log.segments[3].lastSeq! }
        try log.truncate(after: StreamSequence(boundary))
        XCTAssertEqual(log.lock.withLock { log.tail.lastSeq }, boundary)
        assertAllocatedInvariant(log, fs, "truncate at a segment boundary")
        // A cut inside a sealed segment rewrites its last kept block.
        let inside = log.lock.withLock { log.segments[2].base + 3 }
        try log.truncate(after: StreamSequence(inside))
        assertAllocatedInvariant(log, fs, "truncate inside a segment")

        for i in 1...60 { try log.appendAndWait([msg("b", "n\(i)-" + String(repeating: "y", count: 150))]) }
        assertAllocatedInvariant(log, fs, "appends after truncation")

        let first = log.lock.withLock { log.segments[0].blocks.compactMap { $0.kind == .messages ? $0.firstSeq...$0.lastSeq : nil } }
        for range in first { for s in range.dropFirst() { _ = try log.delete(StreamSequence(s)) } }
        XCTAssertGreaterThan(try log.runMaintenance(maxSegments: 100), 0)
        assertAllocatedInvariant(log, fs, "rewrite")

        try log.close()
        log = try openLog(fs, cfg)
        assertAllocatedInvariant(log, fs, "reopen")
        // Without index files the sealed segments are scanned and sized from the file.
        for p in log.lock.withLock({ log.segments.dropLast().map(\.path) }) { try fs.remove(String(p.dropLast(4)) + ".idx") }
        try log.close()
        log = try openLog(fs, cfg)
        XCTAssertTrue(log.recoveryReport.corruptions.isEmpty, "\(log.recoveryReport.corruptions)")
        assertAllocatedInvariant(log, fs, "reopen with rebuilt indexes")
    }

    func test_stepLargerThanTheSharedZeros_isWrittenInChunks_andAFailedChunkIsCutOff() throws {
        let step = UInt64(StreamLog.zeros.count) * 2 + 12_345
        let cfg = config(step: step, segmentMaxBytes: 64 << 20)
        let fs = FaultyFileSystem()
        let log = try openLog(fs, cfg)
        // One block past the step, so the extension is the whole step (not the file's size).
        let big = String(repeating: "q", count: Int(step) + 1000)
        try log.appendAndWait([msg("a", big)])
        let end = log.lock.withLock { log.tail.size }
        XCTAssertEqual(UInt64(fs.fileSize(path)!), end + step)
        XCTAssertTrue(try log.lock.withLock { try log.tail.isZero(end..<(end + step)) })

        // Blocks are all `end` long. The third one reaches past the zeros by `end - step`;
        // the disk then has room for it and one chunk of zeros, not for the rest.
        try log.appendAndWait([msg("a", big)])
        XCTAssertEqual(log.lock.withLock { log.tail.size }, 2 * end)
        fs.spaceLimitBytes = fs.lock.withLock { fs.usedBytes } + Int(end - step) + StreamLog.zeros.count
        try log.appendAndWait([msg("a", big)])
        let end3 = log.lock.withLock { log.tail.size }
        XCTAssertEqual(end3, 3 * end)
        XCTAssertEqual(UInt64(fs.fileSize(path)!), end3, "a partly written extension is cut off")
        XCTAssertEqual(log.lock.withLock { log.tail.allocated }, end3)
        fs.spaceLimitBytes = nil
        try log.close()
        let reopened = try openLog(fs, cfg)
        XCTAssertNil(reopened.recoveryReport.truncatedTail)
        XCTAssertEqual(try reopened.state().messages, 3)
    }

    func test_fullDisk_preallocationIsSkipped_appendStillSucceeds() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config(step: 1 << 20))
        try log.appendAndWait([msg("a", "first")])
        // The next block reaches past the preallocated space; the disk has room for the block
        // (it grows the file by about 1 KB) but not for the zeros after it.
        let big = String(repeating: "b", count: 5000)
        fs.spaceLimitBytes = fs.lock.withLock { fs.usedBytes } + 2048
        let r = try log.appendAndWait([msg("a", big)])
        XCTAssertEqual(r.firstSequence, 2)
        XCTAssertEqual(UInt64(fs.fileSize(path)!), log.lock.withLock { log.tail.size }, "the failed zeros are cut off")
        fs.spaceLimitBytes = nil
        try log.close()
        let reopened = try openLog(fs, config(step: 1 << 20))
        XCTAssertEqual(try reopened.messages(from: StreamSequence(1), maxMessages: 10).map { payloadText($0)! }, ["first", big])
    }
}
