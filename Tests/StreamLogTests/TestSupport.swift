import XCTest
@testable import StreamLog

/// SplitMix64: a tiny seeded RNG so every randomized test replays from its seed.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A manual clock (nanoseconds).
final class TestClock {
    var now: Int64 = 1_700_000_000_000_000_000
    func read() -> Int64 { now }
}

func msg(_ subject: String, _ text: String, ts: Int64 = 1_700_000_000_000_000_000, raft: UInt64 = 0, term: UInt64 = 0) -> NewMessage {
    NewMessage(subject: subject, payload: Array(text.utf8), timestamp: ts, term: term, raftIndex: raft)
}

func jsonPayload(_ i: Int, size: Int = 128) -> [UInt8] {
    var s = "{\"id\":\(i),\"user\":\"user-\(i % 97)\",\"event\":\"order.created\",\"amount\":\(i % 1000).25,\"ok\":true"
    while s.utf8.count < size - 1 { s += ",\"k\":\"v\"" }
    return Array((String(s.prefix(size - 1)) + "}").utf8)
}

func smallConfig(fsync: FsyncPolicy = .never, limits: RetentionLimits = RetentionLimits()) -> StreamLogConfig {
    StreamLogConfig(segmentMaxBytes: 4096, fsync: fsync, compression: true, limits: limits)
}

func openLog(_ fs: FaultyFileSystem, _ config: StreamLogConfig = smallConfig(), clock: TestClock = TestClock(),
             file: StaticString = #filePath, line: UInt = #line) throws -> StreamLog {
    try StreamLog.open(directory: "/data/s", fileSystem: fs, config: config, clock: clock.read)
}

func payloadText(_ m: StoredMessage?) -> String? { m.map { String(decoding: $0.payload, as: UTF8.self) } }
