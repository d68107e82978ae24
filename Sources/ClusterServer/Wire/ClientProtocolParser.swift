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
    /// Tokenizes in place over the line's bytes: no allocation beyond the Strings it returns.
    private mutating func parseControlLine(_ line: ByteBuffer) throws -> ClientOp? {
        try line.withUnsafeReadableBytes { raw -> ClientOp? in
            guard let first = raw.first, first != 32, first != 9 else { throw ClientProtocolError.unknownOperation }
            var tokens = Tokens()
            tokens.scan(raw)
            let op = Self.opCode(raw, tokens.range(0))
            let argCount = tokens.count - 1
            switch op {
            case .pub, .hpub, .sub, .unsub:
                if argCount == 0 { throw ClientProtocolError.unknownOperation }
            default: break
            }
            switch op {
            case .pub: return try startPub(raw, tokens, hasHeaders: false)
            case .hpub: return try startPub(raw, tokens, hasHeaders: true)
            case .sub:
                guard argCount == 2 || argCount == 3 else {
                    throw ClientProtocolError.badArguments("SUB: wrong number of arguments")
                }
                let queue = argCount == 3 ? Self.string(raw, tokens.range(2)) : nil
                return .sub(subject: Self.string(raw, tokens.range(1)), queue: queue,
                            sid: Self.string(raw, tokens.range(argCount)))
            case .unsub:
                guard argCount == 1 || argCount == 2 else {
                    throw ClientProtocolError.badArguments("UNSUB: wrong number of arguments")
                }
                // A max that does not parse (`x`, `-1`) means a plain UNSUB, as in nats-server.
                let max = argCount == 2 ? Self.parseSize(raw, tokens.range(2)) : nil
                return .unsub(sid: Self.string(raw, tokens.range(1)), max: max)
            case .ping: return .ping
            case .pong: return .pong
            case .ok: return .clientOK
            case .err: throw ClientProtocolError.badArguments("-ERR from a client")
            case .info: return .info
            case .connect:
                let r = tokens.range(0)
                var rest = line
                rest.moveReaderIndex(forwardBy: r.upperBound)
                return .connect(json: Self.trimmed(rest))
            case .unknown: throw ClientProtocolError.unknownOperation
            }
        }
    }

    private mutating func startPub(_ raw: UnsafeRawBufferPointer, _ tokens: Tokens, hasHeaders: Bool) throws -> ClientOp? {
        let op = hasHeaders ? "HPUB" : "PUB"
        let sizeArgs = hasHeaders ? 2 : 1
        let argCount = tokens.count - 1
        guard argCount == 1 + sizeArgs || argCount == 2 + sizeArgs else {
            throw ClientProtocolError.badArguments("\(op): wrong number of arguments")
        }
        guard let total = Self.parseSize(raw, tokens.range(argCount)) else {
            throw ClientProtocolError.badArguments("\(op): bad or missing size")
        }
        var headerBytes = 0
        if hasHeaders {
            guard let h = Self.parseSize(raw, tokens.range(argCount - 1)), h <= total else {
                throw ClientProtocolError.badArguments("\(op): bad header size")
            }
            headerBytes = h
        }
        if total > maxPayload { throw ClientProtocolError.maxPayloadExceeded }
        let subject = Self.string(raw, tokens.range(1))
        let reply = argCount == 2 + sizeArgs ? Self.string(raw, tokens.range(2)) : nil
        state = .payload(subject: subject, reply: reply, headerBytes: headerBytes, totalBytes: total,
                         hasHeaders: hasHeaders)
        return nil
    }

    /// Token boundaries of one control line: at most `capacity` tokens are recorded (ops
    /// take at most 5); `count` keeps counting past that so arity checks still fail.
    struct Tokens {
        static let capacity = 6
        private var starts: (Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0)
        private var ends: (Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0)
        private(set) var count = 0

        mutating func scan(_ raw: UnsafeRawBufferPointer) {
            var i = 0
            let n = raw.count
            while i < n {
                while i < n && (raw[i] == 32 || raw[i] == 9) { i += 1 }
                if i >= n { break }
                let start = i
                while i < n && raw[i] != 32 && raw[i] != 9 { i += 1 }
                if count < Self.capacity {
                    withUnsafeMutableBytes(of: &starts) { $0.storeBytes(of: start, toByteOffset: count * MemoryLayout<Int>.stride, as: Int.self) }
                    withUnsafeMutableBytes(of: &ends) { $0.storeBytes(of: i, toByteOffset: count * MemoryLayout<Int>.stride, as: Int.self) }
                }
                count += 1
            }
        }

        func range(_ k: Int) -> Range<Int> {
            precondition(k < count && k < Self.capacity, "token \(k) of \(count)")
            let s = withUnsafeBytes(of: starts) { $0.load(fromByteOffset: k * MemoryLayout<Int>.stride, as: Int.self) }
            let e = withUnsafeBytes(of: ends) { $0.load(fromByteOffset: k * MemoryLayout<Int>.stride, as: Int.self) }
            return s..<e
        }
    }

    enum OpCode { case pub, hpub, sub, unsub, ping, pong, connect, info, ok, err, unknown }

    /// Op names are case-insensitive; compares bytes with ASCII upper-casing, no String.
    static func opCode(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> OpCode {
        @inline(__always) func up(_ b: UInt8) -> UInt8 { b >= 97 && b <= 122 ? b - 32 : b }
        @inline(__always) func eq(_ word: StaticString) -> Bool {
            guard word.utf8CodeUnitCount == r.count else { return false }
            let w = word.utf8Start
            for k in 0..<r.count where up(raw[r.lowerBound + k]) != w[k] { return false }
            return true
        }
        switch r.count {
        case 3: return eq("PUB") ? .pub : eq("SUB") ? .sub : eq("+OK") ? .ok : .unknown
        case 4: return eq("HPUB") ? .hpub : eq("PING") ? .ping : eq("PONG") ? .pong : eq("INFO") ? .info
            : eq("-ERR") ? .err : .unknown
        case 5: return eq("UNSUB") ? .unsub : .unknown
        case 7: return eq("CONNECT") ? .connect : .unknown
        default: return .unknown
        }
    }

    @inline(__always)
    static func string(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[r]), as: UTF8.self)
    }

    /// Decimal digits only; nil on anything else or overflow (nats-server's parseSize).
    static func parseSize(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int? {
        guard !r.isEmpty, r.count <= 18 else { return nil }
        var n = 0
        for i in r {
            let b = raw[i]
            guard b >= 48 && b <= 57 else { return nil }
            n = n * 10 + Int(b - 48)
        }
        return n
    }

    // MARK: - helpers

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
