import Foundation
import XCTest
@testable import ClusterServer

/// `DedupClock` (the leader's dedup time, which a wall-clock jump cannot move) and `DedupSkews`
/// (how stored messages get their dedup times back), both pure: clocks are injected.
final class DedupClockTests: XCTestCase {
    private let s: Int64 = 1_000_000_000
    private let base: Int64 = 1_800_000_000_000_000_000

    func test_followsTheWallClock_whileItMovesLikeTheMonotonicClock() {
        var c = DedupClock(resumingAt: base, skew: 0, mono: 0)
        XCTAssertEqual(c.stamp(wall: base + s, mono: UInt64(s)), base + s)
        // Within the tolerance (2 s) a wall step is taken as it is (NTP slewing, small steps).
        XCTAssertEqual(c.stamp(wall: base + 3 * s, mono: UInt64(2 * s)), base + 3 * s)
        XCTAssertEqual(c.skew, 0)
    }

    func test_forwardJumpLargerThanAWindow_advancesByTheElapsedTimeOnly() {
        var c = DedupClock(resumingAt: base, skew: 0, mono: 0)
        XCTAssertEqual(c.stamp(wall: base, mono: 0), base)
        // The wall clock leaps 10 min while 1 s passes.
        XCTAssertEqual(c.stamp(wall: base + 601 * s, mono: UInt64(s)), base + s)
        XCTAssertEqual(c.skew, -600 * s)
        // Afterwards it follows the (jumped) wall clock at the new offset.
        XCTAssertEqual(c.stamp(wall: base + 611 * s, mono: UInt64(11 * s)), base + 11 * s)
        // Put right (a jump back of 10 min): still only the elapsed time counts.
        XCTAssertEqual(c.stamp(wall: base + 12 * s, mono: UInt64(12 * s)), base + 12 * s)
    }

    func test_backwardJump_neverRunsBackwards_andKeepsCountingElapsedTime() {
        var c = DedupClock(resumingAt: base, skew: 0, mono: 0)
        XCTAssertEqual(c.stamp(wall: base - 300 * s, mono: UInt64(s)), base + s)
        XCTAssertEqual(c.skew, 301 * s)
        XCTAssertEqual(c.stamp(wall: base - 299 * s, mono: UInt64(2 * s)), base + 2 * s)
        // A tiny step back (inside the tolerance) still never goes below the last stamp.
        XCTAssertEqual(c.stamp(wall: base - 299 * s - 5, mono: UInt64(2 * s) + 1), base + 2 * s + 1)
        // The monotonic clock reading lower (another process's readings) counts as no time.
        XCTAssertEqual(c.stamp(wall: base + 900 * s, mono: 0), base + 2 * s + 1)
    }

    func test_resumingLeader_withAClockFarFromTheOldLeaders_continuesFromTheLog() {
        // The old leader's clock ran 10 min ahead; the new one resumes after the last dedup time
        // in its log with the stream's offset, and its own wall clock is 10 min behind that.
        var c = DedupClock(resumingAt: base + 600 * s, skew: 0, mono: UInt64(50 * s))
        XCTAssertEqual(c.stamp(wall: base + s, mono: UInt64(51 * s)), base + 601 * s)
        XCTAssertEqual(c.stamp(wall: base + 2 * s, mono: UInt64(52 * s)), base + 602 * s)
        // And the other way round: a new leader 10 min ahead does not leap either.
        var d = DedupClock(resumingAt: base, skew: 0, mono: 0)
        XCTAssertEqual(d.stamp(wall: base + 601 * s, mono: UInt64(s)), base + s)
    }

    func test_aClockWithoutHistory_startsAtTheWallClock() {
        var c = DedupClock(resumingAt: nil, skew: 0, mono: 77)
        XCTAssertEqual(c.stamp(wall: base, mono: 99), base)
        XCTAssertEqual(c.stamp(wall: base + 600 * s, mono: 99 + UInt64(s)), base + s)
        var d = DedupClock(resumingAt: nil, skew: -5, mono: 0)
        XCTAssertEqual(d.stamp(wall: base, mono: 0), base - 5)
    }

    func test_extremeReadings_neverTrap() {
        var c = DedupClock(resumingAt: .max - 5, skew: .max, mono: 0)
        _ = c.stamp(wall: .max, mono: .max)
        _ = c.stamp(wall: .min, mono: 1)
        var d = DedupClock(resumingAt: .min, skew: .min, mono: .max)
        _ = d.stamp(wall: .min, mono: 0)
        _ = d.stamp(wall: .max, mono: .max)
        XCTAssertGreaterThanOrEqual(d.last, .min)
    }

    // MARK: - mixed versions

