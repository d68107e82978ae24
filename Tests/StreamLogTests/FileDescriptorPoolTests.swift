import Foundation
import XCTest
@testable import StreamLog

/// Files sharing a descriptor pool: past the cap idle descriptors close and reopen on use,
/// and what was written stays readable; renames and removals keep the files right.
final class FileDescriptorPoolTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "fdpool-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func test_pool_capsOpenDescriptors_andFilesReopenWithTheirData() throws {
        let pool = FileDescriptorPool(limit: 3)
        let fs = PosixFileSystem(pool: pool)
        var files: [StorageFile] = []
        for i in 0..<10 {
            let f = try fs.open(dir + "/f\(i)", create: true)
            try f.write(Array("file \(i)".utf8), at: 0)
            try f.sync()
            files.append(f)
        }
        XCTAssertLessThanOrEqual(pool.openCount, 3)
        for round in 0..<3 {
            for (i, f) in files.enumerated() {
                XCTAssertEqual(String(decoding: try f.read(count: 64, at: 0), as: UTF8.self), "file \(i)", "round \(round)")
                XCTAssertEqual(try f.size(), UInt64("file \(i)".utf8.count))
            }
        }
        XCTAssertLessThanOrEqual(pool.openCount, 3)
        XCTAssertGreaterThan(pool.reopens, 0)
        for f in files { f.close() }
        XCTAssertEqual(pool.openCount, 0)
        XCTAssertThrowsError(try files[0].read(count: 1, at: 0), "a closed file stays closed")
    }

    func test_pool_closesUnsyncedFilesOnlyWhenNothingCleanIsLeft() throws {
        let pool = FileDescriptorPool(limit: 2)
        let fs = PosixFileSystem(pool: pool)
        let dirty = try fs.open(dir + "/dirty", create: true)
        try dirty.write([1, 2, 3], at: 0)
        let clean = try fs.open(dir + "/clean", create: true)
        _ = try fs.open(dir + "/third", create: true) // needs room: the clean file goes first
        XCTAssertEqual(pool.reopens, 0)
        _ = try clean.size()
        XCTAssertEqual(pool.reopens, 1, "the clean file was the one closed")
        XCTAssertEqual(try dirty.read(count: 3, at: 0), [1, 2, 3])
        XCTAssertEqual(pool.reopens, 1, "the unsynced one kept its descriptor")
    }

    func test_pool_renameMovesAClosedFile_andRemovalMakesItGone() throws {
        let pool = FileDescriptorPool(limit: 1)
        let fs = PosixFileSystem(pool: pool)
        let moved = try fs.open(dir + "/seg.tmp", create: true)
        try moved.write(Array("new".utf8), at: 0)
        try moved.sync()
        let other = try fs.open(dir + "/other", create: true) // closes `moved`'s descriptor
        try fs.rename(dir + "/seg.tmp", to: dir + "/seg")
        XCTAssertEqual(String(decoding: try moved.read(count: 3, at: 0), as: UTF8.self), "new", "reopened at its new name")
        try fs.remove(dir + "/other")
        _ = try moved.size()
        XCTAssertThrowsError(try other.size(), "a removed file that lost its descriptor cannot come back")
        // A file removed while it holds a descriptor keeps working (as an open POSIX file does).
        try fs.remove(dir + "/seg")
        XCTAssertEqual(try moved.read(count: 3, at: 0), Array("new".utf8))
    }

    func test_streamLog_onASmallPool_survivesReopeningItsFiles() throws {
        let pool = FileDescriptorPool(limit: 4)
        let fs = PosixFileSystem(pool: pool)
        let config = smallConfig(fsync: .always)
        var logs: [StreamLog] = []
        for i in 0..<6 { logs.append(try StreamLog.open(directory: dir + "/log\(i)", fileSystem: fs, config: config)) }
        for round in 0..<40 {
            for (i, log) in logs.enumerated() { try log.append([msg("s.\(i)", "r\(round)")]) }
        }
        for (i, log) in logs.enumerated() {
            XCTAssertEqual(try log.state(perSubject: false).messages, 40)
            XCTAssertEqual(payloadText(try log.message(StreamSequence(17))), "r16", "log \(i)")
            try log.close()
        }
        logs.removeAll()
        // A log's files close when it deinitializes, and its sync thread lets go of it only just
        // after `close()` returned (the thread's last reference): wait for that, boundedly.
        for _ in 0..<500 where pool.openCount > 0 { usleep(10_000) }
        XCTAssertEqual(pool.openCount, 0, "dropped logs give their descriptors back")
        let again = try StreamLog.open(directory: dir + "/log3", fileSystem: fs, config: config)
        XCTAssertEqual(payloadText(try again.lastMessage(subject: "s.3")), "r39")
        try again.close()
    }
}
