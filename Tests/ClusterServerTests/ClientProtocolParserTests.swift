import NIOCore
import XCTest
@testable import ClusterServer

final class ClientProtocolParserTests: XCTestCase {
    private func parseAll(_ chunks: [[UInt8]], parser: inout ClientProtocolParser) throws -> [ClientOp] {
        var ops: [ClientOp] = []
        var buffer = ByteBuffer()
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let op = try parser.next(&buffer) { ops.append(op) }
            buffer.discardReadBytes()
        }
        return ops
    }

    private func bb(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    private let stream = "CONNECT {\"verbose\":false}\r\nPUB foo.bar 5\r\nhello\r\nPUB a reply.x 0\r\n\r\n"
        + "HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nsub foo.* q1 7\r\nSUB >\t9\r\nUNSUB 7 10\r\nUNSUB 9\r\nPING\r\npong\r\n"

    private var expected: [ClientOp] {
        [
            .connect(json: bb("{\"verbose\":false}")),
            .pub(subject: "foo.bar", reply: nil, payload: bb("hello")),
            .pub(subject: "a", reply: "reply.x", payload: bb("")),
            .hpub(subject: "h", reply: nil, headers: bb("NATS/1.0\r\n\r\n"), payload: bb("hi")),
            .sub(subject: "foo.*", queue: "q1", sid: "7"),
            .sub(subject: ">", queue: nil, sid: "9"),
            .unsub(sid: "7", max: 10),
            .unsub(sid: "9", max: nil),
            .ping, .pong,
        ]
    }

    func test_next_wholeStream_decodesEveryOp() throws {
        var p = ClientProtocolParser()
        XCTAssertEqual(try parseAll([Array(stream.utf8)], parser: &p), expected)
        XCTAssertTrue(p.isIdle)
    }

    func test_next_streamSplitAtEveryByte_decodesTheSameOps() throws {
        let bytes = Array(stream.utf8)
        for cut in 0...bytes.count {
            var p = ClientProtocolParser()
            let ops = try parseAll([Array(bytes[..<cut]), Array(bytes[cut...])], parser: &p)
            XCTAssertEqual(ops, expected, "split at \(cut)")
        }
    }

    func test_next_streamFedOneByteAtATime_decodesTheSameOps() throws {
        var p = ClientProtocolParser()
        XCTAssertEqual(try parseAll(stream.utf8.map { [$0] }, parser: &p), expected)
    }

    func test_next_seededRandomSplits_decodeTheSameOps() throws {
        var rng = SplitMix64(seed: 42)
        let bytes = Array(stream.utf8)
        for _ in 0..<200 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                let n = Int(rng.next() % 9) + 1
                chunks.append(Array(bytes[i..<min(bytes.count, i + n)]))
                i += n
            }
            var p = ClientProtocolParser()
            XCTAssertEqual(try parseAll(chunks, parser: &p), expected)
        }
    }

    func test_next_bareNewlineTerminator_isAccepted() throws {
        var p = ClientProtocolParser()
        XCTAssertEqual(try parseAll([Array("PING\nPUB x 1\r\na\r\n".utf8)], parser: &p),
                       [.ping, .pub(subject: "x", reply: nil, payload: bb("a"))])
    }

    func test_next_unknownOp_throwsUnknownOperation() {
        var p = ClientProtocolParser()
        XCTAssertThrowsError(try parseAll([Array("FOO bar\r\n".utf8)], parser: &p)) {
            XCTAssertEqual($0 as? ClientProtocolError, .unknownOperation)
        }
    }

    func test_next_controlLineOverLimitWithoutNewline_throws() {
        var p = ClientProtocolParser(maxControlLine: 16)
        XCTAssertThrowsError(try parseAll([Array("SUB aaaaaaaaaaaaaaaaaaaaaa".utf8)], parser: &p)) {
            XCTAssertEqual($0 as? ClientProtocolError, .maxControlLineExceeded)
        }
    }

    func test_next_payloadOverMax_throwsBeforePayloadArrives() {
        var p = ClientProtocolParser(maxPayload: 10)
        XCTAssertThrowsError(try parseAll([Array("PUB foo 11\r\n".utf8)], parser: &p)) {
            XCTAssertEqual($0 as? ClientProtocolError, .maxPayloadExceeded)
        }
    }

    func test_next_badSizes_throwBadArguments() {
        for line in ["PUB foo\r\n", "PUB foo -1\r\n", "PUB foo abc\r\n", "PUB a b c 1\r\n", "HPUB foo 10 5\r\n",
                     "SUB a b c d\r\n", "SUB  1\r\n", "PUB foo 99999999999999999999\r\n", "-ERR 'x'\r\n"] {
            var p = ClientProtocolParser()
            XCTAssertThrowsError(try parseAll([Array(line.utf8)], parser: &p), line) {
                guard case .badArguments = $0 as? ClientProtocolError else { return XCTFail("\(line): \($0)") }
            }
        }
    }

    func test_next_payloadLongerThanDeclared_failsWithoutDelivering() {
        for input in ["PUB foo 2\r\nhello\r\n", "PUB foo 5\r\nhelloPING\r\n", "PUB foo 2\nhi\n"] {
            var p = ClientProtocolParser()
            var buffer = ByteBuffer(string: input)
            XCTAssertThrowsError(try p.next(&buffer), input) {
                XCTAssertEqual($0 as? ClientProtocolError, .missingPayloadTerminator)
            }
        }
    }

    func test_next_opsWithoutArgumentsAndBlankLines_areUnknownOperations() {
        for line in ["PUB\r\n", "SUB\r\n", "UNSUB\r\n", "HPUB\r\n", "\r\n", " PING\r\n", "MSG foo 1 2\r\n",
                     "RS+ $G foo\r\n"] {
            var p = ClientProtocolParser()
            XCTAssertThrowsError(try parseAll([Array(line.utf8)], parser: &p), line) {
                XCTAssertEqual($0 as? ClientProtocolError, .unknownOperation, line)
            }
        }
    }

    func test_next_unsubWithUnparsableMax_isPlainUnsub() throws {
        var p = ClientProtocolParser()
        XCTAssertEqual(try parseAll([Array("UNSUB 1 x\r\nUNSUB 2 -1\r\n+OK\r\nPING \r\n".utf8)], parser: &p),
                       [.unsub(sid: "1", max: nil), .unsub(sid: "2", max: nil), .clientOK, .ping])
    }

    func test_errText_matchesNatsServerSpelling() {
        XCTAssertEqual(ClientProtocolError.unknownOperation.errText, "Unknown Protocol Operation")
        XCTAssertEqual(ClientProtocolError.maxControlLineExceeded.errText, "maximum control line exceeded")
        XCTAssertEqual(ClientProtocolError.maxPayloadExceeded.errText, "Maximum Payload Violation")
    }
}
