import Foundation
import NIOCore

/// Incremental parser for what a NATS server sends (`INFO`, `MSG`, `HMSG`, `PING`, `PONG`,
/// `+OK`, `-ERR`). A pure value: no I/O, no clock.
///
/// Feed it the bytes received so far; `next(from:)` consumes exactly one complete operation and
/// returns it, or returns nil and leaves the unread bytes in place until more arrive. The reader
/// index only ever moves past whole control lines and whole message bodies, so the caller may
/// append new bytes to the same buffer and call again.
public struct ServerOpParser: Sendable {
    /// Servers may send long `INFO` lines (connect_urls of a big cluster), so the client allows
    /// far more than the server's 4 KiB control-line limit.
    public static let defaultMaxControlLineBytes = 64 * 1024
    public static let defaultMaxMessageBytes = 64 * 1024 * 1024

    private struct PendingMessage: Sendable {
        var subject: String
        var sid: UInt64
        var reply: String?
        var headerBytes: Int?
        var totalBytes: Int
    }

    private enum State: Sendable {
        case waitingForControlLine
        case waitingForBody(PendingMessage)
    }

    private var state = State.waitingForControlLine
    public let maxControlLineBytes: Int
    public let maxMessageBytes: Int

    public init(maxControlLineBytes: Int = defaultMaxControlLineBytes, maxMessageBytes: Int = defaultMaxMessageBytes) {
        precondition(maxControlLineBytes > 0 && maxMessageBytes >= 0)
        self.maxControlLineBytes = maxControlLineBytes
        self.maxMessageBytes = maxMessageBytes
    }

    /// Consumes and returns the next complete operation, or nil when more bytes are needed.
    /// Throws `NATSError.protocolError` on malformed input; the stream is unusable afterwards.
    public mutating func next(from buffer: inout ByteBuffer) throws -> ServerOp? {
        // At most two turns: a control line that announces a body, then that body.
        for _ in 0..<2 {
            switch state {
            case .waitingForControlLine:
                guard let line = try readControlLine(from: &buffer) else { return nil }
                switch try Self.parseControlLine(line, maxMessageBytes: maxMessageBytes) {
                case .op(let op): return op
                case .body(let pending): state = .waitingForBody(pending)
                }
            case .waitingForBody(let pending):
                guard let op = try readBody(pending, from: &buffer) else { return nil }
                state = .waitingForControlLine
                return op
            }
        }
        fatalError("Internal inconsistency: parser state did not advance")
    }

    // MARK: - Framing

    private func readControlLine(from buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let lf = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > maxControlLineBytes {
                throw NATSError.protocolError("control line longer than \(maxControlLineBytes) bytes")
            }
            return nil
        }
        let length = lf - buffer.readerIndex
        if length > maxControlLineBytes {
            throw NATSError.protocolError("control line longer than \(maxControlLineBytes) bytes")
        }
        var line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    private func readBody(_ pending: PendingMessage, from buffer: inout ByteBuffer) throws -> ServerOp? {
        guard buffer.readableBytes >= pending.totalBytes + 2 else { return nil }
        let end = buffer.readerIndex + pending.totalBytes
        guard buffer.getInteger(at: end, as: UInt8.self) == UInt8(ascii: "\r"),
              buffer.getInteger(at: end + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
            throw NATSError.protocolError("message body for '\(pending.subject)' not followed by CRLF")
        }
        var headers: NATSHeaders?
        if let headerBytes = pending.headerBytes {
            headers = try NATSHeaders.parse(buffer.readSlice(length: headerBytes)!)
        }
        let payload = buffer.readSlice(length: pending.totalBytes - (pending.headerBytes ?? 0))!
        buffer.moveReaderIndex(forwardBy: 2)
        return .msg(InboundMessage(subject: pending.subject, sid: pending.sid, reply: pending.reply,
                                   headers: headers, payload: payload))
    }

    // MARK: - Control lines

    private enum ControlLine {
        case op(ServerOp)
        case body(PendingMessage)
    }

