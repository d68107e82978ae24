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
            XCTAssertTrue(items[at..<(at + n)].allSatisfy { batched.canBatch(PublishHeaders($0.headers)) })
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

    /// An entry whose dedup the leader decided is stored even when this replica's window holds
    /// its id (a window the leader's lacked), one at a time and batched alike, and the id is then
    /// recorded: a later undecided retry is answered with the decided one's sequence.
    func test_dedupDecided_isStoredAndRecorded_oneByOneAndBatched() throws {
        var c = StreamConfig(name: "D")
        c.duplicateWindowNanos = 60_000_000_000
        func item(_ i: Int, _ id: String, decided: Bool) -> ClusterServer.Stream.BatchItem {
            var m = ClusterServer.Stream.BatchItem(subject: "d", headers: msgID(id), payload: [UInt8(i)],
                                                   now: 1_000_000_000 + Int64(i), raftIndex: UInt64(i))
            m.dedupDecided = decided
            return m
        }
        let items = [item(1, "x", decided: true), item(2, "x", decided: true), item(3, "x", decided: false), item(4, "y", decided: false)]
        let want = [#"{"stream":"D","seq":1}"#, #"{"stream":"D","seq":2}"#, #"{"stream":"D","seq":2,"duplicate": true}"#,
                    #"{"stream":"D","seq":3}"#]
        let one = try makeStream(c), batched = try makeStream(c)
        let singly = items.map { m -> String in
            one.applyingRaftIndex = m.raftIndex
            return String(decoding: one.ingest(subject: m.subject, headers: m.headers, payload: m.payload, now: m.now,
                                               dedupDecided: m.dedupDecided).response, as: UTF8.self)
        }
        XCTAssertEqual(singly, want)
        XCTAssertEqual(batched.ingestBatch(items).map { String(decoding: $0.response, as: UTF8.self) }, want)
        XCTAssertEqual(contents(batched), contents(one))
        XCTAssertEqual(one.dedupSequence("x", now: 1_000_000_010), 2)
    }

    func test_canBatch_refusesWhatReadsTheStore() throws {
        var c = StreamConfig(name: "R")
        let s = try makeStream(c)
        XCTAssertTrue(s.canBatch(PublishHeaders(nil)))
        XCTAssertTrue(s.canBatch(PublishHeaders(msgID("x"))))
        XCTAssertFalse(s.canBatch(PublishHeaders(NATSHeaderBlock.make([("Nats-Expected-Last-Sequence", "3")]))))
        XCTAssertFalse(s.canBatch(PublishHeaders(NATSHeaderBlock.make([("Nats-Rollup", "sub")]))))
        XCTAssertFalse(s.canBatch(PublishHeaders(NATSHeaderBlock.make([("Nats-TTL", "5s")]))))
        c.discard = .new
        XCTAssertFalse(try makeStream(c).canBatch(PublishHeaders(nil)))
        c.discard = .old
        c.retention = .workqueue
        XCTAssertFalse(try makeStream(c).canBatch(PublishHeaders(nil)))
    }
}
