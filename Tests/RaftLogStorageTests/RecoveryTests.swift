import Raft
@testable import RaftLogStorage
@testable import StreamLog
import XCTest

/// Reopen, power loss (`FaultyFileSystem` drops everything not fsync'd, tearing the last
/// write) and damage: what survives, what is finished off, what is reported.
final class RecoveryTests: XCTestCase {
    func test_reopen_restoresHardStateSnapshotAndLog() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        try s.append(entries(1...40, term: 2, size: 300))
        s.setHardState(HardState(term: Term(3), vote: NodeID(2), commit: LogIndex(35)))
        try s.createSnapshot(index: LogIndex(30), conf: threeVoters, data: [4, 5, 6])
        try s.compact(upTo: LogIndex(28))
        try s.close()
        let r = try openStorage(fs, conf: ConfState())
        XCTAssertEqual(r.initialState().hardState, HardState(term: Term(3), vote: NodeID(2), commit: LogIndex(35)))
        XCTAssertEqual(r.initialState().conf, threeVoters, "bootstrap is ignored for an existing group")
        XCTAssertEqual(r.snapshot().metadata.index, LogIndex(30))
        XCTAssertEqual(r.snapshot().data, [4, 5, 6])
        XCTAssertEqual(r.firstIndex, LogIndex(29))
        XCTAssertEqual(r.lastIndex, LogIndex(40))
        XCTAssertEqual(try r.term(at: LogIndex(28)), Term(2))
        XCTAssertEqual(try r.entries(from: LogIndex(29), to: LogIndex(41), maxBytes: .max), entries(29...40, term: 2, size: 300))
        try r.close()
    }

    func test_powerLoss_dropsUnsyncedAppends_keepsSyncedOnes_andNeverLosesSyncedTermOrVote() throws {
        for seed in UInt64(1)...30 {
            var rng = SeededRNG(seed: seed)
            let fs = FaultyFileSystem()
            let s = try openStorage(fs)
            try s.append(entries(1...20, term: 1))
            s.setHardState(HardState(term: Term(4), vote: NodeID(3), commit: LogIndex(5)))
            try s.sync()
            try s.append(entries(21...(21 + UInt64.random(in: 0...30, using: &rng)), term: 4))
            s.setHardState(HardState(term: Term(5), vote: nil, commit: LogIndex(10)))  // never synced
            fs.powerLoss(using: &rng)
            let r = try openStorage(fs)
            XCTAssertEqual(r.hardState.term, Term(4), "seed \(seed)")
            XCTAssertEqual(r.hardState.vote, NodeID(3), "seed \(seed)")
            XCTAssertGreaterThanOrEqual(r.lastIndex, LogIndex(20), "seed \(seed): synced entries lost")
            // Whatever survived of the unsynced batch is an exact prefix of it.
            let got = try r.entries(from: LogIndex(1), to: r.lastIndex.next, maxBytes: .max)
            XCTAssertEqual(got, Array((entries(1...20, term: 1) + entries(21...60, term: 4)).prefix(got.count)), "seed \(seed)")
            try r.append(entries(r.lastIndex.next.rawValue...(r.lastIndex.rawValue + 3), term: 6))
            try r.sync()
            try r.close()
        }
    }

    func test_tornTail_isCutAndTheLogContinues() throws {
        var torn = 0
        for seed in UInt64(1)...20 {
            let fs = FaultyFileSystem()
            let s = try openStorage(fs)
            try s.append(entries(1...3, term: 1, size: 50))
            try s.sync()
            try s.append(entries(4...4, term: 1, size: 3000))
            var rng = SeededRNG(seed: seed)
            fs.powerLoss(using: &rng)
            let r = try openStorage(fs)
            if r.recoveryReport.truncatedTail != nil { torn += 1 }
            XCTAssertTrue(r.lastIndex == LogIndex(3) || r.lastIndex == LogIndex(4), "seed \(seed)")
            try r.append([entry(r.lastIndex.next.rawValue, 2)])
            try r.sync()
            XCTAssertEqual(try r.term(at: r.lastIndex), Term(2))
            try r.close()
        }
        XCTAssertGreaterThan(torn, 0, "no seed tore the tail")
    }

    func test_bitFlipInSealedSegment_isReportedNotSkipped() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        for i in stride(from: UInt64(1), through: 200, by: 10) { try s.append(entries(i...(i + 9), term: 1, size: 100)) }
        try s.close()
        let seg = "\(testDir)/log/" + String(repeating: "0", count: 19) + "1.seg"
        XCTAssertNotNil(fs.fileSize(seg))
        fs.flipBit(path: seg, byteOffset: 200)
        try fs.remove(seg.replacingOccurrences(of: ".seg", with: ".idx"))
        XCTAssertThrowsError(try openStorage(fs)) { error in
            guard case RaftLogStorageError.corrupt = error else { return XCTFail("\(error)") }
        }
    }

    /// Open reads only the newest entries; older terms come from the log on demand, and damage
    /// there is reported by the read that meets it (never skipped).
    func test_partialScanOnOpen_readsOlderTermsFromTheLog_andReportsDamageThere() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        for i in stride(from: UInt64(1), through: 291, by: 10) { try s.append(entries(i...(i + 9), term: 1 + i / 100, size: 100)) }
        try s.close()
        var r = try openStorage(fs, scanEntries: 10)
        for i in [1, 99, 100, 101, 250, 291, 300] as [UInt64] { XCTAssertEqual(try r.term(at: LogIndex(i)), Term(1 + (i - 1) / 10 * 10 / 100)) }
        try r.close()
        let seg = "\(testDir)/log/" + String(repeating: "0", count: 19) + "1.seg"
        fs.flipBit(path: seg, byteOffset: 900)  // inside the second block (entries 11-20)
        r = try openStorage(fs, scanEntries: 10)
        XCTAssertThrowsError(try r.term(at: LogIndex(15))) { error in
            guard case RaftLogStorageError.corrupt = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try r.entries(from: LogIndex(1), to: LogIndex(25), maxBytes: .max))
        XCTAssertEqual(try r.term(at: LogIndex(2)), Term(1))
        XCTAssertEqual(try r.term(at: LogIndex(300)), Term(3), "the rest of the log stays readable")
        try r.close()
    }

    func test_missingSegment_isAGapError() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        for i in stride(from: UInt64(1), through: 300, by: 10) { try s.append(entries(i...(i + 9), term: 1, size: 100)) }
        try s.close()
        let segs = try fs.list("\(testDir)/log").filter { $0.hasSuffix(".seg") }.sorted()
        XCTAssertGreaterThan(segs.count, 3)
        try fs.remove("\(testDir)/log/\(segs[1])")
        try fs.remove("\(testDir)/log/state.snap")
        XCTAssertThrowsError(try openStorage(fs)) { error in
            XCTAssertTrue(error is RaftLogStorageError, "\(error)")
        }
    }

    func test_damagedStateFile_isReported() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        try s.append(entries(1...3, term: 1))
        s.setHardState(HardState(term: Term(2), vote: NodeID(1), commit: .zero))
        try s.close()
        fs.flipBit(path: "\(testDir)/raft.state", byteOffset: 6)
        XCTAssertThrowsError(try openStorage(fs)) { error in
            XCTAssertEqual(error as? RaftLogStorageError, .corrupt("raft.state is damaged"))
        }
    }

    /// A crash inside `applySnapshot` after the snapshot file is durable: with the log only
    /// truncated, or reset but `raft.state` not yet rewritten. Open finishes the replacement.
    func test_crashInsideApplySnapshot_isFinishedOnOpen() throws {
        for stage in ["truncated", "reset"] {
            let fs = FaultyFileSystem()
            let s = try openStorage(fs)
            try s.append(entries(1...30, term: 1, size: 200))
            try s.sync()
            let snap = Snapshot(metadata: SnapshotMetadata(index: LogIndex(20), term: Term(3), conf: threeVoters), data: [1])
            try StateFiles.writeAtomically(fs, directory: testDir, name: StateFiles.snapshotName, bytes: StateFiles.encode(snap))
            try s.log.truncate(after: StreamSequence(20))
            if stage == "reset" { try s.log.reset(nextSequence: StreamSequence(21)) }
            var rng = SeededRNG(seed: 11)
            fs.powerLoss(using: &rng)
            let r = try openStorage(fs)
            XCTAssertEqual(r.snapshot(), snap, stage)
            XCTAssertEqual(r.firstIndex, LogIndex(21), stage)
            XCTAssertEqual(r.lastIndex, LogIndex(20), stage)
            XCTAssertEqual(try r.term(at: LogIndex(20)), Term(3), stage)
            try r.append(entries(21...22, term: 4))
            try r.close()
            let again = try openStorage(fs)
            XCTAssertEqual(again.lastIndex, LogIndex(22), stage)
            XCTAssertEqual(try again.term(at: LogIndex(20)), Term(3), stage)
            try again.close()
        }
    }

    /// The snapshot file is durable but the log was not reset (crash right after it): the log
    /// holding the snapshot's (index, term) is kept; a log that does not is replaced.
    func test_snapshotNewerThanLog_keepsAMatchingLog_replacesAStaleOne() throws {
        for matching in [true, false] {
            let fs = FaultyFileSystem()
            let s = try openStorage(fs)
            try s.append(entries(1...30, term: 2))
            try s.close()
            let snap = Snapshot(metadata: SnapshotMetadata(index: LogIndex(20), term: Term(matching ? 2 : 5), conf: threeVoters))
            try StateFiles.writeAtomically(fs, directory: testDir, name: StateFiles.snapshotName, bytes: StateFiles.encode(snap))
            let r = try openStorage(fs)
            XCTAssertEqual(r.lastIndex, LogIndex(matching ? 30 : 20))
            XCTAssertEqual(try r.term(at: LogIndex(20)), Term(matching ? 2 : 5))
            try r.close()
        }
    }

    /// A compaction renames the segments it drops; `backgroundJob` removes them off the owner's
    /// thread, and `close` removes any it did not get to.
    func test_compaction_leavesDroppedSegmentsToTheBackgroundJob() throws {
        let fs = FaultyFileSystem()
        let dropped = { try fs.list(testDir + "/log").filter { $0.hasSuffix(".dropped") } }
        let s = try openStorage(fs)
        for i in UInt64(1)...60 { try s.append([entry(i, 1, size: 200)]) }  // one block each: 4 KiB segments fill
        try s.createSnapshot(index: LogIndex(50), conf: threeVoters, data: [])
        try s.compact(upTo: LogIndex(30))
        XCTAssertFalse(try dropped().isEmpty)
        try XCTUnwrap(s.backgroundJob())()
        XCTAssertEqual(try dropped(), [])
        try s.compact(upTo: LogIndex(50))
        XCTAssertFalse(try dropped().isEmpty)
        try s.close()
        XCTAssertEqual(try dropped(), [])
        let r = try openStorage(fs)
        XCTAssertEqual(r.firstIndex, LogIndex(51))
        XCTAssertEqual(r.lastIndex, LogIndex(60))
        try r.close()
    }

    /// A close whose flush fails (here the log's fsync) still closes the log and throws: left
    /// open, the log would live on beside the one its group reopens on the same files.
    func test_closeWithAFailingFlush_stillClosesTheLog() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        try s.append(entries(1...5, term: 1))
        s.setHardState(HardState(term: Term(1), vote: NodeID(1), commit: LogIndex(5)))
        fs.failNext(.sync)
        XCTAssertThrowsError(try s.close())
        XCTAssertTrue(s.log.lock.withLock { s.log.isClosed }, "the log was left open")
        XCTAssertThrowsError(try s.append(entries(6...6, term: 1)), "a closed storage takes no appends")
        let r = try openStorage(fs)
        XCTAssertEqual(r.lastIndex, LogIndex(5))
        try r.close()
    }

    /// A compaction recorded in `raft.state` whose log compaction did not happen.
    func test_crashInsideCompact_isFinishedOnOpen() throws {
        let fs = FaultyFileSystem()
        let s = try openStorage(fs)
        try s.append(entries(1...50, term: 1, size: 200))
        try s.createSnapshot(index: LogIndex(40), conf: threeVoters, data: [])
        try s.sync()
        // What `compact` writes first; the crash comes before the log's floor marker.
        let st = PersistentState(hardState: HardState(), compactedIndex: LogIndex(35), compactedTerm: Term(1))
        try StateFiles.writeAtomically(fs, directory: testDir, name: StateFiles.stateName, bytes: StateFiles.encode(st))
        var rng = SeededRNG(seed: 3)
        fs.powerLoss(using: &rng)
        let r = try openStorage(fs)
        XCTAssertEqual(r.firstIndex, LogIndex(36))
        XCTAssertEqual(try r.term(at: LogIndex(35)), Term(1))
        XCTAssertEqual(r.lastIndex, LogIndex(50))
        try r.close()
    }

    /// Seeded random operations with power losses at random points against a model: after each
    /// loss the log is the durable prefix plus possibly some of what was appended after it,
    /// term/vote/snapshot/compaction are exactly as last made durable.
    func test_randomOperations_withPowerLosses_keepEverythingDurable() throws {
        for seed in UInt64(1)...40 {
            var rng = SeededRNG(seed: seed)
            let fs = FaultyFileSystem()
            var d = try openStorage(fs)
            let model = MemoryStorage(conf: threeVoters)
            var durableLast = LogIndex.zero
            var durableHS = HardState()
            var term: UInt64 = 1
            for step in 0..<80 {
                let ctx = "seed \(seed) step \(step)"
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<50:
                    if Int.random(in: 0..<5, using: &rng) == 0 { term += 1 }
                    let lo = max(model.firstIndex.rawValue, durableHS.commit.rawValue + 1, model.snapshot().metadata.index.rawValue + 1)
                    let hi = model.lastIndex.rawValue + 1
                    let from = Int.random(in: 0..<4, using: &rng) == 0 && lo <= hi ? UInt64.random(in: lo...hi, using: &rng) : hi
                    let batch = (from..<(from + UInt64.random(in: 1...8, using: &rng))).map { entry($0, term, size: Int.random(in: 1...300, using: &rng)) }
                    if batch[0].index <= model.lastIndex { durableLast = min(durableLast, batch[0].index.prev) }
                    try model.append(batch)
                    try d.append(batch)
                case 50..<65:
                    let hs = HardState(term: Term(term), vote: NodeID(UInt64.random(in: 1...3, using: &rng)), commit: model.lastIndex)
                    model.setHardState(hs)
                    d.setHardState(hs)
                    try d.sync()
                    durableLast = model.lastIndex
                    durableHS = hs
                case 65..<72:
                    let si = model.snapshot().metadata.index
                    if model.lastIndex > si {
                        let i = LogIndex(UInt64.random(in: (si.rawValue + 1)...model.lastIndex.rawValue, using: &rng))
                        try model.createSnapshot(index: i, conf: threeVoters, data: [UInt8(step)])
                        try d.createSnapshot(index: i, conf: threeVoters, data: [UInt8(step)])
                        // The snapshot refers to entries that must survive: make them durable first, as a driver
                        // snapshots only applied (hence synced) entries.
                        try d.sync()
                        durableLast = model.lastIndex
                    }
                case 72..<78:
                    let si = model.snapshot().metadata.index
                    if si > model.firstIndex {
                        let i = LogIndex(UInt64.random(in: model.firstIndex.rawValue...si.rawValue, using: &rng))
                        try model.compact(upTo: i)
                        try d.compact(upTo: i)
                        durableLast = model.lastIndex  // compaction syncs the log first
                        // Dropped segments become spares, which later tails take over: the
                        // power losses then also meet recycled files.
                        d.backgroundJob()?()
                    }
                case 78..<82:
                    term += 1
                    let i = LogIndex(max(model.snapshot().metadata.index.rawValue, durableHS.commit.rawValue) + UInt64.random(in: 1...20, using: &rng))
                    let snap = Snapshot(metadata: SnapshotMetadata(index: i, term: Term(term), conf: threeVoters), data: [2])
                    try model.applySnapshot(snap)
                    try d.applySnapshot(snap)
                    durableLast = i
                default:
                    fs.powerLoss(using: &rng)
                    d = try openStorage(fs, scanEntries: seed % 2 == 0 ? 5 : 65_536)
                    XCTAssertEqual(d.hardState.term, durableHS.term, ctx)
                    XCTAssertEqual(d.hardState.vote, durableHS.vote, ctx)
                    XCTAssertEqual(d.snapshot(), model.snapshot(), ctx)
                    XCTAssertEqual(d.firstIndex, model.firstIndex, ctx)
                    XCTAssertGreaterThanOrEqual(d.lastIndex, durableLast, ctx + ": durable entries lost")
                    XCTAssertLessThanOrEqual(d.lastIndex, model.lastIndex, ctx)
                    // What survived equals what was written; the model forgets the rest, as Raft would.
                    let got = try d.entries(from: d.firstIndex, to: d.lastIndex.next, maxBytes: .max)
                    XCTAssertEqual(got, try model.entries(from: d.firstIndex, to: d.lastIndex.next, maxBytes: .max), ctx)
                    try model.truncate(after: d.lastIndex)
                    durableLast = d.lastIndex
                }
                if !assertSameView(model, d, ctx) { break }
            }
            try d.close()
        }
    }
}