    private static func parseControlLine(_ line: ByteBuffer, maxMessageBytes: Int) throws -> ControlLine {
        let bytes = line.readableBytesView
        let opEnd = bytes.firstIndex(where: { $0 == 32 || $0 == 9 }) ?? bytes.endIndex
        let name = bytes[bytes.startIndex..<opEnd]
        let rest = bytes[opEnd...]
        switch name.count {
        case 3 where matches(name, "MSG"):
            return .body(try parseMsg(tokens(rest), headers: false, maxMessageBytes: maxMessageBytes))
        case 4 where matches(name, "HMSG"):
            return .body(try parseMsg(tokens(rest), headers: true, maxMessageBytes: maxMessageBytes))
        case 4 where matches(name, "PING"):
            return .op(.ping)
        case 4 where matches(name, "PONG"):
            return .op(.pong)
        case 3 where matches(name, "+OK"):
            return .op(.ok)
        case 4 where matches(name, "-ERR"):
            return .op(.err(errorText(rest)))
        case 4 where matches(name, "INFO"):
            do {
                return .op(.info(try JSONDecoder().decode(ServerInfo.self, from: Data(rest))))
            } catch {
                throw NATSError.protocolError("INFO is not valid JSON: \(error)")
            }
        default:
            throw NATSError.protocolError("unknown operation '\(printable(bytes.prefix(32)))'")
        }
    }

    /// `MSG <subject> <sid> [reply] <size>` / `HMSG <subject> <sid> [reply] <hdr> <total>`.
    private static func parseMsg(_ t: [ByteBufferView.SubSequence], headers: Bool, maxMessageBytes: Int) throws -> PendingMessage {
        let sizes = headers ? 2 : 1
        guard t.count == 2 + sizes || t.count == 3 + sizes else {
            throw NATSError.protocolError("\(headers ? "HMSG" : "MSG") with \(t.count) arguments")
        }
        guard let sid = UInt64(String(decoding: t[1], as: UTF8.self)) else {
            throw NATSError.protocolError("non-numeric sid '\(printable(t[1]))'")
        }
        let reply = t.count == 3 + sizes ? String(decoding: t[2], as: UTF8.self) : nil
        let total = try size(t[t.count - 1], max: maxMessageBytes)
        var headerBytes: Int?
        if headers {
            let h = try size(t[t.count - 2], max: maxMessageBytes)
            guard h <= total else { throw NATSError.protocolError("header size \(h) exceeds total size \(total)") }
            headerBytes = h
        }
        return PendingMessage(subject: String(decoding: t[0], as: UTF8.self), sid: sid, reply: reply,
                              headerBytes: headerBytes, totalBytes: total)
    }

    private static func size(_ token: ByteBufferView.SubSequence, max: Int) throws -> Int {
        var value = 0
        for b in token {
            guard b >= 48 && b <= 57 else { throw NATSError.protocolError("bad size '\(printable(token))'") }
            value = value * 10 + Int(b - 48)
            guard value <= max else { throw NATSError.protocolError("message size above \(max) bytes") }
        }
        guard !token.isEmpty else { throw NATSError.protocolError("empty size") }
        return value
    }

    private static func tokens(_ bytes: ByteBufferView.SubSequence) -> [ByteBufferView.SubSequence] {
        bytes.split(whereSeparator: { $0 == 32 || $0 == 9 })
    }

    private static func matches(_ name: ByteBufferView.SubSequence, _ upper: StaticString) -> Bool {
        var i = 0
        let p = upper.utf8Start
        for b in name {
            // ASCII case folding: only letters have bit 0x20 meaning case.
            let folded = (b >= 97 && b <= 122) ? b - 32 : b
            if folded != p[i] { return false }
            i += 1
        }
        return i == upper.utf8CodeUnitCount
    }

    private static func errorText(_ rest: ByteBufferView.SubSequence) -> String {
        var text = Substring(String(decoding: rest, as: UTF8.self))
        text = text.drop(while: { $0 == " " || $0 == "\t" })
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        if text.count >= 2, text.first == "'", text.last == "'" { text = text.dropFirst().dropLast() }
        return String(text)
    }

    private static func printable<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes.prefix(64).map { ($0 >= 32 && $0 < 127) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
