import Foundation
import XCTest
@testable import ClusterServer

final class JetStreamStoreTests: XCTestCase {
    private func tempDir() -> String { NSTemporaryDirectory() + "js-store-\(UUID().uuidString)" }

    private func fill(_ s: MessageStore, _ subjects: [String]) {
        for (i, subj) in subjects.enumerated() {
            _ = try! s.append(subject: subj, headers: nil, payload: Array("m\(i + 1)".utf8), time: Int64(i + 1) * 1000)
        }
    }

    func test_memoryStore_appendLoadNextLast_followSequencesAndFilters() throws {
        let s = MemoryStore()
        fill(s, ["a.1", "b.1", "a.2", "a.1"])
        XCTAssertEqual(s.state.messages, 4)
        XCTAssertEqual(s.state.firstSeq, 1)
        XCTAssertEqual(s.state.lastSeq, 4)
        XCTAssertEqual(s.load(2)?.subject, "b.1")
        XCTAssertEqual(s.next(from: 2, filters: ["a.*"])?.seq, 3)
        XCTAssertEqual(s.next(from: 1, filters: ["a.1"])?.seq, 1)
        XCTAssertEqual(s.next(from: 2, filters: ["a.1"])?.seq, 4)
        XCTAssertEqual(s.last(matching: "a.>")?.seq, 4)
        XCTAssertEqual(s.last(matching: "b.1")?.seq, 2)
        XCTAssertEqual(s.count(from: 2, filters: ["a.*"]), 2)
        XCTAssertEqual(s.subjectCounts(matching: ">"), ["a.1": 2, "b.1": 1, "a.2": 1])
        XCTAssertEqual(s.firstSequence(atOrAfter: 2500), 3)
        XCTAssertEqual(s.state.bytes, UInt64((3 + 2 + 16) * 4))
    }

    func test_memoryStore_removeAndPurge_keepStateConsistent() throws {
        let s = MemoryStore()
        fill(s, ["a", "b", "a", "b", "a"])
        XCTAssertTrue(try s.remove(1))
        XCTAssertFalse(try s.remove(1))
        XCTAssertEqual(s.state.firstSeq, 2)
        XCTAssertTrue(try s.remove(3))
        XCTAssertEqual(s.state.numDeleted, 1)
        XCTAssertEqual(try s.purge(subject: "a", upTo: nil, keep: nil), 1)
        XCTAssertEqual(s.state.messages, 2)
        XCTAssertEqual(try s.purge(subject: nil, upTo: nil, keep: 1), 1)
        XCTAssertEqual(s.state.firstSeq, 4)
        XCTAssertEqual(try s.purge(subject: nil, upTo: nil, keep: nil), 1)
        XCTAssertEqual(s.state.messages, 0)
        XCTAssertEqual(s.state.firstSeq, 6, "empty store: first = last + 1")
        XCTAssertEqual(try s.append(subject: "c", headers: nil, payload: [], time: 1), 6)
    }

    func test_memoryStore_purgeUpToSequence_removesBelowOnly() throws {
        let s = MemoryStore()
        fill(s, ["a", "a", "a", "a"])
        XCTAssertEqual(try s.purge(subject: nil, upTo: 3, keep: nil), 2)
        XCTAssertEqual(s.state.firstSeq, 3)
    }

