import Foundation
import XCTest
@testable import StreamLog

/// `PowerCutFileSystem` on a real temporary directory: a cut leaves exactly what was made
/// durable (file data by `sync`, names by `syncDirectory`), and nothing else.
final class PowerCutFileSystemTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "powercut-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func contents(_ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: dir + "/" + name).map { [UInt8]($0) }
    }

    func test_cut_dropsUnsyncedAppends_andRestoresOverwrittenDurableBytes() throws {
        let fs = PowerCutFileSystem()
        let f = try fs.open(dir + "/log", create: true)
        try f.write(Array("durable-".utf8), at: 0)
        try f.sync()
        try fs.syncDirectory(dir)
        try f.write(Array("XX".utf8), at: 0)            // overwrites durable bytes
        try f.write(Array("lost tail".utf8), at: 8)     // appends past the durable end
        XCTAssertEqual(contents("log"), Array("XXrable-lost tail".utf8))
        let cut = fs.powerCut()
        XCTAssertEqual(contents("log"), Array("durable-".utf8))
        XCTAssertEqual(cut.bytesDropped, 9)
    }

    func test_cut_restoresDurableBytes_afterTruncation() throws {
        let fs = PowerCutFileSystem()
        let f = try fs.open(dir + "/seg", create: true)
        try f.write(Array("0123456789".utf8), at: 0)
        try f.sync()
        try fs.syncDirectory(dir)
        try f.truncate(to: 4)
        try f.write(Array("ab".utf8), at: 4)
        fs.powerCut()
        XCTAssertEqual(contents("seg"), Array("0123456789".utf8))
    }

    /// An atomic replace of `state` with `text` (a synced temporary file renamed over it).
    private func replace(_ fs: PowerCutFileSystem, _ text: String, syncDir: Bool) throws {
        let t = try fs.open(dir + "/state.tmp", create: true)
        try t.truncate(to: 0)
        try t.write(Array(text.utf8), at: 0)
        try t.sync()
        t.close()
        try fs.rename(dir + "/state.tmp", to: dir + "/state")
        if syncDir { try fs.syncDirectory(dir) }
    }

    func test_cut_undoesAnUnsyncedAtomicReplace_andKeepsASyncedOne() throws {
        let fs = PowerCutFileSystem()
        try replace(fs, "v1", syncDir: true)
        try replace(fs, "v2", syncDir: false)
        XCTAssertEqual(contents("state"), Array("v2".utf8))
        XCTAssertEqual(try fs.list(dir).sorted(), ["state"], "hidden links must not show in listings")
        fs.powerCut()
        XCTAssertEqual(contents("state"), Array("v1".utf8))
        XCTAssertNil(contents("state.tmp"), "a file created after the last directory sync is gone")
    }

    /// A process killed (not cut) between a replace and its directory sync leaves a hidden
    /// link; the next process's layer counts its hidden names from 1 again and must not trip
    /// over it (a chaos run's replica failed every consumer-record write that way).
    func test_replace_afterAnEarlierProcessLeftAHiddenLink_works() throws {
        let earlier = PowerCutFileSystem()
        try replace(earlier, "v1", syncDir: true)
        try replace(earlier, "v2", syncDir: false) // killed here: v1's hidden link stays
        let leftover = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(PowerCutFileSystem.hiddenMarker) }
        XCTAssertEqual(leftover.count, 1)
        let next = PowerCutFileSystem()
        try replace(next, "v3", syncDir: true)
        try replace(next, "v4", syncDir: false)
        XCTAssertEqual(contents("state"), Array("v4".utf8))
        next.powerCut()
        XCTAssertEqual(contents("state"), Array("v3".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(PowerCutFileSystem.hiddenMarker) }, leftover,
                       "only the earlier process's link is left")
    }

    func test_cut_bringsBackAFileRemovedSinceTheLastDirectorySync() throws {
        let fs = PowerCutFileSystem()
        let f = try fs.open(dir + "/old", create: true)
        try f.write(Array("keep".utf8), at: 0)
        try f.sync()
        try fs.syncDirectory(dir)
        try fs.remove(dir + "/old")
        XCTAssertNil(contents("old"))
        fs.powerCut()
        XCTAssertEqual(contents("old"), Array("keep".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["old"])
    }

    func test_aStreamLog_keepsEveryDurableMessage_throughACut() throws {
        let fs = PowerCutFileSystem()
        let config = StreamLogConfig(segmentMaxBytes: 4096, fsync: .manual, compression: true, limits: RetentionLimits())
        let log = try StreamLog.open(directory: dir + "/s", fileSystem: fs, config: config, clock: { 1 })
        for i in 0..<200 { try log.append([msg("a.\(i % 3)", "m\(i)")]) }
        try log.sync()
        for i in 200..<260 { try log.append([msg("a.\(i % 3)", "m\(i)")]) }
        fs.powerCut()
        // The cut kept the lock: reopen through a fresh layer, as a restarted process would.
        let reopened = try StreamLog.open(directory: dir + "/s", fileSystem: PowerCutFileSystem(), config: config, clock: { 1 })
        let all = try reopened.messages(from: StreamSequence(1), maxMessages: 10_000)
        XCTAssertGreaterThanOrEqual(all.count, 200, "a synced message was lost")
        XCTAssertEqual(all.map(\.sequence.rawValue), (1...UInt64(all.count)).map { $0 })
    }

    /// An install's copy of `msgs/1.seg` moved over a stale tracked `msgs` directory outside
    /// the layer (with FileManager, not through `fs`), the parent synced after. The replaced
    /// file: empty and synced. The copy: `synced` made durable, then `unsynced` written after
    /// its last sync (when given).
    private func moveInstallOverAStaleStore(_ fs: PowerCutFileSystem, synced: String, unsynced: String? = nil) throws {
        try fs.makeDirectory(dir + "/msgs")
        let old = try fs.open(dir + "/msgs/1.seg", create: true)
        try old.sync()
        old.close()
        try fs.syncDirectory(dir + "/msgs")
        try fs.makeDirectory(dir + "/install/msgs")
        let copy = try fs.open(dir + "/install/msgs/1.seg", create: true)
        try copy.write(Array(synced.utf8), at: 0)
        try copy.sync()
        if let unsynced { try copy.write(Array(unsynced.utf8), at: UInt64(synced.utf8.count)) }
        copy.close()
        try fs.syncDirectory(dir + "/install/msgs")
        try FileManager.default.removeItem(atPath: dir + "/msgs")
        try FileManager.default.moveItem(atPath: dir + "/install/msgs", toPath: dir + "/msgs")
        try fs.syncDirectory(dir)
    }

    /// Finding 16: a directory moved over another outside the layer must not inherit the
    /// replaced files' durable state by path. Before the fix the new `msgs/1.seg` was cut back
    /// to the old file's durable size (0 bytes).
    func test_cut_keepsASyncedFile_movedOverAStaleTrackedPath_outsideTheLayer() throws {
        let fs = PowerCutFileSystem()
        try moveInstallOverAStaleStore(fs, synced: "copied and synced")
        fs.powerCut()
        XCTAssertEqual(contents("msgs/1.seg"), Array("copied and synced".utf8))
    }

    /// The same, with the moved-in file reopened through the layer and appended to un-synced:
    /// its synced bytes stay, the appended ones are dropped.
    func test_cut_tracksAFileMovedInOutsideTheLayer_fromItsOwnDurableState() throws {
        let fs = PowerCutFileSystem()
        try moveInstallOverAStaleStore(fs, synced: "synced", unsynced: "+lost")
        let f = try fs.open(dir + "/msgs/1.seg", create: false)
        try f.write(Array("++".utf8), at: 11)
        fs.powerCut()
        XCTAssertEqual(contents("msgs/1.seg"), Array("synced".utf8))
    }

    /// An install's roll-forward moves its directory through the layer
    /// (`StreamInstall.rollForward`): the move is undone at a cut until the new parent is
    /// synced, and the files inside keep their tracked state across it (an un-synced write
    /// made before the move is dropped, wherever the file is at the cut).
    func test_cut_undoesADirectoryMove_untilTheParentIsSynced() throws {
        for syncParent in [false, true] {
            let fs = PowerCutFileSystem()
            try fs.makeDirectory(dir + "/install/msgs")
            let f = try fs.open(dir + "/install/msgs/1.seg", create: true)
            try f.write(Array("synced".utf8), at: 0)
            try f.sync()
            try f.write(Array("+lost".utf8), at: 6)
            try fs.syncDirectory(dir + "/install/msgs")
            try fs.rename(dir + "/install/msgs", to: dir + "/msgs")
            if syncParent { try fs.syncDirectory(dir) }
            fs.powerCut()
            f.close()
            let (kept, gone) = syncParent ? ("msgs", "install/msgs") : ("install/msgs", "msgs")
            XCTAssertEqual(contents(kept + "/1.seg"), Array("synced".utf8), "parent synced: \(syncParent)")
            XCTAssertNil(contents(gone + "/1.seg"), "parent synced: \(syncParent)")
            try FileManager.default.removeItem(atPath: dir + "/" + kept)
        }
    }
}
