import Foundation
import StreamLog
import XCTest
@testable import ClusterServer

/// The snapshot archive's frames (`SnapshotArchive`) and the cluster restore's route frames
/// (`RestoreFrame`): what goes in comes out, whatever the pieces it is read in, and a damaged,
/// reordered or truncated archive is refused, never read as a shorter one.
final class SnapshotArchiveTests: XCTestCase {
    private let frames: [SnapshotArchive.Frame] = [
        .meta(Array(#"{"config":{"name":"S"},"state":{"last_seq":9}}"#.utf8)),
        .messages([
            CatchupMessage(seq: 2, time: 1_700_000_000_000_000_000, subject: "a.b", headers: Array("NATS/1.0\r\nX: y\r\n\r\n".utf8), payload: [1, 2, 3]),
            CatchupMessage(seq: 5, time: 0, subject: "c", headers: nil, payload: []),
        ]),
        .messages([CatchupMessage(seq: 9, time: 7, subject: "ü.x", headers: nil, payload: Array(repeating: 0xAB, count: 70_000))]),
        .consumer(Array(#"{"name":"d","config":{},"state":{}}"#.utf8)),
        .end(messages: 3, consumers: 1),
    ]

    private func archive(_ frames: [SnapshotArchive.Frame]) -> [UInt8] {
        frames.reduce(SnapshotArchive.magic) { $0 + SnapshotArchive.encode($1) }
    }

    /// Reads every frame of `bytes` fed in pieces of `piece` bytes; throws what the decoder or
    /// the validator throws; fails unless the archive ended cleanly.
    private func read(_ bytes: [UInt8], piece: Int) throws -> [SnapshotArchive.Frame] {
        var decoder = SnapshotArchive.Decoder()
        var validator = SnapshotArchive.Validator()
        var out: [SnapshotArchive.Frame] = []
        var at = 0
        while at < bytes.count {
            decoder.feed(Array(bytes[at..<min(at + piece, bytes.count)]))
            at += piece
            while let f = try decoder.next() {
                try validator.check(f)
                out.append(f)
            }
        }
        guard validator.ended, decoder.pending == 0 else { throw SnapshotArchive.FormatError(description: "unfinished") }
        return out
    }

    func test_frames_roundTrip_inPiecesOfAnySize() throws {
        let bytes = archive(frames)
        for piece in [1, 7, 19, 4096, bytes.count] {
            XCTAssertEqual(try read(bytes, piece: piece), frames, "pieces of \(piece)")
        }
    }

    func test_everyFlippedByte_isRefused() {
        let bytes = archive(frames)
        // Every position of a small archive (the big message's payload is sampled).
        for i in stride(from: 0, to: bytes.count, by: step(bytes.count)) {
            var damaged = bytes
            damaged[i] ^= 0x10
            XCTAssertThrowsError(try read(damaged, piece: 1000), "byte \(i)")
        }
    }

    private func step(_ n: Int) -> Int { n > 5000 ? 97 : 1 }

    func test_truncatedArchive_isRefusedAtEveryLength() {
        let bytes = archive(frames)
        for n in stride(from: 0, to: bytes.count, by: 53) {
            XCTAssertThrowsError(try read(Array(bytes[0..<n]), piece: 4096), "first \(n) bytes")
        }
    }

    func test_orderAndCounts_areChecked() {
        let meta = frames[0], msgs = frames[1], consumer = frames[3]
        let bad: [[SnapshotArchive.Frame]] = [
            [msgs, .end(messages: 2, consumers: 0)],                          // no meta
            [meta, meta, .end(messages: 0, consumers: 0)],                    // two metas
            [meta, consumer, msgs, .end(messages: 2, consumers: 1)],          // messages after consumers
            [meta, msgs, msgs, .end(messages: 4, consumers: 0)],              // sequences not ascending
            [meta, msgs, .end(messages: 3, consumers: 0)],                    // wrong message count
            [meta, msgs, .end(messages: 2, consumers: 1)],                    // wrong consumer count
            [meta, msgs, .end(messages: 2, consumers: 0), .end(messages: 2, consumers: 0)], // after the end
            [meta, msgs],                                                     // no end
        ]
        for (i, f) in bad.enumerated() {
            XCTAssertThrowsError(try read(archive(f), piece: 4096), "case \(i)")
        }
        XCTAssertNoThrow(try read(archive([meta, .end(messages: 0, consumers: 0)]), piece: 3))
    }

    func test_hostileInput_isRefusedWithoutAllocatingIt() {
        // Another file, another version, a frame claiming 4 GiB, an unknown tag with a good checksum.
        XCTAssertThrowsError(try read(Array("NATSARC1\n".utf8), piece: 3))
        var otherVersion = SnapshotArchive.magic
        otherVersion[otherVersion.count - 1] = 2
        XCTAssertThrowsError(try read(otherVersion + SnapshotArchive.encode(.end(messages: 0, consumers: 0)), piece: 64))
        XCTAssertThrowsError(try read(SnapshotArchive.magic + [2, 0xFF, 0xFF, 0xFF, 0xFF], piece: 64))
        var unknown = SnapshotArchive.encode(.consumer([1]))
        unknown[0] = 9
        let crc = unknown[0..<(unknown.count - 4)].withUnsafeBytes { CRC32C.checksum($0) }
        unknown.replaceSubrange((unknown.count - 4)..., with: withUnsafeBytes(of: crc.littleEndian, Array.init))
        XCTAssertThrowsError(try read(SnapshotArchive.magic + unknown, piece: 64))
        // A messages frame whose count claims more than it holds.
        var w = CatchupWire.Writer()
        w.u32(1_000_000)
        var lying: [UInt8] = [2]
        lying += withUnsafeBytes(of: UInt32(w.bytes.count).littleEndian, Array.init) + w.bytes
        let c2 = lying.withUnsafeBytes { CRC32C.checksum($0) }
        lying += withUnsafeBytes(of: c2.littleEndian, Array.init)
        XCTAssertThrowsError(try read(SnapshotArchive.magic + lying, piece: 64))
    }

    func test_compressibleMessages_areStoredSmaller_andABadBlockIsRefused() throws {
        let text = Array(String(repeating: "{\"order\":42,\"state\":\"shipped\"} ", count: 200).utf8)
        let msgs = (1...50).map { CatchupMessage(seq: UInt64($0), time: Int64($0), subject: "o.\($0)", headers: nil, payload: text) }
        let frame = SnapshotArchive.encode(.messages(msgs))
        XCTAssertEqual(frame[0], 5, "compressed")
        XCTAssertLessThan(frame.count, 50 * text.count / 5)
        let f: [SnapshotArchive.Frame] = [frames[0], .messages(msgs), .end(messages: 50, consumers: 0)]
        XCTAssertEqual(try read(archive(f), piece: 333), f)
        // A block that does not decompress to its stated length, under a good checksum.
        var body = Array(frame[5..<(frame.count - 4)])
        body[0] &+= 1
        var bad: [UInt8] = [5] + withUnsafeBytes(of: UInt32(body.count).littleEndian, Array.init) + body
        let crc = bad.withUnsafeBytes { CRC32C.checksum($0) }
        bad += withUnsafeBytes(of: crc.littleEndian, Array.init)
        XCTAssertThrowsError(try read(archive([frames[0]]) + bad + SnapshotArchive.encode(.end(messages: 50, consumers: 0)), piece: 64))
    }

    func test_messagesTheServerCouldNotHaveStored_areRefused() {
        let good = CatchupMessage(seq: 3, time: 5, subject: "a.b", headers: Array("NATS/1.0\r\nK: v\r\n\r\n".utf8), payload: [1])
        var bad: [CatchupMessage] = []
        for change in 0..<6 {
            var m = good
            switch change {
            case 0: m.seq = SnapshotArchive.maxSeq + 1
            case 1: m.time = -1
            case 2: m.subject = "a b"
            case 3: m.subject = "a.*"
            case 4: m.headers = Array("HTTP/1.1\r\n\r\n".utf8)
            default: m.headers = Array("NATS/1.0\r\nK: v".utf8)
            }
            bad.append(m)
        }
        XCTAssertNoThrow(try read(archive([frames[0], .messages([good]), .end(messages: 1, consumers: 0)]), piece: 64))
        for m in bad {
            XCTAssertThrowsError(try read(archive([frames[0], .messages([m]), .end(messages: 1, consumers: 0)]), piece: 64), "\(m)")
        }
    }

    func test_aRecordsConsumerName_mustBeAFileName() throws {
        func name(_ n: String) throws -> String {
            try Consumer.recordName(JSONObject.parse(JSJSON.encode(["name": n]), typeName: "ConsumerMeta"))
        }
        XCTAssertEqual(try name("orders-worker_1"), "orders-worker_1")
        for bad in ["", "../x", "a/b", "a\\b", "a\u{0}b", String(repeating: "n", count: 256)] {
            XCTAssertThrowsError(try name(bad), bad)
        }
        XCTAssertThrowsError(try Consumer.recordName(JSONObject.parse(Array("{}".utf8), typeName: "ConsumerMeta")))
    }

    func test_restoreFrames_roundTrip_andMalformedOnesAreRefused() throws {
        let all: [RestoreFrame] = [
            .batch(request: 3, stream: "ORDERS", [CatchupMessage(seq: 9, time: 4, subject: "o.1", headers: nil, payload: [7])]),
            .batch(request: 4, stream: "S", []),
            .commit(request: 5, stream: "S", lastSeq: 90, nextSeq: 101, records: [Array("{}".utf8), []]),
            .answer(request: 6, error: ""),
            .answer(request: 7, error: "not the leader"),
        ]
        for f in all {
            let bytes = f.encode()
            XCTAssertEqual(try RestoreFrame.decode(bytes), f)
            XCTAssertThrowsError(try RestoreFrame.decode(bytes + [0]), "trailing byte")
            for n in 0..<bytes.count { XCTAssertThrowsError(try RestoreFrame.decode(Array(bytes[0..<n])), "first \(n) bytes") }
        }
        XCTAssertThrowsError(try RestoreFrame.decode([9, 0, 0, 0, 0, 0, 0, 0, 0]))
    }
}
