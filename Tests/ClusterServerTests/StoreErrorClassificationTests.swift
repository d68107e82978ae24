import XCTest
@testable import ClusterServer
@testable import StreamLog
import RaftLogStorage

/// A full disk is told apart from other storage errors on the way up (errno, then the file
/// system's error, then the store's): only a full disk makes a stopped replica reopen by itself.
final class StoreErrorClassificationTests: XCTestCase {
    func test_fullDisk_staysAFullDisk_otherErrorsAreIO() {
        XCTAssertEqual(PosixFileSystem.error("/d/f", "pwrite", ENOSPC), .noSpace(path: "/d/f"))
        XCTAssertEqual(PosixFileSystem.error("/d/f", "pwrite", EDQUOT), .noSpace(path: "/d/f"))
        XCTAssertEqual(PosixFileSystem.error("/d/f", "fsync", EIO), .io(path: "/d/f", operation: "fsync", errno: EIO))
        guard case .noSpace = StoreError(FileSystemError.noSpace(path: "/d/f")) else { return XCTFail("not noSpace") }
        guard case .io = StoreError(FileSystemError.io(path: "/d/f", operation: "fsync", errno: EIO)) else { return XCTFail("not io") }
    }

    /// How a Raft log reports a full disk (its own error type, directly or through the log's).
    func test_raftLogOutOfSpace_isRecognised() {
        XCTAssertTrue(JetStreamCluster.isOutOfSpace(RaftLogStorageError.storage(.noSpace(path: "/r"))))
        XCTAssertTrue(JetStreamCluster.isOutOfSpace(RaftLogStorageError.log(.storage(.noSpace(path: "/r")))))
        XCTAssertFalse(JetStreamCluster.isOutOfSpace(RaftLogStorageError.storage(.io(path: "/r", operation: "pwrite", errno: EIO))))
        XCTAssertFalse(JetStreamCluster.isOutOfSpace(RaftLogStorageError.closed))
    }
}
