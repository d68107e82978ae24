import XCTest
@testable import ClusterServer

/// The binary encoding of a clustered stream's message entries and the JSON op entries.
final class StreamEntryTests: XCTestCase {
    func test_message_roundTrips_withAndWithoutOptionalFields() throws {
        let cases: [(String, String?, [UInt8]?, [UInt8])] = [
            ("orders.eu", "_INBOX.abc.1", Array("NATS/1.0\r\nNats-Msg-Id: 7\r\n\r\n".utf8), Array("hello".utf8)),
            ("a", nil, nil, []),
            ("b.c", "", [], [0, 1, 2, 255]),
        ]
        for (subject, reply, headers, payload) in cases {
            let bytes = StreamEntry.encodeMessage(subject: subject, reply: reply, headers: headers, payload: payload, timestamp: -42)
            guard case let .message(s, r, h, p, t, d) = try StreamEntry.decode(bytes) else { return XCTFail("not a message") }
            XCTAssertEqual(s, subject)
            XCTAssertEqual(r, reply)
            XCTAssertEqual(h, headers)
            XCTAssertEqual(p, payload)
            XCTAssertEqual(t, -42)
            XCTAssertEqual(d, -42, "an entry without a dedup time dedups on its timestamp")
        }
    }

    func test_decidedMessage_isTag5_roundTripsAsTag4Does_andOnlyItIsDecided() throws {
        let headers = Array("NATS/1.0\r\nNats-Msg-Id: 7\r\n\r\n".utf8)
        let decided = StreamEntry.encodeMessage(subject: "o.1", reply: "r", headers: headers, payload: [9],
                                                timestamp: 10, dedupTime: 20, dedupDecided: true)
        let plain = StreamEntry.encodeMessage(subject: "o.1", reply: "r", headers: headers, payload: [9],
                                              timestamp: 10, dedupTime: 20)
        XCTAssertEqual(decided.first, StreamEntry.messageDecidedTag)
        XCTAssertEqual(Array(decided.dropFirst()), Array(plain.dropFirst()), "only the tag differs from tag 4")
        XCTAssertTrue(StreamEntry.isDedupDecided(decided))
        XCTAssertFalse(StreamEntry.isDedupDecided(plain))
        XCTAssertFalse(StreamEntry.isDedupDecided(StreamEntry.encodeMessage(subject: "a", reply: nil, headers: nil, payload: [], timestamp: 1)))
        guard case let .message(s, r, h, p, t, d) = try StreamEntry.decode(decided) else { return XCTFail("not a message") }
        XCTAssertEqual([s, r], ["o.1", "r"])
        XCTAssertEqual(h, headers)
        XCTAssertEqual(p, [9])
        XCTAssertEqual([t, d], [10, 20])
        for n in 0..<decided.count - 1 where n < 30 {
            XCTAssertThrowsError(try StreamEntry.decode(Array(decided[..<n])), "prefix of \(n) bytes")
        }
    }

    func test_messageWithDedupTime_roundTrips_andOldEntriesStayReadable() throws {
        let headers = Array("NATS/1.0\r\nNats-Msg-Id: 7\r\n\r\n".utf8)
        let bytes = StreamEntry.encodeMessage(subject: "orders.eu", reply: "_INBOX.1", headers: headers, payload: [1, 2],
                                              timestamp: 1_000, dedupTime: -5_000)
        XCTAssertEqual(bytes.first, 4)
        guard case let .message(s, r, h, p, t, d) = try StreamEntry.decode(bytes) else { return XCTFail("not a message") }
        XCTAssertEqual([s, r], ["orders.eu", "_INBOX.1"])
        XCTAssertEqual(h, headers)
        XCTAssertEqual(p, [1, 2])
        XCTAssertEqual(t, 1_000)
        XCTAssertEqual(d, -5_000)
        // A log written before the dedup time existed: tag 1, bytes fixed here as that version
        // wrote them (timestamp 9, subject "a", no reply, no headers, payload [7]).
        let old: [UInt8] = [1, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 97, 255, 255, 255, 255, 255, 255, 255, 255, 7]
        guard case let .message(os, or, oh, op, ot, od) = try StreamEntry.decode(old) else { return XCTFail("not a message") }
        XCTAssertEqual(os, "a")
        XCTAssertNil(or)
        XCTAssertNil(oh)
        XCTAssertEqual(op, [7])
        XCTAssertEqual([ot, od], [9, 9])
        XCTAssertEqual(StreamEntry.encodeMessage(subject: "a", reply: nil, headers: nil, payload: [7], timestamp: 9), old)
        for n in 0..<(bytes.count - 2) {
            XCTAssertThrowsError(try StreamEntry.decode(Array(bytes[..<n])), "prefix of \(n) bytes")
        }
    }

    func test_op_roundTrips() throws {
        let bytes = StreamEntry.encodeOp(["op": "purge", "keep": 3])
        guard case let .op(o) = try StreamEntry.decode(bytes) else { return XCTFail("not an op") }
        XCTAssertEqual(o["op"] as? String, "purge")
        XCTAssertEqual((o["keep"] as? NSNumber)?.intValue, 3)
    }

