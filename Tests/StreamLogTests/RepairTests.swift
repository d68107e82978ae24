import Foundation
import XCTest
@testable import StreamLog

/// `damage(inSegment:)` and `repairSegment(base:with:)`: a damaged sealed segment is rebuilt
/// from its readable blocks plus the lost messages fetched from a peer, keeping deletions.
final class RepairTests: XCTestCase {
    /// 40 batches of 3 (blocks of 3 messages over many 4 KiB segments); seqs 50 and 52 deleted.
    private func fill(_ log: StreamLog) throws {
        for b in 0..<40 {
            try log.append((0..<3).map { k in
                msg("s.\((b * 3 + k) % 5)", "payload-\(b * 3 + k + 1)-" + String(repeating: "x", count: 60),
                    ts: 1_700_000_000_000_000_000 + Int64(b * 3 + k), raft: UInt64(b * 3 + k + 1), term: 2)
            })
        }
        XCTAssertTrue(try log.delete(StreamSequence(50)))
        XCTAssertTrue(try log.delete(StreamSequence(52)))
        for b in 40..<60 { try log.append([msg("s.\(b % 5)", "payload-tail-\(b)", raft: UInt64(200 + b), term: 2)]) }
    }

    /// The same `fill` in a log on `config` (the one a test damages) and in a peer replica's.
    private func filledPair(_ config: StreamLogConfig = smallConfig()) throws -> (FaultyFileSystem, StreamLog, StreamLog) {
        let fs = FaultyFileSystem()
        let log = try openLog(fs, config)
        let peer = try openLog(FaultyFileSystem())
        try fill(log)
        try fill(peer)
        return (fs, log, peer)
    }

    /// The same messages as a peer replica holds them (what the owner fetches).
    private func peerMessages(_ seqs: [ClosedRange<UInt64>], from peer: StreamLog) throws -> [StoredMessage] {
        var out: [StoredMessage] = []
        for r in seqs {
            for s in r { if let m = try peer.message(StreamSequence(s)) { out.append(m) } }
        }
        return out
    }

    private func assertSameLive(_ log: StreamLog, _ peer: StreamLog, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try log.state(perSubject: true), b = try peer.state(perSubject: true)
        XCTAssertEqual(a.messages, b.messages, file: file, line: line)
        XCTAssertEqual(a.firstSequence, b.firstSequence, file: file, line: line)
        XCTAssertEqual(a.lastSequence, b.lastSequence, file: file, line: line)
        XCTAssertEqual(a.subjects, b.subjects, file: file, line: line)
        for s in 1...b.lastSequence {
            let x = try log.message(StreamSequence(s)), y = try peer.message(StreamSequence(s))
            XCTAssertEqual(x?.subject, y?.subject, "seq \(s)", file: file, line: line)
            XCTAssertEqual(x?.payload, y?.payload, "seq \(s)", file: file, line: line)
            XCTAssertEqual(x?.timestamp, y?.timestamp, "seq \(s)", file: file, line: line)
        }
    }

    /// The sealed segment holding `seq` and its message block holding it.
    private func blockHolding(_ seq: UInt64, in log: StreamLog) throws -> (Segment, BlockRef) {
        let seg = try XCTUnwrap(log.segments.dropLast().last { $0.base <= seq })
        let ref = try XCTUnwrap(seg.blocks.first { $0.kind == .messages && $0.firstSeq <= seq && seq <= $0.lastSeq })
        return (seg, ref)
    }

