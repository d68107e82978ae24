@testable import ClusterServer
import XCTest

/// `rate_limit_bps`: a bucket of `bps / 8` bytes a second, at most a burst full, on an injected
/// clock (ns).
final class ByteRateLimiterTests: XCTestCase {
    private let ms: Int64 = 1_000_000

    func test_startsFull_thenWaitsForTheMissingBytes() throws {
        var l = try XCTUnwrap(ByteRateLimiter(bitsPerSecond: 8_000, burst: 500)) // 1,000 B/s
        XCTAssertEqual(l.take(500, now: 0), 0)
        XCTAssertEqual(l.take(100, now: 0), 100 * ms, "100 bytes at 1,000 B/s")
        XCTAssertEqual(l.take(100, now: 40 * ms), 60 * ms, "nothing was taken by the refusal")
        XCTAssertEqual(l.take(100, now: 100 * ms), 0)
        XCTAssertEqual(l.take(1, now: 100 * ms), ms)
    }

    func test_neverMoreThanTheBurst_andALargerMessageWaitsForAFullBucket() throws {
        var l = try XCTUnwrap(ByteRateLimiter(bitsPerSecond: 8_000, burst: 500))
        XCTAssertEqual(l.take(10, now: 0), 0)
        XCTAssertEqual(l.take(2_000, now: 10_000 * ms), 0, "full after a long idle: 500, not 10,000 bytes")
        XCTAssertEqual(l.take(2_000, now: 10_000 * ms), 500 * ms, "waits for a full bucket")
        XCTAssertEqual(l.take(2_000, now: 10_500 * ms), 0)
    }

    func test_aClockGoingBackAddsNothing() throws {
        var l = try XCTUnwrap(ByteRateLimiter(bitsPerSecond: 8_000, burst: 100))
        XCTAssertEqual(l.take(100, now: 1_000 * ms), 0)
        XCTAssertEqual(l.take(50, now: 900 * ms), 50 * ms)
        XCTAssertEqual(l.take(50, now: 1_050 * ms), 0)
    }

    func test_zeroOrUnderAByteASecondIsNoLimit() {
        XCTAssertNil(ByteRateLimiter(bitsPerSecond: 0, burst: 100))
        XCTAssertNil(ByteRateLimiter(bitsPerSecond: 7, burst: 100))
    }
}
