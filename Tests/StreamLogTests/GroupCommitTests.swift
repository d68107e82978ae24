import XCTest
@testable import StreamLog

final class GroupCommitTests: XCTestCase {
    func test_concurrentAppenders_shareFsyncs_andAllBecomeDurable() throws {
        let fs = FaultyFileSystem()
        fs.syncDelayNanos = 2_000_000
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        let syncsBefore = fs.syncCount
        let threads = 16, perThread = 10
        let group = DispatchGroup()
        let errors = ErrorBox()
        for t in 0..<threads {
            group.enter()
            Thread {
                for i in 0..<perThread {
                    do { try log.appendAndWait([msg("g.\(t)", "\(i)")]) } catch { errors.add(error) }
                }
                group.leave()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertTrue(errors.all.isEmpty, "\(errors.all)")
        let syncs = fs.syncCount - syncsBefore
        XCTAssertEqual(try log.state().messages, UInt64(threads * perThread))
        XCTAssertLessThan(syncs, threads * perThread / 2, "fsyncs were not shared: \(syncs)")
        // Everything acknowledged survives a power cut.
        var rng = SeededRNG(seed: 3)
        fs.powerLoss(using: &rng)
        fs.syncDelayNanos = 0
        let reopened = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        XCTAssertEqual(try reopened.state().messages, UInt64(threads * perThread))
        try reopened.close()
    }

    func test_onDurable_callbacksFireAfterFsync_inTicketOrder() throws {
        let fs = FaultyFileSystem()
        fs.syncDelayNanos = 1_000_000
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .always))
        let done = ErrorBox()
        let all = DispatchSemaphore(value: 0)
        var order: [UInt64] = []
        let orderLock = NSLock()
        for i in 0..<20 {
            let r = try log.append([msg("cb", "\(i)")], onDurable: { result in
                if case .failure(let e) = result { done.add(e) }
                orderLock.lock(); order.append(UInt64(i)); orderLock.unlock()
                all.signal()
            })
            XCTAssertEqual(r.firstSequence, UInt64(i + 1))
        }
        for _ in 0..<20 { XCTAssertEqual(all.wait(timeout: .now() + 10), .success) }
        XCTAssertTrue(done.all.isEmpty)
        XCTAssertEqual(order, (0..<20).map(UInt64.init))
        try log.close()
    }

    func test_intervalPolicy_completesWithinInterval() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .interval(nanoseconds: 5_000_000)))
        let r = try log.append([msg("i", "1")])
        try log.waitUntilDurable(r.ticket)
        XCTAssertGreaterThanOrEqual(fs.syncCount, 1)
        try log.close()
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func add(_ e: Error) { lock.lock(); errors.append(e); lock.unlock() }
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return errors }
}