    func test_repair_refetchesOnlyTheDamagedBlocksLiveMessages_andDeletedOnesStayDeleted() throws {
        var (fs, log, peer) = try filledPair()
        let (seg, ref) = try blockHolding(50, in: log)
        XCTAssertEqual(ref.firstSeq...ref.lastSeq, 49...51)
        try log.close()
        fs.flipBit(path: seg.path, byteOffset: Int(ref.offset) + 70, bit: 3)
        log = try openLog(fs)

        XCTAssertThrowsError(try log.message(StreamSequence(49)), "corrupt bytes are never served")
        let bad = try XCTUnwrap(try log.verifySegment(base: seg.base))
        XCTAssertEqual(log.sealedSegmentBase(ofPath: bad.segment), seg.base)
        XCTAssertNil(log.sealedSegmentBase(ofPath: log.segments.last!.path), "the tail is never rebuilt")
        let damage = try XCTUnwrap(try log.damage(inSegment: seg.base))
        XCTAssertEqual(damage.missing, [49...49, 51...51], "50 was deleted: not fetched")
        XCTAssertEqual(damage.badBlocks, 1)
        XCTAssertFalse(damage.tombstonesLost)
        XCTAssertNil(try log.damage(inSegment: log.segments[log.segments.count - 2].base), "sound segments report nothing")

        let fetched = try peerMessages(damage.missing, from: peer)
        XCTAssertEqual(try log.repairSegment(base: seg.base, with: fetched), 2)
        XCTAssertNil(try log.verifySegment(base: seg.base))
        XCTAssertNil(try log.damage(inSegment: seg.base))
        XCTAssertNil(try log.message(StreamSequence(50)))
        try assertSameLive(log, peer)

        // The rebuilt segment survives a reopen, and a replay without the state snapshot.
        try log.close()
        log = try openLog(fs)
        try assertSameLive(log, peer)
        try log.close()
        try fs.remove("/data/s/" + StateSnapshot.fileName)
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.fullReplay)
        try assertSameLive(log, peer)
        XCTAssertEqual(log.lastRaftEntry.index, try peer.message(StreamSequence(try peer.state().lastSequence))?.raftIndex)
        try log.close()
        try peer.close()
    }

    /// A bad block a read meets in the *tail* of a running log: sealing the tail makes it a
    /// sealed segment that is repaired the same way, and appends go on in a new tail.
    func test_repair_ofTheTail_afterSealingIt_whileTheLogRuns() throws {
        var (fs, log, peer) = try filledPair()
        let tail = try XCTUnwrap(log.segments.last)
        let ref = try XCTUnwrap(tail.blocks.first { $0.kind == .messages && $0 != tail.blocks.last })
        XCTAssertNil(log.sealedSegmentBase(ofPath: tail.path))
        XCTAssertNil(try log.sealTail(ifAt: log.segments.first!.path), "only the tail's own path seals it")
        fs.flipBit(path: tail.path, byteOffset: Int(ref.offset) + 40, bit: 5)
        _ = try log.message(StreamSequence(1)) // another block, so the damaged one is read from disk
        var found: CorruptRange?
        do { _ = try log.message(StreamSequence(ref.firstSeq)) } catch StreamLogError.corrupt(let r) { found = r }
        let bad = try XCTUnwrap(found, "corrupt bytes are never served")
        XCTAssertEqual(bad.segment, tail.path)

        XCTAssertEqual(try log.sealTail(ifAt: bad.segment), tail.base)
        XCTAssertEqual(log.sealedSegmentBase(ofPath: bad.segment), tail.base)
        XCTAssertNotEqual(log.segments.last?.path, tail.path, "appends go to a new tail")
        let damage = try XCTUnwrap(try log.damage(inSegment: tail.base))
        XCTAssertEqual(damage.missing, [ref.firstSeq...ref.lastSeq])
        XCTAssertEqual(try log.repairSegment(base: tail.base, with: try peerMessages(damage.missing, from: peer)),
                       Int(ref.lastSeq - ref.firstSeq + 1))
        XCTAssertNil(try log.verifySegment(base: tail.base))
        try assertSameLive(log, peer)

        for l in [log, peer] { try l.append([msg("s.after", "after-the-repair", raft: 400, term: 3)]) }
        try assertSameLive(log, peer)
        try log.close()
        log = try openLog(fs)
        try assertSameLive(log, peer)
        // Sealing a sound tail only starts a new one.
        XCTAssertNotNil(try log.sealTail(ifAt: log.segments.last!.path))
        for l in [log, peer] { try l.append([msg("s.after", "after-a-second-seal", raft: 401, term: 3)]) }
        try assertSameLive(log, peer)
        try log.close()
        log = try openLog(fs)
        try assertSameLive(log, peer)
        try log.close()
        try peer.close()
    }

    /// A delete replayed at open whose message sits in the damaged block (its subject and size
    /// are unreadable) is not fetched, and the repair counts it as deleted.
    func test_repair_appliesADeleteWhoseMessageWasInTheDamagedBlock() throws {
        var (fs, log, peer) = try filledPair(smallConfig(fsync: .manual))
        let (seg, ref) = try blockHolding(49, in: log)
        // After the last snapshot, so the reopen replays it: it needs 49's record.
        XCTAssertTrue(try log.delete(StreamSequence(49)))
        XCTAssertTrue(try peer.delete(StreamSequence(49)))
        try log.sync()
        var rng = SeededRNG(seed: 5)
        fs.powerLoss(using: &rng, tear: false)
        fs.flipBit(path: seg.path, byteOffset: Int(ref.offset) + 70, bit: 3)
        log = try openLog(fs)
        XCTAssertFalse(log.recoveryReport.fullReplay)
        XCTAssertEqual(log.unresolvedDeletes, [49])
        let damage = try XCTUnwrap(try log.damage(inSegment: seg.base))
        XCTAssertEqual(damage.missing, [51...51], "49 and 50 are deleted: no peer has them")
        XCTAssertEqual(try log.repairSegment(base: seg.base, with: try peerMessages(damage.missing, from: peer)), 1)
        XCTAssertNil(try log.message(StreamSequence(49)))
        try assertSameLive(log, peer)
        try log.close()
        log = try openLog(fs)
        try assertSameLive(log, peer)
        try log.close()
        try peer.close()
    }

    /// Opened by replaying every block past a damaged one, the log cannot tell which of its
    /// messages were live: it refuses a range repair (the owner copies everything instead).
    func test_repair_isRefused_whenTheLiveSetWasReplayedPastDamage() throws {
        let fs = FaultyFileSystem()
        var log = try openLog(fs)
        try fill(log)
        let (seg, ref) = try blockHolding(20, in: log)
        try log.close()
        fs.flipBit(path: seg.path, byteOffset: Int(ref.offset) + 70, bit: 3)
        try fs.remove("/data/s/" + StateSnapshot.fileName)
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.fullReplay)
        XCTAssertFalse(log.recoveryReport.corruptions.isEmpty)
        XCTAssertThrowsError(try log.damage(inSegment: seg.base))
        XCTAssertThrowsError(try log.repairSegment(base: seg.base, with: []))
        try log.close()
    }

    func test_repair_refusesAnIncompleteFetch_andLeavesTheSegmentAsItWas() throws {
        var (fs, log, peer) = try filledPair()
        let (seg, ref) = try blockHolding(10, in: log)
        try log.close()
        fs.flipBit(path: seg.path, byteOffset: Int(ref.offset) + 80, bit: 1)
        log = try openLog(fs)
        let damage = try XCTUnwrap(try log.damage(inSegment: seg.base))
        XCTAssertEqual(damage.missingCount, 3)
        let partial = Array(try peerMessages(damage.missing, from: peer).dropLast())
        XCTAssertThrowsError(try log.repairSegment(base: seg.base, with: partial)) { error in
            guard case .invalidArgument? = error as? StreamLogError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try log.damage(inSegment: seg.base), damage)
        XCTAssertEqual(try log.repairSegment(base: seg.base, with: try peerMessages(damage.missing, from: peer)), 3)
        try assertSameLive(log, peer)
        XCTAssertEqual(try log.repairSegment(base: 999_999, with: []), 0, "a segment that is gone needs nothing")
        try log.close()
        try peer.close()
    }

    /// Damage an index rebuild skipped at open (no entry in the block table) is found and
    /// repaired the same way.
    func test_repair_ofBytesSkippedByAnIndexRebuild() throws {
        var (fs, log, peer) = try filledPair()
        let (seg, ref) = try blockHolding(20, in: log)
        try log.close()
        fs.flipBit(path: seg.path, byteOffset: Int(ref.offset) + 2, bit: 0) // the block's magic
        try fs.remove(seg.indexPath)
        log = try openLog(fs)
        let reported = try XCTUnwrap(log.recoveryReport.corruptions.first)
        let base = try XCTUnwrap(log.sealedSegmentBase(ofPath: reported.segment))
        XCTAssertEqual(base, seg.base)
        let damage = try XCTUnwrap(try log.damage(inSegment: base))
        XCTAssertEqual(damage.missing, [ref.firstSeq...ref.lastSeq])
        XCTAssertTrue(damage.tombstonesLost, "skipped bytes may have held delete markers")
        try log.repairSegment(base: base, with: try peerMessages(damage.missing, from: peer))
        try assertSameLive(log, peer)
        try log.close()
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.corruptions.isEmpty)
        try assertSameLive(log, peer)
        try log.close()
        try peer.close()
    }

    /// A lost block of delete markers: nothing to fetch, the markers are rebuilt from the state,
    /// so a replay without the snapshot still sees the deletions.
    func test_repair_ofALostDeleteMarkerBlock_keepsTheDeletions() throws {
        var (fs, log, peer) = try filledPair()
        let seg = try XCTUnwrap(log.segments.dropLast().first { $0.blocks.contains { $0.kind == .tombstones } })
        let marker = try XCTUnwrap(seg.blocks.first { $0.kind == .tombstones })
        try log.close()
        fs.flipBit(path: seg.path, byteOffset: Int(marker.offset) + 66, bit: 2)
        log = try openLog(fs)
        let damage = try XCTUnwrap(try log.damage(inSegment: seg.base))
        XCTAssertEqual(damage.missing, [])
        XCTAssertTrue(damage.tombstonesLost)
        XCTAssertEqual(try log.repairSegment(base: seg.base, with: []), 0)
        XCTAssertNil(try log.verifySegment(base: seg.base))
        try log.close()
        try fs.remove("/data/s/" + StateSnapshot.fileName)
        log = try openLog(fs)
        XCTAssertTrue(log.recoveryReport.fullReplay)
        XCTAssertNil(try log.message(StreamSequence(50)))
        XCTAssertNil(try log.message(StreamSequence(52)))
        try assertSameLive(log, peer)
        try log.close()
        try peer.close()
    }

    /// A power cut at every step of a repair (real files through `PowerCutFileSystem`): the
    /// reopened log is either still damaged (and repairs again) or repaired; never does it
    /// serve a wrong message, lose a sound one, or bring a deleted one back.
    func test_repair_isPowerCutSafe_atEveryStep() throws {
        let root = NSTemporaryDirectory() + "repair-cut-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let peer = try openLog(FaultyFileSystem())
        try fill(peer)
        let config = smallConfig(fsync: .manual)
        var cutsSeen = 0
        for cutAt in 1...200 {
            let dir = root + "/\(cutAt)"
            // A durable log with one damaged block in a sealed segment.
            var log = try StreamLog.open(directory: dir, fileSystem: PosixFileSystem(), config: config)
            try fill(log)
            try log.sync()
            let (seg, ref) = try blockHolding(50, in: log)
            try log.close()
            let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: seg.path))
            try h.seek(toOffset: ref.offset + 70)
            let b = h.readData(ofLength: 1)
            try h.seek(toOffset: ref.offset + 70)
            h.write(Data([b[0] ^ 0x55]))
            try h.close()

            let cutting = CuttingFileSystem(PowerCutFileSystem())
            log = try StreamLog.open(directory: dir, fileSystem: cutting, config: config)
            let damage = try XCTUnwrap(try log.damage(inSegment: seg.base))
            cutting.cutAfter(operations: cutAt)
            let fetched = try peerMessages(damage.missing, from: peer)
            let finished = (try? log.repairSegment(base: seg.base, with: fetched)) != nil && !cutting.didCut
            try? log.close()
            if !cutting.didCut { _ = cutting.inner.powerCut() }
            if cutting.didCut { cutsSeen += 1 }

            log = try StreamLog.open(directory: dir, fileSystem: PosixFileSystem(), config: config)
            let st = try log.state()
            XCTAssertEqual(st.messages, try peer.state().messages, "cut at \(cutAt)")
            for s in 1...st.lastSequence {
                // A read either serves the peer's message, or (still damaged) fails: never another.
                switch Result(catching: { try log.message(StreamSequence(s)) }) {
                case .failure:
                    XCTAssertTrue(damage.missing.contains { $0.contains(s) }, "cut at \(cutAt): sound seq \(s) unreadable")
                case .success(let m):
                    XCTAssertEqual(m?.payload, try peer.message(StreamSequence(s))?.payload, "cut at \(cutAt): seq \(s)")
                }
            }
            if let again = try log.damage(inSegment: seg.base) {
                XCTAssertFalse(finished, "cut at \(cutAt): a finished repair was lost")
                try log.repairSegment(base: seg.base, with: try peerMessages(again.missing, from: peer))
            }
            try assertSameLive(log, peer)
            try log.close()
            if !cutting.didCut { break } // the whole repair ran before the cut point
        }
        XCTAssertGreaterThan(cutsSeen, 5, "the repair takes several durable steps")
        try peer.close()
    }
}

