import XCTest
@testable import ClusterServer

/// When a stopping server tells a client to leave: never while a request of its is in flight
/// (unless forced), and exactly once.
final class DepartureTests: XCTestCase {
    func test_idleClient_isToldAtOnce_once() {
        var d = Departure()
        XCTAssertTrue(d.requestLeave())
        XCTAssertTrue(d.told)
        XCTAssertFalse(d.requestLeave())
        XCTAssertFalse(d.delivered(subject: "x"))
        XCTAssertFalse(d.forceLeave())
    }

    func test_requestInFlight_toldWithItsReply() {
        var d = Departure()
        d.requestSent(reply: "_INBOX.a.1")
        XCTAssertFalse(d.requestLeave())
        XCTAssertFalse(d.delivered(subject: "other"), "another message is not the awaited reply")
        XCTAssertTrue(d.delivered(subject: "_INBOX.a.1"))
        XCTAssertTrue(d.told)
    }

    func test_repliesBeforeLeaveRequested_doNotTell() {
        var d = Departure()
        d.requestSent(reply: "r")
        XCTAssertFalse(d.delivered(subject: "r"))
        XCTAssertFalse(d.told)
        XCTAssertTrue(d.requestLeave())
    }

    func test_sameReplyTwice_waitsForBoth() {
        var d = Departure()
        d.requestSent(reply: "r")
        d.requestSent(reply: "r")
        XCTAssertFalse(d.requestLeave())
        XCTAssertFalse(d.delivered(subject: "r"))
        XCTAssertTrue(d.delivered(subject: "r"))
    }

    func test_droppedRequest_stopsBeingAwaited() {
        var d = Departure()
        d.requestSent(reply: "r")
        XCTAssertFalse(d.requestLeave())
        XCTAssertTrue(d.requestDropped(reply: "r"))
    }

    func test_deadline_forcesTheNotice_once() {
        var d = Departure()
        d.requestSent(reply: "r")
        XCTAssertFalse(d.requestLeave())
        XCTAssertTrue(d.forceLeave())
        XCTAssertFalse(d.delivered(subject: "r"), "told already")
    }

    func test_trackedRequests_areBounded() {
        var d = Departure()
        for i in 0..<(Departure.maxTracked + 10) { d.requestSent(reply: "r\(i)") }
        XCTAssertEqual(d.awaiting.count, Departure.maxTracked)
    }

    /// A client that just sent a request is about to send the next: not told while idle (its
    /// next request would cross the notice), but with that request's reply, or once quiet.
    func test_busyRequester_toldWithItsNextReply_orOnceQuiet() {
        let q = Departure.quietNanos
        var d = Departure()
        d.requestSent(reply: "r1", now: 1_000)
        XCTAssertFalse(d.delivered(subject: "r1"), "not asked to leave yet")
        XCTAssertFalse(d.requestLeave(now: 1_000 + q / 2), "idle, but a request came just before")
        d.requestSent(reply: "r2", now: 1_000 + q / 2 + 1)
        XCTAssertTrue(d.delivered(subject: "r2"), "told with the reply")

        var quiet = Departure()
        quiet.requestSent(reply: "r", now: 1_000)
        XCTAssertFalse(quiet.delivered(subject: "r"))
        XCTAssertFalse(quiet.requestLeave(now: 1_000 + q - 1))
        XCTAssertTrue(quiet.requestLeave(now: 1_000 + q), "quiet long enough")
        XCTAssertFalse(quiet.requestLeave(now: 1_000 + 2 * q), "once")
    }
}
