import XCTest
@testable import ClusterServer

/// Known answers: the classic OpenBSD/jBCrypt vectors (cost 6) plus hashes produced by
/// libxcrypt (`crypt(3)`) for $2b$/$2y$, non-ASCII and over-long passwords.
final class BcryptTests: XCTestCase {
    private let vectors: [(String, String)] = [
        ("", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."),
        ("a", "$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe"),
        ("abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"),
        ("abcdefghijklmnopqrstuvwxyz", "$2a$06$.rCVZVOThsIa97pEDOxvGuRRgzG64bvtJ0938xuqzv18d3ZpQhstC"),
        ("~!@#$%^&*()      ~!@#$%^&*()PNBFRD", "$2a$06$fPIsBO8qRqkjj273rfaOI.HtSV9jLDpTbZn782DC6/t7qT67P6FfO"),
        ("s3cr3t", "$2b$04$abcdefghijklmnopqrstuu35fBIWlNgF8BcAW/t2cO158N8svSFHy"),
        ("pässwörd✓", "$2b$05$0123456789ABCDEFGHIJKO5IcvD6s2ZdRK/X2ZDT1rTkqOOXiHZDG"),
        (String(repeating: "y", count: 71), "$2y$04$999999999999999999999u.gjnKCsMq0Jww.H5BL4MPsOtKmMrBhe"),
    ]

    func test_knownAnswers_hashReproducesEveryVector() throws {
        for (password, expected) in vectors {
            let h = try Bcrypt.parse(expected)
            XCTAssertEqual(Bcrypt.hash(password, salt: h.salt, cost: h.cost, version: h.version), expected, password)
        }
    }

    func test_verify_acceptsRightPassword_rejectsWrongOnes() {
        for (password, hash) in vectors {
            XCTAssertTrue(Bcrypt.verify(password, against: hash), password)
            XCTAssertFalse(Bcrypt.verify(password + "x", against: hash), password)
        }
        XCTAssertFalse(Bcrypt.verify("ABC", against: vectors[2].1))
    }

    func test_onlyFirst72BytesCount_asInEveryBcrypt() {
        let hash = "$2b$04$......................SZFhVdUK5wGKY4lx/QrgUMHG0XsWjbi"
        XCTAssertTrue(Bcrypt.verify(String(repeating: "x", count: 72), against: hash))
        XCTAssertTrue(Bcrypt.verify(String(repeating: "x", count: 80), against: hash))
        XCTAssertFalse(Bcrypt.verify(String(repeating: "x", count: 71), against: hash))
    }

    func test_parse_rejectsMalformedHashes() {
        XCTAssertThrowsError(try Bcrypt.parse("plain"))
        XCTAssertThrowsError(try Bcrypt.parse("$2a$11$abc"))
        XCTAssertThrowsError(try Bcrypt.parse("$2x$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."))
        XCTAssertThrowsError(try Bcrypt.parse("$2a$03$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.")) {
            XCTAssertEqual($0 as? Bcrypt.HashError, .badCost)
        }
        XCTAssertThrowsError(try Bcrypt.parse("$2a$06$DCq7YPn5Rq63x1Lad4cll!TV4S6ytwfsfvkgY8jIucDrjc8deX1s.")) {
            XCTAssertEqual($0 as? Bcrypt.HashError, .badEncoding)
        }
        XCTAssertFalse(Bcrypt.verify("", against: "$2a$06$short"))
        XCTAssertTrue(Bcrypt.isHash("$2b$11$x") && !Bcrypt.isHash("$1$x"))
    }

    func test_base64_roundTripsEveryLength() {
        var rng = SplitMix64(seed: 7)
        for n in 1...40 {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let text = Bcrypt.encode(bytes)
            XCTAssertEqual(Bcrypt.decode(Array(text.utf8)[...], count: n), bytes)
        }
    }
}
