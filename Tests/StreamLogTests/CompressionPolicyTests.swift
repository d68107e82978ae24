import XCTest
@testable import StreamLog

final class CompressionPolicyTests: XCTestCase {
    /// Feeds `blocks` blocks; returns how many were tried. A tried block pays when `pays`.
    private func run(_ p: inout CompressionPolicy, blocks: Int, pays: Bool) -> Int {
        var tried = 0
        for _ in 0..<blocks where p.shouldTry() {
            tried += 1
            p.record(rawSize: 1000, compressedSize: pays ? 500 : nil)
        }
        return tried
    }

    func test_compressibleRun_triesEveryBlock() {
        var p = CompressionPolicy()
        XCTAssertEqual(run(&p, blocks: 1000, pays: true), 1000)
        XCTAssertFalse(p.isBackedOff)
    }

    func test_incompressibleRun_backsOffToOneInN() {
        var p = CompressionPolicy()
        let n = CompressionPolicy.probeInterval
        let k = CompressionPolicy.missesBeforeBackoff
        XCTAssertEqual(run(&p, blocks: k, pays: false), k, "tries every block until the run of misses")
        XCTAssertTrue(p.isBackedOff)
        XCTAssertEqual(run(&p, blocks: n * 10, pays: false), 10, "then one in \(n)")
        // Exactly which ones: the last block of each interval.
        var tries: [Int] = []
        for i in 0..<(2 * n) where p.shouldTry() {
            tries.append(i)
            p.record(rawSize: 1000, compressedSize: nil)
        }
        XCTAssertEqual(tries, [n - 1, 2 * n - 1])
    }

    func test_oneSuccess_resetsToEveryBlock() {
        var p = CompressionPolicy()
        _ = run(&p, blocks: 100, pays: false)
        XCTAssertTrue(p.isBackedOff)
        var skipped = 0
        while !p.shouldTry() { skipped += 1 }
        XCTAssertLessThan(skipped, CompressionPolicy.probeInterval)
        p.record(rawSize: 1000, compressedSize: 400)
        XCTAssertFalse(p.isBackedOff)
        XCTAssertEqual(p, CompressionPolicy())
        XCTAssertEqual(run(&p, blocks: 50, pays: true), 50)
        // A short run of misses (fewer than the threshold) does not back off.
        XCTAssertEqual(run(&p, blocks: CompressionPolicy.missesBeforeBackoff - 1, pays: false), CompressionPolicy.missesBeforeBackoff - 1)
        XCTAssertFalse(p.isBackedOff)
        XCTAssertEqual(run(&p, blocks: 1, pays: true), 1)
        XCTAssertEqual(p.misses, 0)
    }

    func test_pays_needsAnEighthSaved() {
        XCTAssertFalse(CompressionPolicy.pays(rawSize: 1000, compressedSize: nil))
        XCTAssertFalse(CompressionPolicy.pays(rawSize: 1000, compressedSize: 996), "a few header bytes saved is a miss")
        XCTAssertFalse(CompressionPolicy.pays(rawSize: 1000, compressedSize: 876))
        XCTAssertTrue(CompressionPolicy.pays(rawSize: 1000, compressedSize: 875))
        XCTAssertTrue(CompressionPolicy.pays(rawSize: 1000, compressedSize: 100))
        XCTAssertFalse(CompressionPolicy.pays(rawSize: 0, compressedSize: 0))
    }

    /// Through the log: random payloads back off, compressible ones are compressed again after
    /// at most one probe interval, and every message reads back as written either way.
    func test_log_backsOffOnRandomPayloads_resumesOnCompressible_readsBackAll() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 64 << 20, fsync: .never, compression: true))
        var rng = SeededRNG(seed: 11)
        var written: [NewMessage] = []
        for i in 0..<100 {
            let payload = (0..<1024).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let m = NewMessage(subject: "rand.\(i % 4)", payload: payload, timestamp: Int64(i))
            try log.append([m])
            written.append(m)
        }
        XCTAssertTrue(log.lock.withLock { log.compressionPolicy.isBackedOff })
        for i in 0..<64 {
            let m = NewMessage(subject: "json.\(i % 4)", payload: jsonPayload(i, size: 1024), timestamp: Int64(100 + i))
            try log.append([m])
            written.append(m)
        }
        XCTAssertFalse(log.lock.withLock { log.compressionPolicy.isBackedOff })
        let flags: [Bool] = try log.lock.withLock {
            try log.segments.flatMap(\.blocks).filter { $0.kind == .messages && $0.firstSeq > 100 }
                .map { try log.tail.readBlock($0).0.flags.contains(.lz4) }
        }
        XCTAssertEqual(flags.count, 64)
        let firstCompressed = try XCTUnwrap(flags.firstIndex(of: true))
        XCTAssertLessThan(firstCompressed, CompressionPolicy.probeInterval, "a probe within one interval")
        XCTAssertEqual(Array(flags[firstCompressed...]), Array(repeating: true, count: 64 - firstCompressed),
                       "every block after the probe is compressed")
        let back = try log.messages(from: StreamSequence(1), maxMessages: 1000)
        XCTAssertEqual(back.map(\.payload), written.map(\.payload))
        XCTAssertEqual(back.map(\.subject), written.map(\.subject))
        try log.close()
        let reopened = try openLog(fs, StreamLogConfig(segmentMaxBytes: 64 << 20, fsync: .never, compression: true))
        XCTAssertEqual(try reopened.messages(from: StreamSequence(1), maxMessages: 1000).map(\.payload), written.map(\.payload))
        try reopened.close()
    }
}