    func test_streamLogStore_reopen_replaysMessagesDeletesAndPurges() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = StreamConfig(name: "S")
        do {
            let s = try StreamLogStore(directory: dir, config: cfg)
            _ = try s.append(subject: "x", headers: Array("NATS/1.0\r\nA: b\r\n\r\n".utf8), payload: Array("one".utf8), time: 10)
            _ = try s.append(subject: "y", headers: nil, payload: Array("two".utf8), time: 20)
            _ = try s.append(subject: "x", headers: nil, payload: Array("three".utf8), time: 30)
            try s.remove(2)
            try s.sync()
            s.close()
        }
        let s = try StreamLogStore(directory: dir, config: cfg)
        XCTAssertEqual(s.state.messages, 2)
        XCTAssertEqual(s.state.lastSeq, 3)
        XCTAssertNil(s.load(2))
        XCTAssertEqual(s.load(1)?.headers.map { String(decoding: $0, as: UTF8.self) }, "NATS/1.0\r\nA: b\r\n\r\n")
        XCTAssertNil(s.load(3)?.headers, "no header block stays nil")
        XCTAssertEqual(s.last(matching: "*")?.seq, 3)
        XCTAssertEqual(s.count(from: 1, filters: ["x"]), 2)
        _ = try s.purge(subject: nil, upTo: nil, keep: nil)
        try s.sync()
        s.close()
        let again = try StreamLogStore(directory: dir, config: cfg)
        XCTAssertEqual(again.state.messages, 0)
        XCTAssertEqual(again.state.firstSeq, 4, "an emptied store keeps counting")
        XCTAssertEqual(try again.append(subject: "z", headers: nil, payload: [], time: 40), 4)
    }

    func test_streamLogStore_limits_discardOldTrims_discardNewRefuses() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var cfg = StreamConfig(name: "S")
        cfg.maxMsgsPerSubject = 2
        let s = try StreamLogStore(directory: dir, config: cfg)
        for i in 0..<4 { _ = try s.append(subject: "k", headers: nil, payload: [UInt8(i)], time: Int64(i)) }
        XCTAssertEqual(s.state.messages, 2)
        XCTAssertEqual(s.state.firstSeq, 3)
        cfg.maxMsgs = 2
        cfg.discard = .new
        try s.configure(cfg)
        XCTAssertThrowsError(try s.append(subject: "other", headers: nil, payload: [], time: 9)) {
            XCTAssertEqual($0 as? StoreError, .maxMessages)
        }
    }

    /// Bytes of the store's segment files (what its blocks take on disk; stores do not preallocate).
    private func segmentBytes(_ dir: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }
            .reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: dir + "/" + $1)[.size] as? Int) ?? 0) }
    }

    /// `compression: none` (NATS' default) stores raw blocks, `s2` compresses them, an update
    /// switches later appends, and every message reads back either way, also after a reopen.
    func test_streamLogStore_compressionFollowsTheStreamConfig_andUpdates() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var cfg = StreamConfig(name: "S")
        let payload = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        let s = try StreamLogStore(directory: dir, config: cfg)
        for i in 0..<40 { _ = try s.append(subject: "k", headers: nil, payload: payload, time: Int64(i)) }
        let raw = try segmentBytes(dir)
        XCTAssertGreaterThan(raw, 40 * 1000, "none: every payload byte is on disk")
        cfg.compression = "s2"
        try s.configure(cfg)
        for i in 40..<80 { _ = try s.append(subject: "k", headers: nil, payload: payload, time: Int64(i)) }
        let grown = try segmentBytes(dir) - raw
        XCTAssertLessThan(grown, 40 * 1000 / 4, "s2: the same 40 appends take a fraction")
        s.close()
        let again = try StreamLogStore(directory: dir, config: cfg)
        XCTAssertEqual(again.state.messages, 80)
        for seq: UInt64 in [1, 40, 41, 80] { XCTAssertEqual(again.load(seq)?.payload, payload) }
        cfg.compression = "none"
        try again.configure(cfg)
        let before = try segmentBytes(dir)
        for i in 80..<90 { _ = try again.append(subject: "k", headers: nil, payload: payload, time: Int64(i)) }
        XCTAssertGreaterThan(try segmentBytes(dir) - before, 10 * 1000, "back to raw blocks")
        again.close()
    }

    func test_streamLogStore_skipToFirstSeq_onEmptyStore() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try StreamLogStore(directory: dir, config: StreamConfig(name: "S"))
        try s.skip(toNext: 100)
        XCTAssertEqual(try s.append(subject: "a", headers: nil, payload: [], time: 1), 100)
    }

    func test_jsonObject_wrongType_givesGoStyleError() {
        let o = try! JSONObject.parse(Array("{\"max_msgs\":\"ten\",\"no_ack\":1}".utf8), typeName: "StreamConfig")
        XCTAssertThrowsError(try o.int64("max_msgs")) { e in
            XCTAssertEqual((e as? JSAPIError)?.errCode, 10025)
            XCTAssertEqual((e as? JSAPIError)?.text,
                           "invalid JSON: json: cannot unmarshal string into Go struct field StreamConfig.max_msgs of type int64")
        }
        XCTAssertThrowsError(try o.bool("no_ack"), "a number is not a bool")
        XCTAssertThrowsError(try JSONObject.parse(Array("[1]".utf8), typeName: "StreamConfig"))
        XCTAssertThrowsError(try JSONObject.parse(Array("{bad".utf8), typeName: "StreamConfig"))
        XCTAssertEqual(try JSONObject.parse(Array("  ".utf8), typeName: "X").fields.count, 0)
    }

    func test_headerBlock_valueLookupAndAppend() {
        let block = Array("NATS/1.0\r\nNats-Msg-Id: 42\r\nX: a b \r\n\r\n".utf8)
        XCTAssertEqual(NATSHeaderBlock.value("Nats-Msg-Id", in: block), "42")
        XCTAssertEqual(NATSHeaderBlock.value("X", in: block), "a b")
        XCTAssertNil(NATSHeaderBlock.value("nats-msg-id", in: block), "lookups are case-sensitive")
        let more = NATSHeaderBlock.appending([("Nats-Sequence", "7")], to: block)
        XCTAssertEqual(String(decoding: more, as: UTF8.self), "NATS/1.0\r\nNats-Msg-Id: 42\r\nX: a b \r\nNats-Sequence: 7\r\n\r\n")
        XCTAssertEqual(String(decoding: NATSHeaderBlock.make(status: "404 No Messages", []), as: UTF8.self),
                       "NATS/1.0 404 No Messages\r\n\r\n")
    }

    func test_time_formatAndParse_roundTripNanoseconds() {
        let ns: Int64 = 1_795_335_719_658_687_510
        let text = JSTime.format(ns)
        XCTAssertEqual(text, "2026-11-22T08:21:59.65868751Z")
        XCTAssertEqual(JSTime.parse(text), ns)
        XCTAssertEqual(JSTime.parse("2026-11-22T09:21:59+01:00"), 1_795_335_719_000_000_000)
        XCTAssertNil(JSTime.parse("yesterday"))
        XCTAssertEqual(JSTime.format(0), "0001-01-01T00:00:00Z")
    }

    func test_streamConfig_normalize_refusesAndDefaultsLikeNatsServer() throws {
        func cfg(_ json: String) throws -> StreamConfig {
            var c = try StreamConfig.decode(try JSONObject.parse(Array(json.utf8), typeName: "StreamConfig"))
            try c.normalize()
            return c
        }
        let d = try cfg("{\"name\":\"S\",\"max_msgs\":0}")
        XCTAssertEqual(d.subjects, ["S"])
        XCTAssertEqual(d.maxMsgs, -1)
        XCTAssertEqual(d.duplicateWindowNanos, 120_000_000_000)
        XCTAssertEqual(try cfg("{\"name\":\"S\",\"max_age\":1000000000}").duplicateWindowNanos, 1_000_000_000)
        XCTAssertThrowsError(try cfg("{\"name\":\"S\",\"num_replicas\":3}")) { XCTAssertEqual(($0 as? JSAPIError)?.errCode, 10074) }
        XCTAssertThrowsError(try cfg("{\"name\":\"a.b\"}")) { XCTAssertEqual(($0 as? JSAPIError)?.errCode, 10128) }
        XCTAssertThrowsError(try cfg("{\"name\":\"S\",\"bogus\":1}")) {
            XCTAssertEqual(($0 as? JSAPIError)?.text, "invalid JSON: json: unknown field \"bogus\"")
        }
        XCTAssertThrowsError(try cfg("{\"name\":\"S\",\"max_age\":1000000000,\"duplicate_window\":2000000000}")) {
            XCTAssertEqual(($0 as? JSAPIError)?.errCode, 10052)
        }
        XCTAssertThrowsError(try cfg("{\"name\":\"S\",\"subjects\":[\"a.>\",\"a.b\"]}"))
        XCTAssertThrowsError(try cfg("{\"name\":\"S\",\"retention\":\"sometimes\"}"))
        XCTAssertThrowsError(try cfg("{\"name\":\"S\",\"allow_rollup_hdrs\":true,\"deny_purge\":true}"))
    }

    func test_goDurationAndTTL_parse() {
        XCTAssertEqual(JetStreamService.parseGoDuration("1m30s"), 90_000_000_000)
        XCTAssertEqual(JetStreamService.parseGoDuration("250ms"), 250_000_000)
        XCTAssertNil(JetStreamService.parseGoDuration("soon"))
        XCTAssertEqual(Stream.parseTTL("5"), 5_000_000_000)
        XCTAssertEqual(Stream.parseTTL("never"), -1)
        XCTAssertNil(Stream.parseTTL("500ms"), "TTL under one second is refused")
    }
}
