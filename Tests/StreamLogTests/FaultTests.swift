import XCTest
@testable import StreamLog

/// Crash, corruption and full-disk behaviour through `FaultyFileSystem`.
final class FaultTests: XCTestCase {
    func test_powerLoss_keepsEveryDurableBatch_andNothingAfterATornBlock() throws {
        for seed in UInt64(1)...30 {
            var rng = SeededRNG(seed: seed)
            let fs = FaultyFileSystem()
            let log = try openLog(fs, smallConfig(fsync: .always))
            var durable = 0
            for i in 0..<Int.random(in: 5...60, using: &rng) {
                let n = Int.random(in: 1...4, using: &rng)
                let batch = (0..<n).map { msg("c.\($0)", "b\(i)-\($0)") }
                if Bool.random(using: &rng) {
                    let r = try log.appendAndWait(batch)
                    durable = Int(r.lastSequence)
                } else {
                    try log.append(batch)
                }
            }
            fs.powerLoss(using: &rng)
            let reopened = try openLog(fs, smallConfig(fsync: .always))
            let all = try reopened.messages(from: StreamSequence(1), maxMessages: 10_000)
            XCTAssertGreaterThanOrEqual(all.count, durable, "seed \(seed): lost durable data")
            XCTAssertEqual(all.map(\.sequence.rawValue), Array(1...UInt64(max(all.count, 1))).prefix(all.count).map { $0 }, "seed \(seed): gap")
            for m in all {
                let parts = String(decoding: m.payload, as: UTF8.self).split(separator: "-")
                XCTAssertEqual(parts.count, 2, "seed \(seed): garbage payload")
            }
            try reopened.close()
            _ = log
        }
    }

    func test_powerLoss_repeatedCrashes_neverCrashOpen_andLogStaysUsable() throws {
        var rng = SeededRNG(seed: 99)
        let fs = FaultyFileSystem()
        var expectedDurable: UInt64 = 0
        for round in 0..<15 {
            let log = try openLog(fs, smallConfig(fsync: .interval(nanoseconds: 1_000_000)))
            let st = try log.state()
            XCTAssertGreaterThanOrEqual(st.lastSequence, expectedDurable, "round \(round)")
            for _ in 0..<Int.random(in: 1...30, using: &rng) { try log.append([msg("r", String(repeating: "z", count: Int.random(in: 1...300, using: &rng)))]) }
            let r = try log.appendAndWait([msg("r", "sync")])
            expectedDurable = r.lastSequence
            if Bool.random(using: &rng) { try log.compact(upTo: StreamSequence(r.lastSequence / 2 + 1)) }
            fs.powerLoss(using: &rng)
        }
    }

