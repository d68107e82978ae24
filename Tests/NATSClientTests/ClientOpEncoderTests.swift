import NIOCore
import XCTest
@testable import NATSClient

final class ClientOpEncoderTests: XCTestCase {
    func test_writePub_matchesProtocolExample() {
        var b = ByteBuffer()
        ClientOpEncoder.writePub(&b, subject: "greet.joe", reply: nil, payload: "hello")
        ClientOpEncoder.writePub(&b, subject: "a", reply: "_INBOX.x", payload: [UInt8]())
        XCTAssertEqual(String(buffer: b), "PUB greet.joe 5\r\nhello\r\nPUB a _INBOX.x 0\r\n\r\n")
    }

    func test_writeHPub_countsHeaderAndTotalBytes() {
        var b = ByteBuffer()
        ClientOpEncoder.writeHPub(&b, subject: "greet.joe", reply: nil, headers: ["Bar": "Baz"], payload: "hello")
        XCTAssertEqual(String(buffer: b), "HPUB greet.joe 22 27\r\nNATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n")
    }

    func test_writeSubAndUnsub_formatsOptionalArguments() {
        var b = ByteBuffer()
        ClientOpEncoder.writeSub(&b, subject: "foo.*", queue: "workers", sid: 12)
        ClientOpEncoder.writeSub(&b, subject: "bar", queue: nil, sid: 13)
        ClientOpEncoder.writeUnsub(&b, sid: 12, max: 5)
        ClientOpEncoder.writeUnsub(&b, sid: 13, max: nil)
        XCTAssertEqual(String(buffer: b), "SUB foo.* workers 12\r\nSUB bar 13\r\nUNSUB 12 5\r\nUNSUB 13\r\n")
    }

    func test_writeDecimal_matchesStringConversion() {
        for value in [0, 1, 9, 10, 99, 100, 12345, 1_048_576, Int(Int32.max), Int.max] {
            var b = ByteBuffer()
            ClientOpEncoder.writeDecimal(&b, value)
            XCTAssertEqual(String(buffer: b), String(value))
        }
    }

    func test_subjectValidator_rejectsEmptyTokensWhitespaceAndMisplacedFullWildcard() {
        for bad in ["", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\r\n"] {
            XCTAssertThrowsError(try SubjectValidator.check(bad), bad.debugDescription)
        }
        for good in ["a", "a.b.c", "$JS.API.INFO", "_INBOX.x.*", "foo.>"] {
            XCTAssertNoThrow(try SubjectValidator.check(good), good)
        }
        XCTAssertThrowsError(try SubjectValidator.checkSubscription("a.>.b"))
        XCTAssertNoThrow(try SubjectValidator.checkSubscription("a.*.>"))
        XCTAssertThrowsError(try SubjectValidator.checkQueue("q 1"))
    }

    func test_optionsFromURLs_parsesListsAndCredentials() throws {
        let o = try NATSOptions(urls: ["nats://alice:s3cret@127.0.0.1:4001, nats://127.0.0.1:4002", "tok@host"])
        XCTAssertEqual(o.servers, [ServerAddress(host: "127.0.0.1", port: 4001), ServerAddress(host: "127.0.0.1", port: 4002),
                                   ServerAddress(host: "host", port: 4222)])
        XCTAssertEqual(o.user, "alice")
        XCTAssertEqual(o.password, "s3cret")
        XCTAssertEqual(o.token, "tok")
        XCTAssertThrowsError(try NATSOptions(urls: ["nats://h:notaport"])) { XCTAssertEqual($0 as? NATSError, .invalidURL("nats://h:notaport")) }
        XCTAssertThrowsError(try NATSOptions(urls: [" , "])) { XCTAssertEqual($0 as? NATSError, .noServers) }
    }

    func test_reconnectWait_doublesAndIsBounded() {
        var o = NATSOptions(servers: [ServerAddress(host: "h", port: 1)])
        o.reconnectWaitMin = .milliseconds(10)
        o.reconnectWaitMax = .milliseconds(50)
        XCTAssertEqual([0, 1, 2, 3, 100].map { o.reconnectWait(afterRounds: $0) },
                       [.milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(50), .milliseconds(50)])
    }
}