    func test_dedupTimesAreWritten_onlyWhenEveryOtherMemberReadsThem() throws {
        XCTAssertTrue(StreamReplica.allRead([], readers: []), "a group of one")
        XCTAssertTrue(StreamReplica.allRead(["n2", "n3"], readers: ["n2", "n3", "n4"]))
        XCTAssertFalse(StreamReplica.allRead(["n2", "n3"], readers: ["n2"]), "n3 runs an older version")
        XCTAssertFalse(StreamReplica.allRead(["n2", nil], readers: ["n2"]), "a member not named yet")
        // Route INFO: this version says it reads them; an older one says nothing (false).
        let info = RouteInfo(serverID: "S1", serverName: "n1", version: "2.10.0", cluster: "c", routeURL: "nats-route://h:1/",
                             connectURLs: [], jetstream: true)
        XCTAssertTrue(info.line().contains("\"js_dedup_times\":true"))
        let old = try JSONDecoder().decode(RouteInfo.self, from: Data(#"{"server_id":"S2","server_name":"n2"}"#.utf8))
        XCTAssertFalse(old.dedupTimes)
    }

    // MARK: - DedupSkews

    func test_skews_markOnlyChanges_andAnswerBySequence() {
        var k = DedupSkews()
        XCTAssertFalse(k.note(seq: 1, skew: 0))
        XCTAssertTrue(k.note(seq: 5, skew: -600))
        XCTAssertFalse(k.note(seq: 6, skew: -600))
        XCTAssertTrue(k.note(seq: 9, skew: 40))
        XCTAssertEqual([1, 4, 5, 8, 9, 100].map { k.skew(at: $0) }, [0, 0, -600, -600, 40, 40])
        XCTAssertEqual(k.current, 40)
        XCTAssertEqual(k.maxSkew, 40)
        // A mark written for a sequence the store did not take is replaced when it is reused.
        XCTAssertTrue(k.note(seq: 9, skew: -600))
        XCTAssertEqual(k.marks, [DedupSkews.Mark(seq: 5, skew: -600)])
        XCTAssertTrue(k.note(seq: 12, skew: 7))
        k.dropAbove(11)
        XCTAssertEqual(k.current, -600)
        XCTAssertTrue(k.note(seq: 20, skew: 3))
        XCTAssertFalse(k.dropBelow(4))
        XCTAssertTrue(k.dropBelow(25))
        XCTAssertEqual(k.marks, [DedupSkews.Mark(seq: 20, skew: 3)])
    }

    func test_skews_fileRoundTrips_andRefusesGarbage() {
        let k = DedupSkews(marks: [.init(seq: 3, skew: -600 * s), .init(seq: 90, skew: .max)])
        XCTAssertEqual(DedupSkews.decode(k.encode()), k)
        XCTAssertEqual(DedupSkews.decode(DedupSkews().encode()), DedupSkews())
        let bytes = k.encode()
        for n in 0..<bytes.count { XCTAssertNil(DedupSkews.decode(Array(bytes[..<n])), "prefix \(n)") }
        var unordered = DedupSkews(marks: [.init(seq: 9, skew: 1), .init(seq: 3, skew: 2)]).encode()
        XCTAssertNil(DedupSkews.decode(unordered))
        unordered[4] = 0xFF
        XCTAssertNil(DedupSkews.decode(unordered))
        XCTAssertNil(DedupSkews.decode(Array("nope, not marks".utf8)))
    }

    func test_skews_keepARemovedLastID_inTheFile_untilALaterSequence() {
        var k = DedupSkews(marks: [.init(seq: 3, skew: 5)], removedLast: .init(seq: 7, id: "ordér-7"))
        XCTAssertEqual(k.removedLastID(at: 7), "ordér-7")
        XCTAssertNil(k.removedLastID(at: 8), "stale once a later sequence is stored")
        let bytes = k.encode()
        XCTAssertEqual(DedupSkews.decode(bytes), k)
        for n in (8 + 16 + 1)..<bytes.count { XCTAssertNil(DedupSkews.decode(Array(bytes[..<n])), "prefix \(n)") }
        var badUTF8 = bytes
        badUTF8[badUTF8.count - 1] = 0xFF
        XCTAssertNil(DedupSkews.decode(badUTF8))
        var longer = bytes
        longer[8 + 16 + 8] = 0xFF // the id's length
        XCTAssertNil(DedupSkews.decode(longer))
        let tooLong = DedupSkews(removedLast: .init(seq: 1, id: String(repeating: "x", count: DedupSkews.maxRemovedLastIDBytes + 1)))
        XCTAssertEqual(DedupSkews.decode(tooLong.encode()), DedupSkews(), "an absurd id is not written down")
        k.dropAbove(7)
        XCTAssertNotNil(k.removedLast)
        k.dropAbove(6)
        XCTAssertNil(k.removedLast, "the store lost that sequence: the replay writes it down again")
    }
}
