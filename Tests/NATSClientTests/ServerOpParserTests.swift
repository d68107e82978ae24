import NIOCore
import XCTest
@testable import NATSClient

final class ServerOpParserTests: XCTestCase {
    private static let info = #"INFO {"server_id":"NABC","server_name":"n1","version":"2.15.1","proto":1,"headers":true,"max_payload":1048576,"port":4222}"#

    /// One of every op the server sends, in a single byte stream, with the values expected.
    private static let corpus: [(wire: String, op: ServerOp)] = {
        var infoValue = ServerInfo(serverID: "NABC", version: "2.15.1")
        infoValue.serverName = "n1"
        infoValue.proto = 1
        infoValue.headers = true
        infoValue.maxPayload = 1_048_576
        infoValue.port = 4222
        var h = NATSHeaders()
        h.append("Bar", "Baz")
        h.append("Bar", "Qux")
        var noResponders = NATSHeaders()
        noResponders.status = 503
        noResponders.append("Nats-Subject", "svc.echo")
        var timeout = NATSHeaders()
        timeout.status = 408
        timeout.statusDescription = "Request Timeout"
        return [
            (info + "\r\n", .info(infoValue)),
            ("PING\r\n", .ping),
            ("PONG\r\n", .pong),
            ("+OK\r\n", .ok),
            ("-ERR 'Authorization Violation'\r\n", .err("Authorization Violation")),
            ("MSG greet.joe 7 5\r\nhello\r\n", .msg(msg("greet.joe", 7, nil, nil, "hello"))),
            ("MSG greet.joe 7 _INBOX.a.b 5\r\nhello\r\n", .msg(msg("greet.joe", 7, "_INBOX.a.b", nil, "hello"))),
            ("msg empty 1 0\r\n\r\n", .msg(msg("empty", 1, nil, nil, ""))),
            ("MSG crlf 2 6\r\na\r\nb\r\n\r\n", .msg(msg("crlf", 2, nil, nil, "a\r\nb\r\n"))),
            ("HMSG greet.joe 9 32 37\r\nNATS/1.0\r\nBar: Baz\r\nBar: Qux\r\n\r\nhello\r\n",
             .msg(msg("greet.joe", 9, nil, h, "hello"))),
            ("HMSG _INBOX.x.1 3 _INBOX.r 40 40\r\nNATS/1.0 503\r\nNats-Subject: svc.echo\r\n\r\n\r\n",
             .msg(msg("_INBOX.x.1", 3, "_INBOX.r", noResponders, ""))),
            ("HMSG\tpull\t4\t32 32\r\nNATS/1.0 408 Request Timeout\r\n\r\n\r\n", .msg(msg("pull", 4, nil, timeout, ""))),
        ]
    }()

    private static func msg(_ subject: String, _ sid: UInt64, _ reply: String?, _ headers: NATSHeaders?, _ payload: String) -> InboundMessage {
        InboundMessage(subject: subject, sid: sid, reply: reply, headers: headers, payload: ByteBuffer(string: payload))
    }

    private static var wholeStream: [UInt8] { Array(corpus.map(\.wire).joined().utf8) }
    private static var expectedOps: [ServerOp] { corpus.map(\.op) }

