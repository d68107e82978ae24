import NIOCore
import XCTest
@testable import ClusterServer

final class RouteProtocolParserTests: XCTestCase {
    private func bb(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    private func parseAll(_ chunks: [[UInt8]], parser: inout RouteProtocolParser) throws -> [RouteOp] {
        var ops: [RouteOp] = []
        var buffer = ByteBuffer()
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let op = try parser.next(&buffer) { ops.append(op) }
            buffer.discardReadBytes()
        }
        return ops
    }

    private func parse(_ text: String) throws -> [RouteOp] {
        var p = RouteProtocolParser()
        return try parseAll([Array(text.utf8)], parser: &p)
    }

    private let stream = "INFO {\"server_id\":\"A\"}\r\nCONNECT {\"name\":\"A\"}\r\nPING\r\npong\r\n"
        + "RS+ $G foo.*\r\nRS+ $G work w 3\r\nRS- $G foo.*\r\nrs- $G work w\r\n"
        + "RMSG $G foo.bar 5\r\nhello\r\nRMSG $G foo.bar _INBOX.1 2\r\nhi\r\n"
        + "RMSG $G work + _INBOX.2 w v 1\r\nx\r\nRMSG $G work | w 0\r\n\r\n"
        + "HMSG $G h reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHMSG $G h | q1 q2 12 12\r\nNATS/1.0\r\n\r\n\r\n"
        + "XMSG raft 3\r\nabc\r\n-ERR 'Cluster Name Mismatch'\r\n+OK\r\n"

    private var expected: [RouteOp] {
        [
            .info(json: bb("{\"server_id\":\"A\"}")),
            .connect(json: bb("{\"name\":\"A\"}")),
            .ping, .pong,
            .subscribe(account: "$G", subject: "foo.*", queue: nil, weight: 1),
            .subscribe(account: "$G", subject: "work", queue: "w", weight: 3),
            .unsubscribe(account: "$G", subject: "foo.*", queue: nil),
            .unsubscribe(account: "$G", subject: "work", queue: "w"),
            .message(RouteMessage(account: "$G", subject: "foo.bar", reply: nil, queues: [], headers: nil, payload: bb("hello"))),
            .message(RouteMessage(account: "$G", subject: "foo.bar", reply: "_INBOX.1", queues: [], headers: nil, payload: bb("hi"))),
            .message(RouteMessage(account: "$G", subject: "work", reply: "_INBOX.2", queues: ["w", "v"], headers: nil, payload: bb("x"))),
            .message(RouteMessage(account: "$G", subject: "work", reply: nil, queues: ["w"], headers: nil, payload: bb(""))),
            .message(RouteMessage(account: "$G", subject: "h", reply: "reply", queues: [], headers: bb("NATS/1.0\r\n\r\n"), payload: bb("hi"))),
            .message(RouteMessage(account: "$G", subject: "h", reply: nil, queues: ["q1", "q2"], headers: bb("NATS/1.0\r\n\r\n"), payload: bb(""))),
            .extensionFrame(namespace: "raft", payload: bb("abc")),
            .err("Cluster Name Mismatch"),
            .ok,
        ]
    }

    func test_next_wholeStream_decodesEveryOp() throws {
        var p = RouteProtocolParser()
        XCTAssertEqual(try parseAll([Array(stream.utf8)], parser: &p), expected)
        XCTAssertTrue(p.isIdle)
    }

    func test_next_streamSplitAtEveryByte_decodesTheSameOps() throws {
        let bytes = Array(stream.utf8)
        for cut in 0...bytes.count {
            var p = RouteProtocolParser()
            XCTAssertEqual(try parseAll([Array(bytes[..<cut]), Array(bytes[cut...])], parser: &p), expected, "split at \(cut)")
        }
    }

    func test_next_streamFedOneByteAtATime_decodesTheSameOps() throws {
        var p = RouteProtocolParser()
        XCTAssertEqual(try parseAll(stream.utf8.map { [$0] }, parser: &p), expected)
    }

