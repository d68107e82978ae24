import Foundation
import XCTest
@testable import StreamLog

/// Finding 16 (docs/chaos.md): a store whose first segment lost its bytes (0 bytes long) while
/// later segments hold valid blocks.
final class LostFirstSegmentTests: XCTestCase {
    func test_open_withAnEmptiedFirstSegment_keepsTheLaterSegmentsMessages() throws {
        let dir = NSTemporaryDirectory() + "lostfirst-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = StreamLogConfig(segmentMaxBytes: 4096, fsync: .manual, compression: true, limits: RetentionLimits())
        let log = try StreamLog.open(directory: dir, config: config, clock: { 1 })
        for i in 0..<300 { try log.append([msg("a.\(i % 3)", "message \(i) padding padding padding")]) }
        try log.sync()
        try log.close()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertGreaterThan(names.filter { $0.hasSuffix(".seg") }.count, 2)
        let first = dir + "/" + names.first(where: { $0.hasSuffix(".seg") })!
        XCTAssertEqual(truncate(first, 0), 0)
        let reopened: StreamLog
        do { reopened = try StreamLog.open(directory: dir, config: config, clock: { 1 }) } catch { XCTFail("open: \(error)"); return }
        let st = try reopened.state()
        XCTAssertEqual(st.lastSequence, 300)
        XCTAssertGreaterThan(st.messages, 0, "later segments' messages were dropped")
        let all = try reopened.messages(from: StreamSequence(1), maxMessages: 10_000)
        XCTAssertEqual(all.first?.sequence.rawValue, st.firstSequence)
        XCTAssertEqual(all.last?.sequence.rawValue, 300)
        XCTAssertEqual(UInt64(all.count), 300 - st.firstSequence + 1)
        // Not silent: the lost sequences are reported (a replica then copies from its leader).
        XCTAssertEqual(reopened.recoveryReport.corruptions.first?.sequences, 1...(st.firstSequence - 1))
    }
}