    /// Parses everything available, appending `chunks` one after another.
    private func parse(_ chunks: [ArraySlice<UInt8>], parser: inout ServerOpParser) throws -> [ServerOp] {
        var buffer = ByteBuffer()
        var ops: [ServerOp] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let op = try parser.next(from: &buffer) { ops.append(op) }
        }
        XCTAssertEqual(buffer.readableBytes, 0, "bytes left unparsed")
        return ops
    }

    func test_next_withWholeStream_returnsEveryOpInOrder() throws {
        var parser = ServerOpParser()
        let bytes = Self.wholeStream
        XCTAssertEqual(try parse([bytes[...]], parser: &parser), Self.expectedOps)
    }

    func test_next_withStreamSplitAtEveryByte_returnsSameOps() throws {
        let bytes = Self.wholeStream
        for split in 0...bytes.count {
            var parser = ServerOpParser()
            let ops = try parse([bytes[..<split], bytes[split...]], parser: &parser)
            XCTAssertEqual(ops, Self.expectedOps, "split at byte \(split)")
        }
    }

    func test_next_withEachOpSplitAtEveryPairOfBytes_returnsThatOp() throws {
        for (wire, op) in Self.corpus {
            let bytes = Array(wire.utf8)
            for first in 0...bytes.count {
                for second in first...bytes.count {
                    var parser = ServerOpParser()
                    let ops = try parse([bytes[..<first], bytes[first..<second], bytes[second...]], parser: &parser)
                    XCTAssertEqual(ops, [op], "\(wire.debugDescription) split at \(first),\(second)")
                }
            }
        }
    }

    func test_next_withOneByteAtATime_returnsSameOps() throws {
        var parser = ServerOpParser()
        let bytes = Self.wholeStream
        let chunks = (0..<bytes.count).map { bytes[$0..<($0 + 1)] }
        XCTAssertEqual(try parse(chunks, parser: &parser), Self.expectedOps)
    }

    func test_next_withIncompleteBody_consumesControlLineOnceAndWaits() throws {
        var parser = ServerOpParser()
        var buffer = ByteBuffer(string: "PING\r\nMSG a 1 5\r\nhel")
        XCTAssertEqual(try parser.next(from: &buffer), .ping)
        XCTAssertNil(try parser.next(from: &buffer))
        XCTAssertEqual(buffer.readableBytes, 3, "only the body bytes stay, the control line is consumed once")
        buffer.writeString("lo\r\n")
        XCTAssertEqual(try parser.next(from: &buffer), .msg(Self.msg("a", 1, nil, nil, "hello")))
    }

    func test_next_withLowercaseAndBareLF_accepts() throws {
        var parser = ServerOpParser()
        var buffer = ByteBuffer(string: "ping\npong\r\n+ok\r\n")
        XCTAssertEqual(try parser.next(from: &buffer), .ping)
        XCTAssertEqual(try parser.next(from: &buffer), .pong)
        XCTAssertEqual(try parser.next(from: &buffer), .ok)
    }

    // MARK: - Bad input

    private func assertProtocolError(_ wire: String, maxControlLine: Int = 4096, file: StaticString = #filePath, line: UInt = #line) {
        var parser = ServerOpParser(maxControlLineBytes: maxControlLine, maxMessageBytes: 1 << 20)
        var buffer = ByteBuffer(string: wire)
        XCTAssertThrowsError(try { while try parser.next(from: &buffer) != nil {} }(), wire.debugDescription, file: file, line: line) { error in
            guard case NATSError.protocolError = error else {
                return XCTFail("expected protocolError, got \(error)", file: file, line: line)
            }
        }
    }

    func test_next_withUnknownOp_throwsProtocolError() { assertProtocolError("HELLO world\r\n") }
    func test_next_withNonNumericSize_throwsProtocolError() { assertProtocolError("MSG a 1 5x\r\nhello\r\n") }
    func test_next_withNegativeSize_throwsProtocolError() { assertProtocolError("MSG a 1 -5\r\nhello\r\n") }
    func test_next_withTooFewArguments_throwsProtocolError() { assertProtocolError("MSG a 5\r\nhello\r\n") }
    func test_next_withTooManyArguments_throwsProtocolError() { assertProtocolError("MSG a 1 r x 5\r\nhello\r\n") }
    func test_next_withNonNumericSid_throwsProtocolError() { assertProtocolError("MSG a s1 5\r\nhello\r\n") }
    func test_next_withBodyNotFollowedByCRLF_throwsProtocolError() { assertProtocolError("MSG a 1 3\r\nhello\r\n") }
    func test_next_withHeaderSizeAboveTotal_throwsProtocolError() { assertProtocolError("HMSG a 1 20 10\r\nNATS/1.0\r\n\r\n\r\n") }
    func test_next_withHeaderBlockWithoutVersion_throwsProtocolError() { assertProtocolError("HMSG a 1 9 9\r\nBar: Baz\r\n\r\n") }
    func test_next_withSizeAboveMax_throwsProtocolError() { assertProtocolError("MSG a 1 99999999999999999999999\r\n") }
    func test_next_withInvalidInfoJSON_throwsProtocolError() { assertProtocolError("INFO {nope\r\n") }
    func test_next_withControlLineOverLimit_throwsWithoutWaitingForLF() {
        assertProtocolError("INFO " + String(repeating: "x", count: 200), maxControlLine: 100)
    }
}