    func test_tornTail_isCutOffAndReported() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        try log.appendAndWait([msg("a", "durable")])
        let path = "/data/s/" + Segment.fileName(base: 1)
        let sizeBefore = fs.fileSize(path)!
        fs.failNext(.sync, count: 1_000)  // the next write never becomes durable
        try log.append([msg("a", String(repeating: "torn", count: 100))])
        // Tear: keep only part of the un-synced write.
        struct HalfRNG: RandomNumberGenerator { var n: UInt64 = 0; mutating func next() -> UInt64 { n &+= 1; return n % 2 == 1 ? UInt64.max : UInt64.max / 2 } }
        var rng = HalfRNG()
        fs.powerLoss(using: &rng)
        fs.clearInjectedFailures()
        XCTAssertGreaterThan(fs.fileSize(path)!, sizeBefore, "the tear should leave a partial block")
        let reopened = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        XCTAssertNotNil(reopened.recoveryReport.truncatedTail)
        XCTAssertEqual(reopened.recoveryReport.truncatedTail?.offset, UInt64(sizeBefore))
        XCTAssertEqual(try reopened.state().messages, 1)
        XCTAssertEqual(try reopened.append([msg("a", "next")]).firstSequence, 2)
    }

    func test_bitFlip_inEverySealedBlock_isDetectedAndLocalized() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        for i in 0..<120 { try log.append([msg("f", "payload-\(i)")]) }
        try log.close()
        let segs = try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.sorted()
        let sealed = "/data/s/" + segs[0]
        log = try openLog(fs)
        let blocks = log.segments[0].blocks
        try log.close()
        for ref in blocks where ref.kind == .messages {
            for offsetInBlock in [0, 20, Int(ref.length) - 1] {
                let at = Int(ref.offset) + offsetInBlock
                fs.flipBit(path: sealed, byteOffset: at, bit: 3)
                log = try openLog(fs)
                XCTAssertThrowsError(try log.message(StreamSequence(ref.firstSeq))) { error in
                    guard case StreamLogError.corrupt(let r) = error else { return XCTFail("\(error)") }
                    XCTAssertEqual(r.segment, sealed)
                    XCTAssertEqual(r.offset, ref.offset)
                    XCTAssertEqual(r.length, UInt64(ref.length))
                    XCTAssertEqual(r.sequences, ref.firstSeq...ref.lastSeq)
                }
                let damage = try log.verify()
                XCTAssertEqual(damage.count, 1)
                XCTAssertEqual(damage.first?.offset, ref.offset)
                try log.close()
                fs.flipBit(path: sealed, byteOffset: at, bit: 3)
            }
        }
    }

    func test_bitFlip_inSealedSegmentWithoutIndex_isReportedOnOpen() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        for i in 0..<120 { try log.append([msg("f", "payload-\(i)")]) }
        try log.close()
        let segs = try fs.list("/data/s").filter { $0.hasSuffix(".seg") }.sorted()
        try fs.remove("/data/s/" + segs[0].replacingOccurrences(of: ".seg", with: ".idx"))
        fs.flipBit(path: "/data/s/" + segs[0], byteOffset: 200)
        log = try openLog(fs)
        XCTAssertEqual(log.recoveryReport.corruptions.count, 1)
        XCTAssertEqual(log.recoveryReport.corruptions.first?.segment, "/data/s/" + segs[0])
        XCTAssertLessThanOrEqual(log.recoveryReport.corruptions.first!.offset, 200)
        XCTAssertGreaterThan(log.recoveryReport.corruptions.first!.offset + log.recoveryReport.corruptions.first!.length, 200)
        // Messages outside the damaged block are still readable.
        XCTAssertNotNil(try log.message(StreamSequence(119)))
    }

    func test_enospc_appendFailsCleanly_thenWorksWhenSpaceReturns() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        try log.appendAndWait([msg("d", "first")])
        fs.spaceLimitBytes = (fs.fileSize("/data/s/" + Segment.fileName(base: 1)) ?? 0) + 200
        var failures = 0
        for i in 0..<20 {
            do { try log.appendAndWait([msg("d", String(repeating: "x", count: 100) + "\(i)")]) } catch StreamLogError.storage(.noSpace) {
                failures += 1
            }
        }
        XCTAssertGreaterThan(failures, 0)
        let stored = try log.state().messages
        XCTAssertEqual(try log.messages(from: StreamSequence(1), maxMessages: 100).count, Int(stored))
        fs.spaceLimitBytes = nil
        let r = try log.appendAndWait([msg("d", "after")])
        XCTAssertEqual(r.firstSequence, stored + 1)
        try log.close()
        let reopened = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        XCTAssertEqual(try reopened.state().messages, stored + 1)
        XCTAssertNil(reopened.recoveryReport.truncatedTail)
    }

    func test_fsyncEIO_isSticky_andFailsWaiters() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        fs.failNext(.sync)
        XCTAssertThrowsError(try log.appendAndWait([msg("e", "1")])) {
            guard case StreamLogError.failed = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try log.append([msg("e", "2")]))
        XCTAssertNotNil(try log.message(StreamSequence(1)), "reads still work")
    }

    func test_readEIO_surfacesAsStorageError() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .never))
        try log.append([msg("e", "1")])
        try log.append([msg("e", "2")])
        fs.failNext(.read)
        XCTAssertThrowsError(try log.message(StreamSequence(1))) {
            guard case StreamLogError.storage(.io) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertNotNil(try log.message(StreamSequence(1)))
    }
}
