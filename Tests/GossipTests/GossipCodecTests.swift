import XCTest
@testable import Gossip

final class GossipCodecTests: XCTestCase {
    static let a = MemberID(name: "n1", address: "127.0.0.1:6222", token: "TOKENA")
    static let b = MemberID(name: "nœud-2", address: "[::1]:6223", token: "TOKENB")

    static var samples: [GossipMessage] {
        let ups = [MemberUpdate(member: b, status: .suspect(Incarnation(7))),
                   MemberUpdate(member: a, status: .left(Incarnation(UInt64.max)))]
        return [
            GossipMessage(from: a, incarnation: Incarnation(0), kind: .ping(seq: 1)),
            GossipMessage(from: a, incarnation: Incarnation(300), kind: .ack(seq: UInt64.max), updates: ups),
            GossipMessage(from: b, incarnation: Incarnation(1), kind: .pingReq(seq: 128, target: a), updates: ups),
            GossipMessage(from: b, incarnation: Incarnation(2), kind: .sync, updates: ups + ups),
            GossipMessage(from: a, incarnation: Incarnation(3), kind: .syncReply),
        ]
    }

    func test_roundTrip_everyKind() throws {
        for m in Self.samples {
            XCTAssertEqual(try GossipCodec.decode(GossipCodec.encode(m)), m)
        }
    }

    func test_truncatedAtEveryByte_isAnError() {
        for m in Self.samples {
            let bytes = GossipCodec.encode(m)
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(try GossipCodec.decode(bytes[0..<cut]), "cut at \(cut) of \(m.kind)")
            }
        }
    }

    func test_trailingBytes_areRejected() {
        let bytes = GossipCodec.encode(Self.samples[0]) + [0]
        XCTAssertThrowsError(try GossipCodec.decode(bytes)) { XCTAssertEqual($0 as? GossipCodecError, .trailingBytes(1)) }
    }

    func test_badHeaderFields_areNamedErrors() {
        var bytes = GossipCodec.encode(Self.samples[0])
        bytes[0] = 9
        XCTAssertThrowsError(try GossipCodec.decode(bytes)) { XCTAssertEqual($0 as? GossipCodecError, .unsupportedVersion(9)) }
        bytes[0] = 1
        bytes[1] = 77
        XCTAssertThrowsError(try GossipCodec.decode(bytes)) { XCTAssertEqual($0 as? GossipCodecError, .unknownKind(77)) }
    }

    func test_hostileLengths_areRejectedWithoutAllocating() {
        // A string length of 2^63 and an update count of 2^40.
        var huge: [UInt8] = [1, 1]
        GossipCodec.writeVarint(1 << 63, into: &huge)
        XCTAssertThrowsError(try GossipCodec.decode(huge)) { XCTAssertEqual($0 as? GossipCodecError, .stringTooLong(Int.max)) }
        var many: [UInt8] = Array(GossipCodec.encode(GossipMessage(from: Self.a, incarnation: Incarnation(0), kind: .sync)).dropLast())
        GossipCodec.writeVarint(1 << 40, into: &many)
        XCTAssertThrowsError(try GossipCodec.decode(many)) { XCTAssertEqual($0 as? GossipCodecError, .tooManyUpdates(1 << 40)) }
        let overlong: [UInt8] = [1, 1] + Array(repeating: 0xFF, count: 11)
        XCTAssertThrowsError(try GossipCodec.decode(overlong)) { XCTAssertEqual($0 as? GossipCodecError, .varintOverflow) }
    }

    func test_invalidUTF8_andUnknownStatus_areRejected() {
        let bad: [UInt8] = [1, 1, 2, 0xC3, 0x28, 0, 0, 0, 0, 0]
        XCTAssertThrowsError(try GossipCodec.decode(bad)) { XCTAssertEqual($0 as? GossipCodecError, .invalidUTF8) }
        var bytes = GossipCodec.encode(GossipMessage(from: Self.a, incarnation: Incarnation(0), kind: .sync,
                                                     updates: [MemberUpdate(member: Self.b, status: .alive(Incarnation(5)))]))
        bytes[bytes.count - 2] = 9 // the status byte precedes the last incarnation byte
        XCTAssertThrowsError(try GossipCodec.decode(bytes)) { XCTAssertEqual($0 as? GossipCodecError, .unknownStatus(9)) }
    }

    func test_randomGarbageAndMutations_neverTrap() {
        var rng = SplitMix64(seed: 42)
        let valid = Self.samples.map(GossipCodec.encode)
        var decoded = 0
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<rng.next(below: 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = valid[rng.next(below: valid.count)]
                for _ in 0...rng.next(below: 3) { bytes[rng.next(below: bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            if let m = try? GossipCodec.decode(bytes) {
                decoded += 1
                // Whatever decodes must re-encode to something that decodes the same.
                XCTAssertEqual(try GossipCodec.decode(GossipCodec.encode(m)), m)
            }
        }
        XCTAssertGreaterThan(decoded, 0, "some mutations keep a valid frame (e.g. a changed letter)")
    }

    func test_oversizedStringOnEncode_isCutAtACharacterBoundary() throws {
        let long = MemberID(name: String(repeating: "é", count: 600), address: "h:1", token: "t")
        let m = try GossipCodec.decode(GossipCodec.encode(GossipMessage(from: long, incarnation: Incarnation(0), kind: .sync)))
        XCTAssertEqual(m.from.name.utf8.count, GossipCodec.maxStringBytes)
        XCTAssertTrue(m.from.name.allSatisfy { $0 == "é" })
    }
}
