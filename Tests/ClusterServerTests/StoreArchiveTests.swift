import Foundation
import XCTest
@testable import ClusterServer

/// A store removed from the meta group archives itself (`JetStreamCluster.archiveStore`):
/// identity, meta log, promise and stream directories move; dot entries (other accounts'
/// stores, earlier archives) stay.
final class StoreArchiveTests: XCTestCase {
    func test_archiveStore_movesEverythingButDotEntries() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("archive-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        for dir in ["_meta", "ORDERS/msgs", ".accounts/A/_meta", ".removed-1"] {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        for file in ["identity.json", "meta_promise.json", "ORDERS/meta.json"] {
            XCTAssertTrue(fm.createFile(atPath: root + "/" + file, contents: Data("{}".utf8)))
        }
        let archive = try JetStreamCluster.archiveStore(root: root, to: root + "/.removed-2")
        XCTAssertEqual(archive, root + "/.removed-2")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: root).sorted(), [".accounts", ".removed-1", ".removed-2"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: archive).sorted(), ["ORDERS", "_meta", "identity.json", "meta_promise.json"])
        XCTAssertTrue(fm.fileExists(atPath: archive + "/ORDERS/meta.json"))
        XCTAssertTrue(fm.fileExists(atPath: root + "/.accounts/A/_meta"), "another account's store is not touched")
    }
}
