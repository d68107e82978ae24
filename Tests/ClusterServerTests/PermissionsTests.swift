import XCTest
@testable import ClusterServer

final class PermissionsTests: XCTestCase {
    func test_publish_allowThenDeny_withWildcards() {
        let p = Permissions(publish: SubjectPermission(allow: ["orders.>", "_INBOX.>"], deny: ["orders.secret.*"]))
        XCTAssertTrue(p.canPublish("orders.new"))
        XCTAssertTrue(p.canPublish("orders.eu.new"))
        XCTAssertTrue(p.canPublish("_INBOX.abc.1"))
        XCTAssertFalse(p.canPublish("orders"))
        XCTAssertFalse(p.canPublish("orders.secret.x"))
        XCTAssertTrue(p.canPublish("orders.secret.x.y"), "* is one token only")
        XCTAssertFalse(p.canPublish("payments.new"))
        XCTAssertTrue(p.restrictsPublish)
    }

    func test_denyOnly_allowsEverythingElse_andNoPermissionsAllowAll() {
        let p = Permissions(publish: SubjectPermission(deny: ["admin.>"]), subscribe: SubjectPermission(deny: [">"]))
        XCTAssertTrue(p.canPublish("foo"))
        XCTAssertFalse(p.canPublish("admin.x"))
        XCTAssertFalse(p.canSubscribe("anything"))
        let none = Permissions()
        XCTAssertTrue(none.canPublish("x") && none.canSubscribe("x.>"))
        XCTAssertFalse(none.restrictsPublish)
    }

    func test_emptyAllowList_allowsNothing() {
        let p = Permissions(publish: SubjectPermission(allow: []))
        XCTAssertFalse(p.canPublish("foo"))
    }

    func test_subscribe_wildcardsComparedAsTokens_likeNatsSublist() {
        let p = Permissions(subscribe: SubjectPermission(allow: ["sub.>", "one.*"], deny: ["sub.secret"]))
        XCTAssertTrue(p.canSubscribe("sub.>"))
        XCTAssertTrue(p.canSubscribe("sub.*.x"))
        XCTAssertTrue(p.canSubscribe("one.*"))
        // Stricter than a literal token match: one.* must not admit the wider one.>.
        XCTAssertFalse(p.canSubscribe("one.>"))
        XCTAssertFalse(p.canSubscribe(">"))
        XCTAssertFalse(p.canSubscribe("sub.secret"))
        XCTAssertFalse(p.canSubscribe("other"))
        // sub.> is allowed but covers the denied sub.secret: deliveries are filtered.
        XCTAssertTrue(p.needsDeliveryFilter("sub.>"))
        XCTAssertFalse(p.needsDeliveryFilter("sub.x"))
        XCTAssertFalse(p.needsDeliveryFilter("one.*"))
        XCTAssertFalse(p.canReceive("sub.secret"))
        XCTAssertTrue(p.canReceive("sub.public"))
    }

    func test_queueEntries_applyToTheirQueueGroupOnly() {
        let p = Permissions(subscribe: SubjectPermission(allow: ["jobs.> workers", "news"], deny: ["news badq"]))
        XCTAssertTrue(p.canSubscribe("jobs.a", queue: "workers"))
        XCTAssertFalse(p.canSubscribe("jobs.a", queue: "others"))
        XCTAssertFalse(p.canSubscribe("jobs.a"), "a queue entry does not allow plain subscriptions")
        XCTAssertTrue(p.canSubscribe("news"))
        XCTAssertTrue(p.canSubscribe("news", queue: "goodq"))
        XCTAssertFalse(p.canSubscribe("news", queue: "badq"))
    }

    func test_allowResponses_turnsOffBlanketPublishAllow_asNatsServer() {
        let p = Permissions(response: ResponsePermission())
        XCTAssertEqual(p.publish?.allow, [])
        XCTAssertFalse(p.canPublish("anything"))
        XCTAssertEqual(p.response?.maxMessages, 1)
        XCTAssertEqual(p.response?.expiresSeconds, 120)
        let explicit = Permissions(publish: SubjectPermission(allow: ["a"]), response: ResponsePermission(maxMessages: 3))
        XCTAssertTrue(explicit.canPublish("a"))
    }

    func test_reservedReplies() {
        XCTAssertTrue(ReservedSubjects.isReservedReply("_R_.abc"))
        XCTAssertTrue(ReservedSubjects.isReservedReply("$JS.ACK.s.c.1"))
        XCTAssertFalse(ReservedSubjects.isReservedReply("_INBOX.x"))
        XCTAssertFalse(ReservedSubjects.isReservedReply("_R_"))
    }
}

final class LogThrottleTests: XCTestCase {
    func test_oneLinePerInterval_reportsFoldedCount() {
        var t = LogThrottle(interval: 1)
        let t0 = Date(timeIntervalSince1970: 1000)
        XCTAssertEqual(t.admit(now: t0), "")
        XCTAssertNil(t.admit(now: t0.addingTimeInterval(0.2)))
        XCTAssertNil(t.admit(now: t0.addingTimeInterval(0.9)))
        XCTAssertEqual(t.admit(now: t0.addingTimeInterval(1.0)), " (2 more since last report)")
        XCTAssertEqual(t.admit(now: t0.addingTimeInterval(5)), "")
    }
}