    func test_everyTruncation_throwsOrDecodesAShorterPayload() {
        let bytes = StreamEntry.encodeMessage(subject: "x.y", reply: "r", headers: [1, 2, 3], payload: [9, 9], timestamp: 5)
        // Cutting inside the fixed part or a length-prefixed field must throw, never trap.
        let fixedEnd = bytes.count - 2
        for n in 0..<fixedEnd {
            XCTAssertThrowsError(try StreamEntry.decode(Array(bytes[..<n])), "prefix of \(n) bytes")
        }
    }

    func test_hostileLengths_andTags_throw() {
        var huge = StreamEntry.encodeMessage(subject: "s", reply: nil, headers: nil, payload: [], timestamp: 0)
        huge[9] = 0xFE; huge[10] = 0xFF; huge[11] = 0xFF; huge[12] = 0x7F // subject length ~2^31
        XCTAssertThrowsError(try StreamEntry.decode(huge))
        XCTAssertThrowsError(try StreamEntry.decode([0xEE, 0, 0]))
        XCTAssertThrowsError(try StreamEntry.decode([2] + Array("{not json".utf8)))
        var rng = UInt64(0x5EED)
        let valid = StreamEntry.encodeMessage(subject: "orders.1", reply: "_INBOX.1", headers: [1], payload: [2, 3], timestamp: 9)
        for _ in 0..<2_000 {
            var b = valid
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            b[Int(rng >> 33) % b.count] = UInt8(truncatingIfNeeded: rng >> 17)
            _ = try? StreamEntry.decode(b) // must not trap
        }
    }

    func test_consumerRecord_roundTrips_andRefusesBadNames() throws {
        let record = Array(#"{"name":"c"}"#.utf8)
        let bytes = StreamEntry.encodeConsumerRecord(name: "c1", record: record)
        guard case let .consumerRecord(name, r) = try StreamEntry.decode(bytes) else { return XCTFail("not a record") }
        XCTAssertEqual(name, "c1")
        XCTAssertEqual(r, record)
        for n in 0..<7 { XCTAssertThrowsError(try StreamEntry.decode(Array(bytes[..<n])), "prefix of \(n) bytes") }
        // A name that would leave the consumers directory is refused, never written.
        XCTAssertThrowsError(try StreamEntry.decode(StreamEntry.encodeConsumerRecord(name: "../x", record: record)))
        XCTAssertThrowsError(try StreamEntry.decode(StreamEntry.encodeConsumerRecord(name: "", record: record)))
    }

    func test_retentionRemoved_roundTripsAsRuns_andSplitsLongLists() throws {
        func runs(_ entry: [UInt8]) throws -> [Range<UInt64>] {
            guard case let .retentionRemoved(r) = try StreamEntry.decode(entry) else { XCTFail("not a removal"); return [] }
            return r
        }
        let one = StreamEntry.encodeRetentionRemoved([1, 2, 3, 7, 9, 10, UInt64.max - 1])
        XCTAssertEqual(one.count, 1)
        XCTAssertEqual(try runs(one[0]), [1..<4, 7..<8, 9..<11, (UInt64.max - 1)..<UInt64.max])
        XCTAssertEqual(StreamEntry.encodeRetentionRemoved([]).count, 0)

        // Every other sequence: one run each, so the list needs three entries.
        let n = StreamEntry.maxRetentionRanges * 2 + 5
        let sparse = (0..<UInt64(n)).map { 2 * $0 + 1 }
        let entries = StreamEntry.encodeRetentionRemoved(sparse)
        XCTAssertEqual(entries.count, 3)
        XCTAssertEqual(try entries.flatMap(runs).flatMap { Array($0) }, sparse)
    }

    func test_retentionRemoved_hostileBytes_throw() {
        func entry(_ first: UInt64, _ count: UInt32) -> [UInt8] {
            var out: [UInt8] = [6]
            withUnsafeBytes(of: first.littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: count.littleEndian) { out.append(contentsOf: $0) }
            return out
        }
        XCTAssertNoThrow(try StreamEntry.decode(entry(5, 1)))
        let bads: [[UInt8]] = [[6], Array(entry(5, 1).dropLast()), entry(5, 1) + [0], entry(0, 1), entry(5, 0), entry(UInt64.max, 2)]
        for bad in bads {
            XCTAssertThrowsError(try StreamEntry.decode(bad), "\(bad)")
        }
        let run = Array(entry(5, 1).dropFirst())
        let tooMany: [UInt8] = [6] + Array(repeating: run, count: StreamEntry.maxRetentionRanges + 1).flatMap { $0 }
        XCTAssertThrowsError(try StreamEntry.decode(tooMany))
    }

    func test_marker_roundTrips_andHostileBytesThrow() throws {
        let bytes = StreamEntry.encodeMarker(subject: "$KV.b.key", timestamp: -7)
        guard case let .marker(subject, timestamp) = try StreamEntry.decode(bytes) else { return XCTFail("not a marker") }
        XCTAssertEqual(subject, "$KV.b.key")
        XCTAssertEqual(timestamp, -7)
        // Truncated (no subject), and subjects no leader proposes (wildcards, empty tokens).
        for bad in [Array(bytes.prefix(9)), Array(bytes.prefix(3)), [bytes[0]] + Array(bytes[1..<9]) + Array("a.*".utf8),
                    [bytes[0]] + Array(bytes[1..<9]) + Array("a..b".utf8)] {
            XCTAssertThrowsError(try StreamEntry.decode(bad))
        }
    }
}
