import XCTest
@testable import ClusterServer

/// The bookkeeping of per-tick passes that visit only what needs it (`AttentionSet`).
final class AttentionSetTests: XCTestCase {
    final class Item {
        let name: String
        var pendingWork: Int
        var visits = 0
        init(_ name: String, work: Int) {
            self.name = name
            pendingWork = work
        }
    }

    /// One pass as the ticks run them: visit what was flagged, keep what still has work.
    private func pass(_ set: inout AttentionSet<Item>) {
        for item in set.takeAll() {
            item.visits += 1
            item.pendingWork -= 1
            if item.pendingWork > 0 { set.insert(item) }
        }
    }

    func test_flaggedItemIsVisitedUntilDone_unflaggedNever() {
        var set = AttentionSet<Item>()
        let busy = Item("busy", work: 3), idle = Item("idle", work: 3)
        set.insert(busy)
        set.insert(busy) // twice is once
        XCTAssertEqual(set.count, 1)
        for _ in 0..<5 { pass(&set) }
        XCTAssertEqual(busy.visits, 3, "visited while it had work, then left the set")
        XCTAssertEqual(idle.visits, 0, "never flagged, never visited")
        XCTAssertTrue(set.isEmpty)
        XCTAssertFalse(set.contains(busy))
        // Flagged again: visited again.
        busy.pendingWork = 1
        set.insert(busy)
        pass(&set)
        XCTAssertEqual(busy.visits, 4)
        XCTAssertTrue(set.isEmpty)
    }

    func test_itemsFlaggedDuringAPass_areVisitedFromTheNextOne() {
        var set = AttentionSet<Item>()
        let a = Item("a", work: 1), b = Item("b", work: 1)
        set.insert(a)
        for item in set.takeAll() {
            item.visits += 1
            set.insert(b) // work done in a pass flags another item
        }
        XCTAssertEqual(b.visits, 0)
        XCTAssertTrue(set.contains(b))
        XCTAssertFalse(set.contains(a))
        XCTAssertEqual(set.elements.map(\.name), ["b"])
        pass(&set)
        XCTAssertEqual(b.visits, 1)
        XCTAssertTrue(set.isEmpty)
    }
}
