import Foundation
import Raft
import XCTest
@testable import ClusterServer

/// `Stream.ingestBatch` (one store write for a round of committed publishes) decides every
/// message exactly as `ingest` one at a time does: same PubAcks (sequences, duplicates, errors),
/// same stored messages, same dedup state afterwards.
final class StreamBatchApplyTests: XCTestCase {
    private var fixture: StreamTestFixture!

    override func setUp() {
        fixture = StreamTestFixture(prefix: "batch-apply")
    }

    override func tearDown() {
        fixture.removeAll()
    }

    private func makeStream(_ config: StreamConfig) throws -> ClusterServer.Stream {
        try fixture.openStream(config, in: fixture.newDirectory())
    }

    private func msgID(_ id: String) -> [UInt8] { NATSHeaderBlock.make([("Nats-Msg-Id", id)]) }

    /// Deterministic publishes: some with a Nats-Msg-Id (repeats within and across batches),
    /// some oversized, a few subjects.
    private func workload(count: Int) -> [ClusterServer.Stream.BatchItem] {
        var rng = Raft.SplitMix64(seed: 42)
        return (0..<count).map { i in
            let r = rng.next()
            let headers: [UInt8]? = r % 3 == 0 ? msgID("id-\(r % 17)") : nil
            let size = r % 29 == 0 ? 300 : Int(r % 64)
            return ClusterServer.Stream.BatchItem(subject: "s.\(r % 5)", headers: headers, payload: [UInt8](repeating: UInt8(i & 0xff), count: size),
                                    now: 1_000_000_000 + Int64(i) * 1_000, raftIndex: UInt64(i + 1))
        }
    }

    private func contents(_ s: ClusterServer.Stream) -> [String] {
        fixture.storedMessages(s).map { "\($0.seq) \($0.subject) \($0.headers ?? []) \($0.payload.count) \($0.time)" }
    }

    private func check(_ config: StreamConfig, batchSizes: [Int]) throws {
        let items = workload(count: batchSizes.reduce(0, +))
        let one = try makeStream(config), batched = try makeStream(config)
        var expected: [[UInt8]] = []
        for m in items {
            one.applyingRaftIndex = m.raftIndex
            expected.append(one.ingest(subject: m.subject, headers: m.headers, payload: m.payload, now: m.now).response)
        }
        var got: [[UInt8]] = []
        var at = 0
        for n in batchSizes {
            XCTAssertTrue(items[at..<(at + n)].allSatisfy { batched.canBatch(headers: $0.headers) })
            got += batched.ingestBatch(Array(items[at..<(at + n)])).map(\.response)
            at += n
        }
        XCTAssertEqual(got.map { String(decoding: $0, as: UTF8.self) }, expected.map { String(decoding: $0, as: UTF8.self) })
        XCTAssertEqual(batched.store.state, one.store.state)
        XCTAssertEqual(contents(batched), contents(one))
        XCTAssertEqual(batched.lastMsgID, one.lastMsgID)
        XCTAssertEqual(batched.store.lastRaftIndex, one.store.lastRaftIndex)
        XCTAssertTrue(got.contains { String(decoding: $0, as: UTF8.self).contains("\"duplicate\": true") })
        XCTAssertTrue(got.contains { String(decoding: $0, as: UTF8.self).contains("\"error\"") })
    }

    func test_ingestBatch_decidesLikeIngestOneByOne() throws {
        var c = StreamConfig(name: "B")
        c.duplicateWindowNanos = 50_000_000
        c.maxMsgSize = 256
        try check(c, batchSizes: [1, 7, 64, 3, 256, 100])
    }

    func test_ingestBatch_withDiscardOldLimits_trimsLikeIngest() throws {
        var c = StreamConfig(name: "L")
        c.duplicateWindowNanos = 50_000_000
        c.maxMsgSize = 256
        c.maxMsgs = 40
        c.maxMsgsPerSubject = 6
        try check(c, batchSizes: [5, 50, 200, 1])
    }

    func test_canBatch_refusesWhatReadsTheStore() throws {
        var c = StreamConfig(name: "R")
        let s = try makeStream(c)
        XCTAssertTrue(s.canBatch(headers: nil))
        XCTAssertTrue(s.canBatch(headers: msgID("x")))
        XCTAssertFalse(s.canBatch(headers: NATSHeaderBlock.make([("Nats-Expected-Last-Sequence", "3")])))
        XCTAssertFalse(s.canBatch(headers: NATSHeaderBlock.make([("Nats-Rollup", "sub")])))
        XCTAssertFalse(s.canBatch(headers: NATSHeaderBlock.make([("Nats-TTL", "5s")])))
        c.discard = .new
        XCTAssertFalse(try makeStream(c).canBatch(headers: nil))
        c.discard = .old
        c.retention = .workqueue
        XCTAssertFalse(try makeStream(c).canBatch(headers: nil))
    }
}
