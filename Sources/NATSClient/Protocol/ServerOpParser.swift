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
                guard let (consumed, parsed) = try readControlLine(buffer) else { return nil }
                buffer.moveReaderIndex(forwardBy: consumed)
                switch parsed {
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

    /// Finds the next LF and parses the line before it (CR stripped) without copying it.
    /// Returns the bytes to consume (line plus LF) and the parsed line, or nil if incomplete.
    private func readControlLine(_ buffer: ByteBuffer) throws -> (Int, ControlLine)? {
        let limit = maxControlLineBytes
        let bodyLimit = maxMessageBytes
        return try buffer.withUnsafeReadableBytes { raw -> (Int, ControlLine)? in
            guard raw.count > 0, let base = raw.baseAddress else { return nil }
            guard let lfPointer = memchr(base, 10, raw.count) else {
                if raw.count > limit { throw NATSError.protocolError("control line longer than \(limit) bytes") }
                return nil
            }
            let lf = UnsafeRawPointer(lfPointer) - base
            if lf > limit { throw NATSError.protocolError("control line longer than \(limit) bytes") }
            let end = (lf > 0 && raw[lf - 1] == 13) ? lf - 1 : lf
            let line = UnsafeRawBufferPointer(rebasing: raw[0..<end])
            return (lf + 1, try Self.parseControlLine(line, maxMessageBytes: bodyLimit))
        }
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

    /// Argument tokens of one line: at most `capacity`, as ranges into the line.
    private struct Tokens {
        static let capacity = 6
        var ranges: (Range<Int>, Range<Int>, Range<Int>, Range<Int>, Range<Int>, Range<Int>) = (0..<0, 0..<0, 0..<0, 0..<0, 0..<0, 0..<0)
        var count = 0

        subscript(i: Int) -> Range<Int> {
            precondition(i < count)
            switch i {
            case 0: return ranges.0
            case 1: return ranges.1
            case 2: return ranges.2
            case 3: return ranges.3
            case 4: return ranges.4
            default: return ranges.5
            }
        }

        /// Splits on spaces/tabs; nil when there are more than `capacity` tokens.
        init?(_ line: UnsafeRawBufferPointer, from start: Int) {
            var i = start
            while i < line.count {
                while i < line.count, line[i] == 32 || line[i] == 9 { i += 1 }
                guard i < line.count else { break }
                let tokenStart = i
                while i < line.count, line[i] != 32, line[i] != 9 { i += 1 }
                guard count < Self.capacity else { return nil }
                let r = tokenStart..<i
                switch count {
                case 0: ranges.0 = r
                case 1: ranges.1 = r
                case 2: ranges.2 = r
                case 3: ranges.3 = r
                case 4: ranges.4 = r
                default: ranges.5 = r
                }
                count += 1
            }
        }
    }

    private static func parseControlLine(_ line: UnsafeRawBufferPointer, maxMessageBytes: Int) throws -> ControlLine {
        var opEnd = 0
        while opEnd < line.count, line[opEnd] != 32, line[opEnd] != 9 { opEnd += 1 }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<opEnd])
        switch opEnd {
        case 3 where matches(name, "MSG"):
            return .body(try parseMsg(line, from: opEnd, headers: false, maxMessageBytes: maxMessageBytes))
        case 4 where matches(name, "HMSG"):
            return .body(try parseMsg(line, from: opEnd, headers: true, maxMessageBytes: maxMessageBytes))
        case 4 where matches(name, "PING"):
            return .op(.ping)
        case 4 where matches(name, "PONG"):
            return .op(.pong)
        case 3 where matches(name, "+OK"):
            return .op(.ok)
        case 4 where matches(name, "-ERR"):
            return .op(.err(errorText(line[opEnd...])))
        case 4 where matches(name, "INFO"):
            do {
                return .op(.info(try JSONDecoder().decode(ServerInfo.self, from: Data(line[opEnd...]))))
            } catch {
                throw NATSError.protocolError("INFO is not valid JSON: \(error)")
            }
        default:
            throw NATSError.protocolError("unknown operation '\(printable(line.prefix(32)))'")
        }
    }

    /// `MSG <subject> <sid> [reply] <size>` / `HMSG <subject> <sid> [reply] <hdr> <total>`.
    private static func parseMsg(_ line: UnsafeRawBufferPointer, from start: Int, headers: Bool, maxMessageBytes: Int) throws -> PendingMessage {
        let op = headers ? "HMSG" : "MSG"
        guard let t = Tokens(line, from: start) else { throw NATSError.protocolError("\(op) with too many arguments") }
        let sizes = headers ? 2 : 1
        guard t.count == 2 + sizes || t.count == 3 + sizes else {
            throw NATSError.protocolError("\(op) with \(t.count) arguments")
        }
        guard let sid = UInt64(exactly: try number(line[t[1]], max: Int.max, what: "sid")) else {
            throw NATSError.protocolError("bad sid")
        }
        let reply = t.count == 3 + sizes ? String(decoding: line[t[2]], as: UTF8.self) : nil
        let total = try number(line[t[t.count - 1]], max: maxMessageBytes, what: "size")
        var headerBytes: Int?
        if headers {
            let h = try number(line[t[t.count - 2]], max: maxMessageBytes, what: "header size")
            guard h <= total else { throw NATSError.protocolError("header size \(h) exceeds total size \(total)") }
            headerBytes = h
        }
        return PendingMessage(subject: String(decoding: line[t[0]], as: UTF8.self), sid: sid, reply: reply,
                              headerBytes: headerBytes, totalBytes: total)
    }

    /// Non-negative decimal no larger than `max`.
    private static func number(_ token: Slice<UnsafeRawBufferPointer>, max: Int, what: String) throws -> Int {
        guard !token.isEmpty, token.count <= 19 else { throw NATSError.protocolError("bad \(what) '\(printable(token))'") }
        var value = 0
        for b in token {
            guard b >= 48 && b <= 57 else { throw NATSError.protocolError("bad \(what) '\(printable(token))'") }
            value = value * 10 + Int(b - 48)
        }
        guard value <= max else { throw NATSError.protocolError("\(what) \(value) above \(max)") }
        return value
    }

    private static func matches(_ name: UnsafeRawBufferPointer, _ upper: StaticString) -> Bool {
        guard name.count == upper.utf8CodeUnitCount else { return false }
        let p = upper.utf8Start
        for i in 0..<name.count {
            let b = name[i]
            // ASCII case folding: only letters have bit 0x20 meaning case.
            let folded = (b >= 97 && b <= 122) ? b - 32 : b
            if folded != p[i] { return false }
        }
        return true
    }

    private static func errorText(_ rest: Slice<UnsafeRawBufferPointer>) -> String {
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
