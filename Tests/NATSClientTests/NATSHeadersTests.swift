import NIOCore
import XCTest
@testable import NATSClient

final class NATSHeadersTests: XCTestCase {
    private func encode(_ headers: NATSHeaders) -> String {
        var buffer = ByteBuffer()
        let n = headers.write(into: &buffer)
        XCTAssertEqual(n, buffer.readableBytes)
        XCTAssertEqual(headers.encodedByteCount, buffer.readableBytes)
        return String(buffer: buffer)
    }

    func test_write_keepsOrderCaseAndDuplicates() {
        var h = NATSHeaders()
        h.append("Nats-Msg-Id", "42")
        h.append("x-lower", "a")
        h.append("Nats-Msg-Id", "43")
        XCTAssertEqual(encode(h), "NATS/1.0\r\nNats-Msg-Id: 42\r\nx-lower: a\r\nNats-Msg-Id: 43\r\n\r\n")
    }

    func test_write_withStatus_emitsSingleSpacedStatusLine() {
        var h = NATSHeaders()
        h.status = 408
        h.statusDescription = "Request Timeout"
        XCTAssertEqual(encode(h), "NATS/1.0 408 Request Timeout\r\n\r\n")
        h.statusDescription = nil
        XCTAssertEqual(encode(h), "NATS/1.0 408\r\n\r\n")
    }

    func test_parse_roundTripsWhatWriteProduces() throws {
        var h: NATSHeaders = ["A": "1", "b": "two words", "A": "3"]
        h.status = 409
        h.statusDescription = "Exceeded MaxWaiting"
        var buffer = ByteBuffer()
        h.write(into: &buffer)
        XCTAssertEqual(try NATSHeaders.parse(buffer), h)
    }

    func test_parse_withNoRespondersStatus_readsCodeWithoutDescription() throws {
        let h = try NATSHeaders.parse(ByteBuffer(string: "NATS/1.0 503\r\nNats-Subject: svc\r\n\r\n"))
        XCTAssertEqual(h.status, 503)
        XCTAssertNil(h.statusDescription)
        XCTAssertEqual(h["Nats-Subject"], "svc")
    }

    func test_parse_trimsValueWhitespaceAndKeepsColonsInValue() throws {
        let h = try NATSHeaders.parse(ByteBuffer(string: "NATS/1.0\r\nUrl:   http://x:1/  \r\n\r\n"))
        XCTAssertEqual(h["Url"], "http://x:1/")
    }

    func test_parse_withBadStatus_throws() {
        XCTAssertThrowsError(try NATSHeaders.parse(ByteBuffer(string: "NATS/1.0 5x3\r\n\r\n")))
        XCTAssertThrowsError(try NATSHeaders.parse(ByteBuffer(string: "HTTP/1.1\r\n\r\n")))
        XCTAssertThrowsError(try NATSHeaders.parse(ByteBuffer(string: "NATS/1.0\r\nno colon here\r\n\r\n")))
    }

    func test_subscript_lookupIsCaseSensitiveAndSetReplacesAllValues() {
        var h: NATSHeaders = ["Key": "1", "Other": "x", "Key": "2"]
        XCTAssertNil(h["key"])
        XCTAssertEqual(h.values(for: "Key"), ["1", "2"])
        h["Key"] = "3"
        XCTAssertEqual(h.fields.map(\.name), ["Key", "Other"])
        XCTAssertEqual(h.values(for: "Key"), ["3"])
        h["Other"] = nil
        XCTAssertEqual(h.fields, [.init(name: "Key", value: "3")])
    }

    func test_validate_rejectsNamesAndValuesThatBreakFraming() {
        XCTAssertThrowsError(try (["": "v"] as NATSHeaders).validate())
        XCTAssertThrowsError(try (["a:b": "v"] as NATSHeaders).validate())
        XCTAssertThrowsError(try (["a b": "v"] as NATSHeaders).validate())
        XCTAssertThrowsError(try (["a": "v\r\nInjected: 1"] as NATSHeaders).validate())
        XCTAssertNoThrow(try (["Nats-Msg-Id": "ok value: with colon"] as NATSHeaders).validate())
    }
}
