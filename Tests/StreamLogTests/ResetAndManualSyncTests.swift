import XCTest
@testable import StreamLog

/// `reset(nextSequence:)` (a Raft log replaced by a snapshot) and the `.manual` fsync policy
/// (the owner makes appends durable with `sync()`).
final class ResetAndManualSyncTests: XCTestCase {
    func raftBatch(_ range: ClosedRange<UInt64>, term: UInt64) -> [NewMessage] {
        // Poorly compressible payloads so that a few batches fill several 4 KiB segments.
        range.map { i in
            var rng = SeededRNG(seed: i)
            let text = (0..<60).map { _ in String(rng.next() % 46_656, radix: 36) }.joined()
            return msg("r", text, raft: i, term: term)
        }
    }

    func test_reset_dropsEverything_andTheNextAppendGetsTheNewSequenceAndAnyRaftIndex() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, smallConfig(fsync: .manual))
        for i in stride(from: UInt64(1), through: 91, by: 10) { try log.append(raftBatch(i...(i + 9), term: 3)) }
        XCTAssertGreaterThan(log.segments.count, 2)
        try log.reset(nextSequence: StreamSequence(301))
        var st = try log.state()
        XCTAssertEqual([st.messages, st.firstSequence, st.lastSequence], [0, 301, 300])
        XCTAssertTrue(log.lastRaftEntry == (0, 0))
        XCTAssertEqual(log.segments.map(\.base), [301], "old segments removed")
        let r = try log.append(raftBatch(40...41, term: 4))  // a lower raft index than before is fine now
        XCTAssertEqual(r.firstSequence, 301)
        try log.sync()
        try log.close()
        let reopened = try openLog(fs, smallConfig(fsync: .manual))
        st = try reopened.state()
        XCTAssertEqual([st.messages, st.firstSequence, st.lastSequence], [2, 301, 302])
        XCTAssertTrue(reopened.lastRaftEntry == (41, 4))
        XCTAssertThrowsError(try reopened.reset(nextSequence: StreamSequence(302))) { error in
            guard case StreamLogError.invalidArgument = error else { return XCTFail("\(error)") }
        }
        try reopened.close()
    }

    /// A tail already named by the next sequence is kept (with the reset marker in it); records
    /// appended after the reset survive an unclean reopen that replays the marker after them.
    func test_reset_keepingTheTail_replaysMarkerWithoutLosingLaterRecords() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, smallConfig(fsync: .manual))
        try log.append(raftBatch(1...5, term: 1))
        try log.reset(nextSequence: StreamSequence(11))
        try log.reset(nextSequence: StreamSequence(11))  // tail base is 11 already
        try log.append(raftBatch(7...9, term: 2))
        try log.sync()
        var rng = SeededRNG(seed: 5)
        fs.powerLoss(using: &rng)
        try fs.remove("/data/s/state.snap")  // force a full replay
        let reopened = try openLog(fs, smallConfig(fsync: .manual))
        let st = try reopened.state()
        XCTAssertEqual([st.messages, st.firstSequence, st.lastSequence], [3, 11, 13])
        XCTAssertTrue(reopened.lastRaftEntry == (9, 2))
        try reopened.close()
    }

    /// A failure (then power loss) at any point of a reset leaves either the old log or the
    /// reset one, never a mix, and the log stays usable.
    func test_reset_interruptedAnywhere_isAllOrNothing() throws {
        let ops: [FaultyFileSystem.Operation] = [.write, .sync, .syncDirectory, .rename, .truncate]
        for (n, op) in ops.enumerated() {
            for seed in UInt64(1)...6 {
                let fs = FaultyFileSystem()
                let log = try openLog(fs, smallConfig(fsync: .manual))
                for i in stride(from: UInt64(1), through: 41, by: 10) { try log.append(raftBatch(i...(i + 9), term: 1)) }
                try log.sync()
                fs.failNext(op)
                _ = try? log.reset(nextSequence: StreamSequence(101))
                fs.clearInjectedFailures()
                var rng = SeededRNG(seed: seed &+ UInt64(n) &* 100)
                fs.powerLoss(using: &rng)
                let r = try openLog(fs, smallConfig(fsync: .manual))
                let st = try r.state()
                let ctx = "\(op) seed \(seed): \(st)"
                if st.messages == 0 {
                    XCTAssertEqual([st.firstSequence, st.lastSequence], [101, 100], ctx)
                    XCTAssertTrue(r.lastRaftEntry == (0, 0), ctx)
                } else {
                    XCTAssertEqual([st.messages, st.firstSequence, st.lastSequence], [50, 1, 50], ctx)
                    XCTAssertTrue(r.lastRaftEntry == (50, 1), ctx)
                }
                let next = try r.append([msg("r", "after", raft: 60, term: 2)])
                XCTAssertEqual(next.firstSequence, st.lastSequence + 1, ctx)
                try r.close()
            }
        }
    }

    func test_manualPolicy_appendsAreDurableOnlyAfterSync_andCallbacksFireThen() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .manual))
        let syncsBefore = fs.syncCount
        var fired = 0
        for i in 0..<5 { try log.append([msg("m", "\(i)")], onDurable: { if case .success = $0 { fired += 1 } }) }
        XCTAssertEqual(fs.syncCount, syncsBefore, "append must not fsync")
        XCTAssertEqual(fired, 0)
        try log.sync()
        XCTAssertEqual(fs.syncCount, syncsBefore + 1, "one fsync for all five")
        XCTAssertEqual(fired, 5)
        try log.sync()
        XCTAssertEqual(fs.syncCount, syncsBefore + 1, "nothing new: no fsync")
        let r = try log.append([msg("m", "waited")])
        try log.waitUntilDurable(r.ticket)  // fsyncs on the caller's thread
        try log.append([msg("m", "lost")])
        var rng = SeededRNG(seed: 1)
        fs.powerLoss(using: &rng, tear: false)
        let reopened = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .manual))
        XCTAssertGreaterThanOrEqual(try reopened.state().messages, 6)
        XCTAssertLessThanOrEqual(try reopened.state().messages, 7)
        try reopened.close()
    }

    func test_manualPolicy_failedSyncIsSticky() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .manual))
        try log.append([msg("m", "a")])
        fs.failNext(.sync)
        XCTAssertThrowsError(try log.sync())
        XCTAssertThrowsError(try log.append([msg("m", "b")]))
        XCTAssertThrowsError(try log.sync())
    }

    func test_powerLoss_handlesOpenedBeforeItAreDead() throws {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .manual))
        try log.append([msg("m", "a")])
        try log.sync()
        var rng = SeededRNG(seed: 2)
        fs.powerLoss(using: &rng)
        XCTAssertThrowsError(try log.append([msg("m", "stale writer")]))
        let reopened = try openLog(fs, StreamLogConfig(segmentMaxBytes: 1 << 20, fsync: .manual))
        XCTAssertEqual(try reopened.state().messages, 1)
        try reopened.close()
    }
}
