import XCTest
@testable import Raft

final class WireCodecTests: XCTestCase {
    private let n1 = NodeID(1), n2 = NodeID(2)

    private func batch(_ messages: [Message] = [], heartbeats: [CoalescedHeartbeat] = [],
                       responses: [CoalescedHeartbeat] = []) -> MessageBatch {
        var b = MessageBatch(from: n1, to: n2)
        b.messages = messages
        b.heartbeats = heartbeats
        b.heartbeatResponses = responses
        return b
    }

    private func message(_ body: MessageBody, group: UInt64 = 7) -> Message {
        Message(group: GroupID(group), from: n1, to: n2, term: Term(3), body: body)
    }

    private func assertRoundTrip(_ b: MessageBatch, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = RaftWireCodec.encode(b)
        XCTAssertEqual(try RaftWireCodec.decode(bytes), b, file: file, line: line)
        let viaBuffer = bytes.withUnsafeBytes { try? RaftWireCodec.decode($0) }
        XCTAssertEqual(viaBuffer, b, file: file, line: line)
    }

    private func assertThrows(_ bytes: [UInt8], _ kind: RaftWireError.Kind,
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try RaftWireCodec.decode(bytes), file: file, line: line) { error in
            XCTAssertEqual((error as? RaftWireError)?.kind, kind, "\(error)", file: file, line: line)
        }
    }

    /// One message of every kind, including the edge values of every field.
    private var everyKind: [MessageBody] {
        let max = UInt64.max
        return [
            .requestVote(VoteRequest(lastLogIndex: LogIndex(10), lastLogTerm: Term(2), preVote: false, transfer: false)),
            .requestVote(VoteRequest(lastLogIndex: LogIndex(max), lastLogTerm: Term(max), preVote: true, transfer: true)),
            .voteResponse(VoteResponse(granted: true, preVote: false)),
            .voteResponse(VoteResponse(granted: false, preVote: true)),
            .appendEntries(AppendEntries(prevLogIndex: .zero, prevLogTerm: .zero, entries: [], commit: .zero)),
            .appendEntries(AppendEntries(prevLogIndex: LogIndex(4), prevLogTerm: Term(2), entries: [
                Entry(term: Term(3), index: LogIndex(5), type: .empty),
                Entry(term: Term(3), index: LogIndex(6), type: .normal, data: Array(0...255)),
                Entry(term: Term(3), index: LogIndex(7), type: .confChange,
                      data: ConfChangeRecord(change: ConfChange(.addVoter, NodeID(4)),
                                             result: ConfState(voters: [NodeID(1), NodeID(4)])).encoded()),
            ], commit: LogIndex(5))),
            .appendResponse(AppendResponse(index: LogIndex(9), reject: false)),
            .appendResponse(AppendResponse(index: LogIndex(9), reject: true, hintIndex: LogIndex(6), hintTerm: Term(2))),
            .heartbeat(Heartbeat(commit: LogIndex(5))),
            .heartbeat(Heartbeat(commit: LogIndex(5), context: [], round: max, quiesce: true)),
            .heartbeat(Heartbeat(commit: LogIndex(5), context: [1, 2, 3], round: 77, quiesce: false)),
            .heartbeatResponse(HeartbeatResponse()),
            .heartbeatResponse(HeartbeatResponse(context: [9, 9], round: 12)),
            .heartbeatResponse(HeartbeatResponse(context: [], round: max)),
            .installSnapshot(Snapshot()),
            .installSnapshot(Snapshot(metadata: SnapshotMetadata(
                index: LogIndex(100), term: Term(4),
                conf: ConfState(voters: [NodeID(1), NodeID(2), NodeID(max)], learners: [NodeID(5)])),
                data: Array(repeating: 0xAB, count: 1000))),
            .timeoutNow,
            .readIndexRequest(context: []),
            .readIndexRequest(context: Array("read-1".utf8)),
            .readIndexResponse(index: LogIndex(42), context: Array("read-1".utf8)),
        ]
    }

    func test_roundTrip_everyMessageKind() {
        for body in everyKind { assertRoundTrip(batch([message(body)])) }
        assertRoundTrip(batch(everyKind.map { message($0) }))
        // Every tag 0...9 is covered.
        XCTAssertEqual(Set(everyKind.map(\.name)).count, 12)
    }

    func test_roundTrip_emptyBatchAndExtremeIDs() {
        assertRoundTrip(batch())
        var b = MessageBatch(from: NodeID(.max), to: NodeID(0))
        b.messages = [Message(group: GroupID(.max), from: NodeID(.max), to: NodeID(0), term: Term(.max), body: .timeoutNow)]
        b.heartbeats = [CoalescedHeartbeat(group: GroupID(.max), term: Term(.max), commit: LogIndex(.max), round: .max, quiesce: true),
                        CoalescedHeartbeat(group: GroupID(0), term: .zero, commit: .zero, round: 0, quiesce: false)]
        b.heartbeatResponses = b.heartbeats.reversed()
        assertRoundTrip(b)
    }

    func test_roundTrip_manyGroups() {
        var b = batch()
        for g in 0..<5_000 {
            b.heartbeats.append(CoalescedHeartbeat(group: GroupID(UInt64(g)), term: Term(UInt64(g % 7 + 1)),
                                                   commit: LogIndex(UInt64(g * 31)), round: 864_000 + UInt64(g % 3),
                                                   quiesce: g % 5 == 0))
            b.heartbeatResponses.append(CoalescedHeartbeat(group: GroupID(UInt64(g) + 1_000_000), term: Term(2),
                                                           commit: .zero, round: 863_990, quiesce: false))
            if g % 10 == 0 {
                b.messages.append(message(everyKind[g / 10 % everyKind.count], group: UInt64(g)))
            }
        }
        assertRoundTrip(b)
        XCTAssertEqual(try RaftWireCodec.decode(RaftWireCodec.encode(b)).expanded(), b.expanded())
    }

    /// What HeartbeatCoalescer produces from real node output survives the wire unchanged.
    func test_roundTrip_coalescerOutput() {
        var c = HeartbeatCoalescer(from: n1)
        for g in 0..<100 {
            let body: MessageBody = g % 3 == 0 ? .heartbeatResponse(HeartbeatResponse(round: 5))
                : g % 3 == 1 ? .heartbeat(Heartbeat(commit: LogIndex(UInt64(g)), round: 5)) : .timeoutNow
            c.add(Message(group: GroupID(UInt64(g)), from: n1, to: n2, term: Term(1), body: body))
        }
        for b in c.drain() { assertRoundTrip(b) }
    }

    // MARK: - Seeded random batches

    func test_property_seededRandomBatches_roundTrip() {
        var rng = SplitMix64(seed: 0xC0DEC)
        var bytesTotal = 0
        for _ in 0..<3_000 {
            let b = RandomBatch.make(&rng)
            let bytes = RaftWireCodec.encode(b)
            bytesTotal += bytes.count
            guard let decoded = try? RaftWireCodec.decode(bytes) else { return XCTFail("valid encoding rejected: \(b)") }
            XCTAssertEqual(decoded, b)
        }
        XCTAssertGreaterThan(bytesTotal, 100_000)   // the generator is not producing trivial batches
    }

    func test_everyTruncation_throws() {
        var rng = SplitMix64(seed: 77)
        var samples = everyKind.map { RaftWireCodec.encode(batch([message($0)])) }
        for _ in 0..<40 { samples.append(RaftWireCodec.encode(RandomBatch.make(&rng))) }
        for bytes in samples {
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try RaftWireCodec.decode(Array(bytes[..<cut])), "prefix \(cut) of \(bytes.count)")
            }
        }
    }

    /// Flipped bits, replaced, inserted and deleted bytes: decoding throws or yields a batch that
    /// re-encodes to exactly the mutated bytes (the format has one encoding per batch).
    func test_seededMutations_neverCrash_andDecodedInputIsCanonical() {
        var rng = SplitMix64(seed: 0xBADB17E5)
        var decodedCount = 0, rejected = 0
        for _ in 0..<20_000 {
            var bytes = RaftWireCodec.encode(RandomBatch.make(&rng, maxItems: 4))
            for _ in 0...rng.next(below: 3) {
                let i = rng.next(below: bytes.count)
                switch rng.next(below: 4) {
                case 0: bytes[i] ^= UInt8(1) << UInt8(rng.next(below: 8))
                case 1: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                default: if bytes.count > 1 { bytes.remove(at: i) }
                }
            }
            do {
                let decoded = try RaftWireCodec.decode(bytes)
                XCTAssertEqual(RaftWireCodec.encode(decoded), bytes)
                decodedCount += 1
            } catch is RaftWireError {
                rejected += 1
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        // Both outcomes occur, so the test exercises the decoder beyond its error paths.
        XCTAssertGreaterThan(decodedCount, 100)
        XCTAssertGreaterThan(rejected, 1_000)
    }

    func test_randomGarbage_neverCrashes() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<20_000 {
            var bytes = (0..<rng.next(below: 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !bytes.isEmpty && rng.next(below: 2) == 0 { bytes[0] = RaftWireCodec.version }
            if let b = try? RaftWireCodec.decode(bytes) { XCTAssertEqual(RaftWireCodec.encode(b), bytes) }
        }
    }

    // MARK: - Hostile input, one rule each

    func test_hugeCount_isRejectedBeforeAllocating() {
        // version, from, to, heartbeat count = 2^60 (9 varint bytes).
        var bytes: [UInt8] = [1, 1, 2]
        bytes += [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]
        assertThrows(bytes, .lengthExceedsInput(1 << 60))
        // An entry whose data length claims 2^60 bytes.
        var valid = RaftWireCodec.encode(batch([message(.readIndexRequest(context: [7]))]))
        valid.removeLast(2)
        valid += [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]
        assertThrows(valid, .lengthExceedsInput(1 << 60))
        // A count that fits the remaining bytes only if each element were smaller than its minimum.
        assertThrows([1, 1, 2, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], .lengthExceedsInput(6))
        XCTAssertEqual(try RaftWireCodec.decode([1, 1, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).heartbeats.count, 5)
    }

    func test_unknownVersion_isRejected() {
        var bytes = RaftWireCodec.encode(batch())
        bytes[0] = 2
        assertThrows(bytes, .unsupportedVersion(2))
        assertThrows([], .truncated)
    }

    func test_unknownTagsAndFlags_areRejected() {
        let good = RaftWireCodec.encode(batch([message(.timeoutNow)]))
        var bad = good
        bad[bad.count - 1] = 10
        assertThrows(bad, .unknownMessageType(10))

        let app = message(.appendEntries(AppendEntries(prevLogIndex: .zero, prevLogTerm: .zero,
                                                       entries: [Entry(term: Term(1), index: LogIndex(1))], commit: .zero)))
        bad = RaftWireCodec.encode(batch([app]))
        bad[bad.count - 2] = 3    // entry type, before the empty data's length byte
        assertThrows(bad, .unknownEntryType(3))

        bad = RaftWireCodec.encode(batch([message(.voteResponse(VoteResponse(granted: true, preVote: true)))]))
        bad[bad.count - 1] = 0x04
        assertThrows(bad, .invalidFlags(0x04))

        let hb = CoalescedHeartbeat(group: GroupID(1), term: Term(1), commit: .zero, round: 0, quiesce: false)
        let hbBytes = RaftWireCodec.encode(batch(heartbeats: [hb]))
        // Tail: group 1, header (term present), term 1, two empty counts.
        XCTAssertEqual(Array(hbBytes.suffix(5)), [1, 0x02, 1, 0, 0])
        bad = hbBytes
        bad[bad.count - 4] = 0x12
        assertThrows(bad, .invalidFlags(0x12))
    }

    func test_heartbeatFieldsMarkedPresentButRedundant_areRejected() {
        let hb = CoalescedHeartbeat(group: GroupID(1), term: Term(1), commit: .zero, round: 0, quiesce: false)
        var bad = RaftWireCodec.encode(batch(heartbeats: [hb]))
        bad[bad.count - 3] = 0    // the term equal to the previous one (0) yet written
        assertThrows(bad, .nonCanonical("repeated heartbeat term"))
        bad = RaftWireCodec.encode(batch(heartbeats: [hb]))
        bad[bad.count - 4] = 0x06
        bad.insert(0, at: bad.count - 2)   // commit 0 written although zero is implied
        assertThrows(bad, .nonCanonical("zero heartbeat commit"))
        bad = RaftWireCodec.encode(batch(heartbeats: [hb]))
        bad[bad.count - 4] = 0x0A
        bad.insert(0, at: bad.count - 2)   // a round delta of 0
        assertThrows(bad, .nonCanonical("repeated heartbeat round"))
    }

    func test_trailingBytes_areRejected() {
        assertThrows(RaftWireCodec.encode(batch([message(.timeoutNow)])) + [0], .trailingBytes(1))
    }

    func test_malformedVarints_areRejected() {
        // from = 0 written in two bytes.
        assertThrows([1, 0x80, 0x00, 2, 0, 0, 0], .malformedVarint)
        // from > 2^64.
        assertThrows([1] + Array(repeating: 0xFF, count: 9) + [0x02, 2, 0, 0, 0], .malformedVarint)
        // The largest value is accepted.
        XCTAssertEqual(try RaftWireCodec.decode([1] + Array(repeating: 0xFF, count: 9) + [0x01, 2, 0, 0, 0]).from,
                       NodeID(.max))
    }

    func test_nonCanonicalMembership_isRejected() {
        let snap = message(.installSnapshot(Snapshot(metadata: SnapshotMetadata(
            index: LogIndex(1), term: Term(1), conf: ConfState(voters: [NodeID(1), NodeID(2)], learners: [NodeID(3)])))))
        let good = RaftWireCodec.encode(batch([snap]))
        // Tail: voters [2, 1, 2], learners [1, 3], data [0].
        let tailStart = good.count - 6
        XCTAssertEqual(Array(good[tailStart...]), [2, 1, 2, 1, 3, 0])
        var bad = good
        bad[tailStart + 1] = 2; bad[tailStart + 2] = 1
        assertThrows(bad, .nonCanonical("node ids not strictly ascending"))
        bad = good
        bad[tailStart + 4] = 2
        assertThrows(bad, .nonCanonical("learner n2 is also a voter"))
    }

    func test_errorDescription_namesTheProblemAndOffset() {
        XCTAssertEqual(RaftWireError(.trailingBytes(3), at: 17).description, "raft wire: 3 trailing bytes after the batch at byte 17")
        XCTAssertThrowsError(try RaftWireCodec.decode([1, 1])) { XCTAssertEqual(($0 as? RaftWireError)?.offset, 2) }
    }

    // MARK: - Sizes

    /// A coalesced heartbeat of a realistic group (id < 16384, commit < 2M, the flush's common
    /// round) costs 6 bytes on the wire, 7 when its term differs from the previous record's; a
    /// coalesced response about 3.
    func test_coalescedHeartbeat_costsAFewBytes() {
        func hb(_ g: Int, term: UInt64 = 3) -> CoalescedHeartbeat {
            CoalescedHeartbeat(group: GroupID(UInt64(g)), term: Term(term), commit: LogIndex(1_000_000 + UInt64(g)),
                               round: 864_000, quiesce: false)
        }
        func perRecord(_ hbs: [CoalescedHeartbeat], responses: Bool = false) -> Double {
            let one = RaftWireCodec.encode(responses ? batch(responses: [hbs[0]]) : batch(heartbeats: [hbs[0]])).count
            let all = RaftWireCodec.encode(responses ? batch(responses: hbs) : batch(heartbeats: hbs)).count
            return Double(all - one) / Double(hbs.count - 1)
        }
        XCTAssertEqual(RaftWireCodec.encode(batch()).count, 6)
        XCTAssertLessThanOrEqual(perRecord((1...10_000).map { hb($0) }), 6.0)
        XCTAssertLessThanOrEqual(perRecord((1...10_000).map { hb($0, term: UInt64($0 % 3 + 1)) }), 7.0)
        let responses = (1...10_000).map {
            CoalescedHeartbeat(group: GroupID(UInt64($0)), term: Term(3), commit: .zero, round: 864_000, quiesce: false)
        }
        XCTAssertLessThanOrEqual(perRecord(responses, responses: true), 3.0)
        let append = message(.appendEntries(AppendEntries(
            prevLogIndex: LogIndex(1_000_000), prevLogTerm: Term(3),
            entries: [Entry(term: Term(3), index: LogIndex(1_000_001), data: Array(repeating: 0x61, count: 128))],
            commit: LogIndex(1_000_000))), group: 1_000)
        // 6 bytes of batch header, 21 of message and entry header, the 128-byte payload.
        XCTAssertEqual(RaftWireCodec.encode(batch([append])).count, 6 + 21 + 128)
    }
}

/// Seeded random batches covering every message kind and varint length.
enum RandomBatch {
    static func make(_ rng: inout SplitMix64, maxItems: Int = 12) -> MessageBatch {
        var b = MessageBatch(from: NodeID(value(&rng)), to: NodeID(value(&rng)))
        b.heartbeats = (0..<rng.next(below: maxItems + 1)).map { _ in heartbeat(&rng) }
        b.heartbeatResponses = (0..<rng.next(below: maxItems + 1)).map { _ in heartbeat(&rng) }
        b.messages = (0..<rng.next(below: maxItems + 1)).map { _ in
            Message(group: GroupID(value(&rng)), from: NodeID(value(&rng)), to: NodeID(value(&rng)),
                    term: Term(value(&rng)), body: body(&rng))
        }
        return b
    }

    /// Values at and around every varint length boundary, plus small ones (the common case).
    static func value(_ rng: inout SplitMix64) -> UInt64 {
        switch rng.next(below: 4) {
        case 0: return UInt64(rng.next(below: 200))
        case 1: let bits = UInt64(rng.next(below: 64)); return (1 << bits) &+ UInt64(rng.next(below: 3)) &- 1
        case 2: return rng.next() >> UInt64(rng.next(below: 64))
        default: return UInt64.max - UInt64(rng.next(below: 3))
        }
    }

    static func bytes(_ rng: inout SplitMix64) -> [UInt8] {
        let n = rng.next(below: 10) == 0 ? rng.next(below: 400) : rng.next(below: 24)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    static func flag(_ rng: inout SplitMix64) -> Bool { rng.next(below: 2) == 0 }

    static func heartbeat(_ rng: inout SplitMix64) -> CoalescedHeartbeat {
        CoalescedHeartbeat(group: GroupID(value(&rng)), term: Term(value(&rng)), commit: LogIndex(value(&rng)),
                           round: value(&rng), quiesce: flag(&rng))
    }

    static func nodes(_ rng: inout SplitMix64) -> [NodeID] {
        (0..<rng.next(below: 6)).map { _ in NodeID(value(&rng)) }
    }

    static func body(_ rng: inout SplitMix64) -> MessageBody {
        switch rng.next(below: 10) {
        case 0: return .requestVote(VoteRequest(lastLogIndex: LogIndex(value(&rng)), lastLogTerm: Term(value(&rng)),
                                                preVote: flag(&rng), transfer: flag(&rng)))
        case 1: return .voteResponse(VoteResponse(granted: flag(&rng), preVote: flag(&rng)))
        case 2:
            let entries = (0..<rng.next(below: 5)).map { _ in
                Entry(term: Term(value(&rng)), index: LogIndex(value(&rng)),
                      type: EntryType(rawValue: UInt8(rng.next(below: 3)))!, data: bytes(&rng))
            }
            return .appendEntries(AppendEntries(prevLogIndex: LogIndex(value(&rng)), prevLogTerm: Term(value(&rng)),
                                                entries: entries, commit: LogIndex(value(&rng))))
        case 3: return .appendResponse(AppendResponse(index: LogIndex(value(&rng)), reject: flag(&rng),
                                                      hintIndex: LogIndex(value(&rng)), hintTerm: Term(value(&rng))))
        case 4: return .heartbeat(Heartbeat(commit: LogIndex(value(&rng)), context: flag(&rng) ? bytes(&rng) : nil,
                                            round: value(&rng), quiesce: flag(&rng)))
        case 5: return .heartbeatResponse(HeartbeatResponse(context: flag(&rng) ? bytes(&rng) : nil, round: value(&rng)))
        case 6:
            let conf = ConfState(voters: nodes(&rng), learners: nodes(&rng))
            return .installSnapshot(Snapshot(metadata: SnapshotMetadata(index: LogIndex(value(&rng)), term: Term(value(&rng)),
                                                                        conf: conf), data: bytes(&rng)))
        case 7: return .timeoutNow
        case 8: return .readIndexRequest(context: bytes(&rng))
        default: return .readIndexResponse(index: LogIndex(value(&rng)), context: bytes(&rng))
        }
    }
}