    func test_encoder_outputParsesBackToTheSameMessage() throws {
        var out = ByteBuffer()
        let m1 = RoutedMessage(subject: "a.b", reply: "r.1", headers: nil, payload: bb("data"))
        let m2 = RoutedMessage(subject: "a.c", reply: nil, headers: bb("NATS/1.0\r\nK: v\r\n\r\n"), payload: bb("p"))
        RouteEncoder.writeMessage(into: &out, m1, queues: [])
        RouteEncoder.writeMessage(into: &out, m1, queues: ["q", "z"])
        RouteEncoder.writeMessage(into: &out, m2, queues: ["q"])
        RouteEncoder.writeMessage(into: &out, m2, queues: [])
        RouteEncoder.writeSubscribe(into: &out, subject: "x.>", queue: "g", weight: 2)
        RouteEncoder.writeUnsubscribe(into: &out, subject: "x.>", queue: nil)
        RouteEncoder.writeExtension(into: &out, namespace: "raft", payload: bb("\r\n"))
        var p = RouteProtocolParser()
        let ops = try parseAll([Array(out.readableBytesView)], parser: &p)
        XCTAssertEqual(ops, [
            .message(RouteMessage(account: "$G", subject: "a.b", reply: "r.1", queues: [], headers: nil, payload: bb("data"))),
            .message(RouteMessage(account: "$G", subject: "a.b", reply: "r.1", queues: ["q", "z"], headers: nil, payload: bb("data"))),
            .message(RouteMessage(account: "$G", subject: "a.c", reply: nil, queues: ["q"], headers: bb("NATS/1.0\r\nK: v\r\n\r\n"), payload: bb("p"))),
            .message(RouteMessage(account: "$G", subject: "a.c", reply: nil, queues: [], headers: bb("NATS/1.0\r\nK: v\r\n\r\n"), payload: bb("p"))),
            .subscribe(account: "$G", subject: "x.>", queue: "g", weight: 2),
            .unsubscribe(account: "$G", subject: "x.>", queue: nil),
            .extensionFrame(namespace: "raft", payload: bb("\r\n")),
        ])
    }

    func test_next_clientOpOnRoute_isUnknownOperation() {
        XCTAssertThrowsError(try parse("PUB foo 1\r\nx\r\n")) { XCTAssertEqual($0 as? RouteProtocolError, .unknownOperation("PUB")) }
        XCTAssertThrowsError(try parse("SUB foo 1\r\n")) { XCTAssertEqual($0 as? RouteProtocolError, .unknownOperation("SUB")) }
        XCTAssertThrowsError(try parse("\r\n")) { XCTAssertEqual($0 as? RouteProtocolError, .unknownOperation("")) }
    }

    func test_next_badArguments_throwWithoutCrashing() {
        for line in ["RS+ $G\r\n", "RS+ $G a q 0\r\n", "RS+ $G a q x\r\n", "RS- $G\r\n", "RS- $G a q extra\r\n",
                     "RMSG $G a\r\n", "RMSG $G a x\r\n", "RMSG $G a + r 1\r\n", "RMSG $G a | 1\r\n",
                     "RMSG $G a r1 r2 1\r\n", "HMSG $G a 5 3\r\n", "HMSG $G a 3\r\n", "XMSG raft\r\n", "XMSG raft -1\r\n",
                     "RMSG $G a 99999999999999999999\r\n"] {
            XCTAssertThrowsError(try parse(line), line) { error in
                guard case .badArguments = error as? RouteProtocolError else {
                    return XCTFail("\(line): \(error)")
                }
            }
        }
    }

    func test_next_limits_areEnforced() {
        var small = RouteProtocolParser(maxControlLine: 16, maxPayload: 4)
        var buffer = bb("RS+ $G aaaaaaaaaaaaaaaaaaaaaa")
        XCTAssertThrowsError(try small.next(&buffer)) { XCTAssertEqual($0 as? RouteProtocolError, .maxControlLineExceeded) }
        var p = RouteProtocolParser(maxControlLine: 100, maxPayload: 4)
        var big = bb("RMSG $G a 5\r\nhello\r\n")
        XCTAssertThrowsError(try p.next(&big)) { XCTAssertEqual($0 as? RouteProtocolError, .maxPayloadExceeded) }
        var q = RouteProtocolParser()
        var bad = bb("RMSG $G a 2\r\nhiXX")
        XCTAssertThrowsError(try q.next(&bad)) { XCTAssertEqual($0 as? RouteProtocolError, .missingPayloadTerminator) }
    }

    func test_routeURL_parsesSchemesCredentialsAndRejectsGarbage() {
        XCTAssertEqual(RouteURL("nats://127.0.0.1:6222"), RouteURL(host: "127.0.0.1", port: 6222))
        XCTAssertEqual(RouteURL("nats-route://u:p@host.example:7000/"), RouteURL(host: "host.example", port: 7000))
        XCTAssertEqual(RouteURL("10.0.0.1:6222"), RouteURL(host: "10.0.0.1", port: 6222))
        XCTAssertEqual(RouteURL("nats://[::1]:6222"), RouteURL(host: "::1", port: 6222))
        XCTAssertEqual(RouteURL("nats://0.0.0.0:-1"), RouteURL(host: "0.0.0.0", port: -1))
        XCTAssertNil(RouteURL("nats://host"))
        XCTAssertNil(RouteURL("nats://host:99999"))
        XCTAssertNil(RouteURL(":6222"))
        XCTAssertEqual(RouteURL(host: "h", port: 1).description, "nats-route://h:1/")
    }
}