/// Cuts the power of its `PowerCutFileSystem` just before the n-th changing operation after
/// `cutAfter(operations:)` (that operation and every later one fail).
final class CuttingFileSystem: FileSystem {
    let inner: PowerCutFileSystem
    private var remaining = Int.max
    private(set) var didCut = false

    init(_ inner: PowerCutFileSystem) { self.inner = inner }

    func cutAfter(operations n: Int) { remaining = n }

    func step(_ path: String) throws {
        if didCut { throw FileSystemError.io(path: path, operation: "after cut", errno: 5) }
        remaining -= 1
        if remaining <= 0 {
            didCut = true
            _ = inner.powerCut()
            throw FileSystemError.io(path: path, operation: "power cut", errno: 5)
        }
    }

    func open(_ path: String, create: Bool) throws -> StorageFile {
        if create { try step(path) }
        return CuttingFile(try inner.open(path, create: create), self, path)
    }
    func remove(_ path: String) throws { try step(path); try inner.remove(path) }
    func rename(_ from: String, to: String) throws { try step(from); try inner.rename(from, to: to) }
    func list(_ directory: String) throws -> [String] { try inner.list(directory) }
    func makeDirectory(_ path: String) throws { try inner.makeDirectory(path) }
    func syncDirectory(_ directory: String) throws { try step(directory); try inner.syncDirectory(directory) }
    func fileExists(_ path: String) -> Bool { inner.fileExists(path) }
}

final class CuttingFile: StorageFile {
    let file: StorageFile
    unowned let fs: CuttingFileSystem
    let path: String
    init(_ file: StorageFile, _ fs: CuttingFileSystem, _ path: String) {
        self.file = file
        self.fs = fs
        self.path = path
    }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws { try fs.step(path); try file.write(bytes, at: offset) }
    func read(count: Int, at offset: UInt64) throws -> [UInt8] { try file.read(count: count, at: offset) }
    func sync() throws { try fs.step(path); try file.sync() }
    func truncate(to size: UInt64) throws { try fs.step(path); try file.truncate(to: size) }
    func size() throws -> UInt64 { try file.size() }
    func close() { file.close() }
}
