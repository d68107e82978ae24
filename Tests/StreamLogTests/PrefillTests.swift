import Foundation
import XCTest
@testable import StreamLog

/// `StreamLog.prefillJob`: the next step of zeros written off the appending thread, and every
/// operation that writes or cuts the tail at or past the filled space waits for a fill in flight.
final class PrefillTests: XCTestCase {
    private let path = "/data/s/" + Segment.fileName(base: 1)
    private let step: UInt64 = 64 << 10

    private func config() -> StreamLogConfig {
        StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always, compression: false, preallocateBytes: step)
    }

    private static func text(_ i: Int) -> String { "\(i)-" + String(repeating: "x", count: 1000) }
    private func kilobyte(_ i: Int) -> NewMessage { msg("k.\(i % 3)", Self.text(i)) }
    /// What a log holds, compactly: each message's text shortened to its number and length.
    private func contents(_ log: StreamLog) throws -> [String] {
        try log.messages(from: StreamSequence(1), maxMessages: 100).map { m in
            let t = payloadText(m) ?? ""
            return "\(t.prefix { $0 != "-" })/\(t.count)"
        }
    }
    private func contents(_ range: ClosedRange<Int>) -> [String] { range.map { "\($0)/\(Self.text($0).count)" } }

    /// Runs fills until none is due: at least half a step of zeros is then ahead of the appends.
    private func fillAhead(_ log: StreamLog) {
        for _ in 0..<20 {
            guard let job = log.prefillJob() else { return }
            job()
        }
        XCTFail("fills never stopped being due")
    }

    func test_fillsAhead_soAppendsWithinItNeverGrowTheFile() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config())
        try log.appendAndWait([kilobyte(0)])
        let job = try XCTUnwrap(log.prefillJob(), "less than half a step is filled: a fill is due")
        XCTAssertNil(log.prefillJob(), "one fill at a time")
        job()
        fillAhead(log)
        let (size, allocated) = log.lock.withLock { (log.tail.size, log.tail.allocated) }
        XCTAssertGreaterThanOrEqual(allocated - size, step / 2)
        XCTAssertEqual(UInt64(fs.fileSize(path)!), allocated, "the file holds the zeros")
        XCTAssertNil(log.prefillJob(), "half a step or more is left")

        for i in 1...20 { try log.appendAndWait([kilobyte(i)]) }
        XCTAssertEqual(UInt64(fs.fileSize(path)!), allocated, "appends inside the filled space wrote no zeros")
        try log.close()
        let reopened = try openLog(fs, config())
        XCTAssertNil(reopened.recoveryReport.truncatedTail)
        XCTAssertEqual(try contents(reopened), contents(0...20))
    }

    func test_theFillSyncsItsZeros_andAFailedSyncFailsTheLog() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config())
        try log.appendAndWait([kilobyte(0)])
        let job = try XCTUnwrap(log.prefillJob())
        // This fsync may be the one the kernel reports an earlier write-back error to.
        fs.failNext(.sync, count: 1)
        job()
        XCTAssertThrowsError(try log.append([kilobyte(1)]), "the log failed with the fill's fsync")
        XCTAssertThrowsError(try log.sync())
    }

    /// A fill is taken but not run; `operation` starts on another thread and must wait for it
    /// (`fillWaits`) before touching the tail. Then the fill runs, the operation finishes, and
    /// the reopened log holds exactly `expected`: zeros written after the operation would
    /// overwrite its data, or leave zeros in a sealed segment.
    private func assertWaitsForAFillInFlight(_ name: String, expected: ClosedRange<Int>,
                                             _ operation: @escaping @Sendable (StreamLog) throws -> Void) throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config())
        for i in 0...5 { try log.appendAndWait([kilobyte(i)]) }
        let job = try XCTUnwrap(log.prefillJob())
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        let logRef = log
        Thread.detachNewThread {
            do { try operation(logRef) } catch { outcome.error = error }
            done.signal()
        }
        var polls = 0
        while log.lock.withLock({ log.fillWaits }) == 0 && polls < 5_000 {
            usleep(1_000)
            polls += 1
        }
        XCTAssertEqual(log.lock.withLock { log.fillWaits }, 1, "\(name) did not wait for the fill")
        job()
        done.wait()
        XCTAssertNil(outcome.error, name)
        try? log.close()
        let reopened = try openLog(fs, config())
        XCTAssertNil(reopened.recoveryReport.truncatedTail, name)
        XCTAssertEqual(reopened.recoveryReport.corruptions, [], name)
        XCTAssertEqual(try contents(reopened), contents(expected), name)
    }

    /// Written by the operation's thread before it signals, read after the wait.
    private final class Outcome: @unchecked Sendable { var error: Error? }

    func test_anAppendReachingTheFill_waitsForIt() throws {
        try assertWaitsForAFillInFlight("append", expected: 0...30) { log in
            try log.appendAndWait((6...30).map { msg("k.\($0 % 3)", PrefillTests.text($0)) })
        }
    }

    func test_aTruncation_waitsForIt() throws {
        try assertWaitsForAFillInFlight("truncate", expected: 0...2) { log in
            try log.truncate(after: StreamSequence(3))
        }
    }

    func test_close_waitsForIt() throws {
        try assertWaitsForAFillInFlight("close", expected: 0...5) { log in try log.close() }
    }
}
