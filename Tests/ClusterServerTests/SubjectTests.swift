import XCTest
@testable import ClusterServer

final class SubjectTests: XCTestCase {
    func test_isValidSubscription_table() {
        let valid = ["foo", "foo.bar", "foo.*", "*", ">", "foo.>", "*.bar.>", "foo*", "f>o", "foo.*bar", "$JS.API.>",
                     "_INBOX.abc.*"]
        let invalid = ["", ".", "foo.", ".foo", "foo..bar", "foo.>.bar", "> .x", "foo bar", "foo\tbar", ">.foo"]
        for s in valid { XCTAssertTrue(Subject.isValidSubscription(s), s) }
        for s in invalid { XCTAssertFalse(Subject.isValidSubscription(s), s) }
    }

    func test_isValidLiteral_rejectsWildcardTokensOnly() {
        XCTAssertTrue(Subject.isValidLiteral("foo.bar"))
        XCTAssertTrue(Subject.isValidLiteral("foo*"))
        XCTAssertFalse(Subject.isValidLiteral("foo.*"))
        XCTAssertFalse(Subject.isValidLiteral("foo.>"))
        XCTAssertFalse(Subject.isValidLiteral("foo..bar"))
    }

    func test_matches_table() {
        let cases: [(String, String, Bool)] = [
            ("foo", "foo", true), ("foo", "bar", false), ("foo.*", "foo.bar", true), ("foo.*", "foo", false),
            ("foo.*", "foo.bar.baz", false), ("foo.>", "foo.bar", true), ("foo.>", "foo.bar.baz", true),
            ("foo.>", "foo", false), (">", "a", true), (">", "a.b.c", true), ("*.b.*", "a.b.c", true),
            ("*.b.*", "a.x.c", false), ("foo*", "foo*", true), ("foo*", "fooz", false),
        ]
        for (p, s, want) in cases { XCTAssertEqual(Subject.matches(pattern: p, subject: s), want, "\(p) ~ \(s)") }
    }

    func test_hasWildcard() {
        XCTAssertTrue(Subject.hasWildcard("a.*"))
        XCTAssertTrue(Subject.hasWildcard(">"))
        XCTAssertFalse(Subject.hasWildcard("a*.b>"))
    }

    func test_overlaps_table() {
        XCTAssertTrue(Subject.overlaps("orders.>", "orders.eu"))
        XCTAssertTrue(Subject.overlaps("orders.*", "*.eu"))
        XCTAssertFalse(Subject.overlaps("orders.*", "orders.eu.x"))
        XCTAssertFalse(Subject.overlaps("a.b", "a.c"))
    }
}
