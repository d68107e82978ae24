import NIOCore

/// Decodes the NATS client protocol from a byte stream split anywhere.
///
/// The shape of `NIOSingleStepByteToMessageDecoder`: `next(&buffer)` returns one op, or nil
/// when more bytes are needed; the reader index moves past what was consumed. A control line
/// is consumed as soon as it is complete; a PUB/HPUB payload only when all of it (plus CRLF)
/// is there. Holds no server state and never calls into processing.
public struct ClientProtocolParser {
    private enum State {
        case controlLine
        case payload(subject: String, reply: String?, headerBytes: Int, totalBytes: Int, hasHeaders: Bool)
    }

    public var maxControlLine: Int
    public var maxPayload: Int
    private var state: State = .controlLine

    public init(maxControlLine: Int = 4096, maxPayload: Int = 1_048_576) {
        precondition(maxControlLine > 0 && maxPayload >= 0)
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    /// True when the parser sits between ops (no partial PUB pending).
    public var isIdle: Bool {
        if case .controlLine = state { return true }
        return false
    }

    public mutating func next(_ buffer: inout ByteBuffer) throws -> ClientOp? {
        while true {
            switch state {
            case .controlLine:
                guard let line = try takeLine(&buffer) else { return nil }
                if let op = try parseControlLine(line) { return op }
            case let .payload(subject, reply, headerBytes, totalBytes, hasHeaders):
                // The payload is only handed out with its CRLF: nats-server delivers nothing
                // when the terminator is wrong.
                let available = buffer.readableBytes
                if available > totalBytes,
                   buffer.getInteger(at: buffer.readerIndex + totalBytes, as: UInt8.self) != UInt8(ascii: "\r") {
                    throw ClientProtocolError.missingPayloadTerminator
                }
                guard available >= totalBytes + 2 else { return nil }
                guard buffer.getInteger(at: buffer.readerIndex + totalBytes + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
                    throw ClientProtocolError.missingPayloadTerminator
                }
                let headers = hasHeaders ? buffer.readSlice(length: headerBytes)! : nil
                let payload = buffer.readSlice(length: totalBytes - headerBytes)!
                buffer.moveReaderIndex(forwardBy: 2)
                state = .controlLine
                if let h = headers {
                    return .hpub(subject: subject, reply: reply, headers: h, payload: payload)
                }
                return .pub(subject: subject, reply: reply, payload: payload)
            }
        }
    }

    /// Takes one control line (without its CRLF) or returns nil when it is not complete yet.
    private func takeLine(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let newline: Int? = buffer.withUnsafeReadableBytes { raw -> Int? in
            guard let base = raw.baseAddress, raw.count > 0 else { return nil }
            guard let hit = memchr(base, 0x0A, raw.count) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        guard let nl = newline else {
            if buffer.readableBytes > maxControlLine { throw ClientProtocolError.maxControlLineExceeded }
            return nil
        }
        if nl > maxControlLine { throw ClientProtocolError.maxControlLineExceeded }
        var line = buffer.readSlice(length: nl)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytes > 0,
           line.getInteger(at: line.readerIndex + line.readableBytes - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    /// Parses one control line. An empty line or one starting with whitespace is an unknown
    /// op, and so is an op that needs arguments but has none (`PUB\r\n`), as in nats-server.
    private mutating func parseControlLine(_ line: ByteBuffer) throws -> ClientOp? {
        guard let first = line.getInteger(at: line.readerIndex, as: UInt8.self),
              first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
            throw ClientProtocolError.unknownOperation
        }
        let args = Self.split(line)
        let opToken = args[0]
        let rest = Array(args.dropFirst())
        let name = Self.opName(opToken)
        if rest.isEmpty && ["PUB", "HPUB", "SUB", "UNSUB"].contains(name) {
            throw ClientProtocolError.unknownOperation
        }
        switch name {
        case "PUB": return try startPub(rest, hasHeaders: false)
        case "HPUB": return try startPub(rest, hasHeaders: true)
        case "SUB": return try parseSub(rest)
        case "UNSUB": return try parseUnsub(rest)
        case "PING": return .ping
        case "PONG": return .pong
        case "+OK": return .clientOK
        case "-ERR": throw ClientProtocolError.badArguments("-ERR from a client")
        case "CONNECT":
            var rest = line
            rest.moveReaderIndex(forwardBy: opToken.count)
            return .connect(json: Self.trimmed(rest))
        case "INFO": return .info
        default: throw ClientProtocolError.unknownOperation
        }
    }

    private mutating func startPub(_ args: [ArraySlice<UInt8>], hasHeaders: Bool) throws -> ClientOp? {
        let op = hasHeaders ? "HPUB" : "PUB"
        let sizeArgs = hasHeaders ? 2 : 1
        guard args.count == 1 + sizeArgs || args.count == 2 + sizeArgs else {
            throw ClientProtocolError.badArguments("\(op): wrong number of arguments")
        }
        let subject = String(decoding: args[0], as: UTF8.self)
        let reply = args.count == 2 + sizeArgs ? String(decoding: args[1], as: UTF8.self) : nil
        let sizes = args.suffix(sizeArgs)
        guard let total = Self.parseSize(sizes.last!) else {
            throw ClientProtocolError.badArguments("\(op): bad or missing size")
        }
        var headerBytes = 0
        if hasHeaders {
            guard let h = Self.parseSize(sizes.first!), h <= total else {
                throw ClientProtocolError.badArguments("\(op): bad header size")
            }
            headerBytes = h
        }
        if total > maxPayload { throw ClientProtocolError.maxPayloadExceeded }
        state = .payload(subject: subject, reply: reply, headerBytes: headerBytes, totalBytes: total,
                         hasHeaders: hasHeaders)
        return nil
    }

    private func parseSub(_ args: [ArraySlice<UInt8>]) throws -> ClientOp {
        guard args.count == 2 || args.count == 3 else {
            throw ClientProtocolError.badArguments("SUB: wrong number of arguments")
        }
        let subject = String(decoding: args[0], as: UTF8.self)
        let queue = args.count == 3 ? String(decoding: args[1], as: UTF8.self) : nil
        return .sub(subject: subject, queue: queue, sid: String(decoding: args.last!, as: UTF8.self))
    }

    private func parseUnsub(_ args: [ArraySlice<UInt8>]) throws -> ClientOp {
        guard args.count == 1 || args.count == 2 else {
            throw ClientProtocolError.badArguments("UNSUB: wrong number of arguments")
        }
        // A max that does not parse (`x`, `-1`) means a plain UNSUB, as in nats-server.
        let max = args.count == 2 ? Self.parseSize(args[1]) : nil
        return .unsub(sid: String(decoding: args[0], as: UTF8.self), max: max)
    }

    // MARK: - helpers

    /// Splits on runs of spaces and tabs.
    static func split(_ line: ByteBuffer) -> [ArraySlice<UInt8>] {
        let bytes = Array(line.readableBytesView)[...]
        return bytes.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
    }

    /// Upper-cased op name; op names are case-insensitive.
    static func opName(_ token: ArraySlice<UInt8>) -> String {
        guard token.count <= 7 else { return "" }
        return String(decoding: token.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }

    /// Decimal digits only; nil on anything else or overflow (nats-server's parseSize).
    static func parseSize(_ token: ArraySlice<UInt8>) -> Int? {
        guard !token.isEmpty, token.count <= 18 else { return nil }
        var n = 0
        for b in token {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + Int(b - UInt8(ascii: "0"))
        }
        return n
    }

    static func trimmed(_ buffer: ByteBuffer) -> ByteBuffer {
        var b = buffer
        while let c = b.getInteger(at: b.readerIndex, as: UInt8.self), c == 32 || c == 9 {
            b.moveReaderIndex(forwardBy: 1)
        }
        while b.readableBytes > 0,
              let c = b.getInteger(at: b.writerIndex - 1, as: UInt8.self), c == 32 || c == 9 {
            b.moveWriterIndex(to: b.writerIndex - 1)
        }
        return b
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
