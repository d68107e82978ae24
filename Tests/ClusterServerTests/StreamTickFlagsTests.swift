import XCTest
@testable import ClusterServer

/// The flags the per-tick loops read instead of the stream's whole config: a clustered node
/// skips streams with nothing timed to do, so they must follow config updates, TTLs and consumers.
final class StreamTickFlagsTests: XCTestCase {
    func test_idleForTick_followsMaxAgeTTLsAndDirectAccess() throws {
        let h = try JSHarness()
        defer {
            h.stop()
            h.removeFiles()
        }
        let plain = try StreamConfig.decode(JSONObject(["name": "T", "subjects": ["t"]], typeName: "StreamConfig"))
        let s = Stream(service: h.js, config: plain, store: MemoryStore(), created: 0, directory: nil)
        XCTAssertTrue(s.isIdleForTick)
        XCTAssertFalse(s.allowsDirect)
        s.ttlQueue.append((at: 5, seq: 1))
        XCTAssertFalse(s.isIdleForTick, "a pending TTL expiry is timed work")
        s.ttlQueue.removeAll()
        var aged = plain
        aged.maxAgeNanos = 1_000_000_000
        aged.allowDirect = true
        h.js.queue.sync { s.updateConfig(aged) }
        XCTAssertFalse(s.isIdleForTick, "max_age set by an update")
        XCTAssertTrue(s.allowsDirect)
        h.js.queue.sync { s.updateConfig(plain) }
        XCTAssertTrue(s.isIdleForTick)
        XCTAssertFalse(s.allowsDirect)
    }
}
