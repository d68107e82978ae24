import NIOCore

/// Writes client operations straight into an outbound buffer; no intermediate strings for
/// the hot path (PUB/HPUB).
enum ClientOpEncoder {
    static func writePub(_ buffer: inout ByteBuffer, subject: String, reply: String?, payload: some NATSPayload) {
        writePub(&buffer, subject: subject, reply: reply, payloadBytes: payload.natsByteCount) { payload.write(into: &$0) }
    }

    static func writeHPub(_ buffer: inout ByteBuffer, subject: String, reply: String?, headers: NATSHeaders, payload: some NATSPayload) {
        writeHPub(&buffer, subject: subject, reply: reply, headers: headers, payloadBytes: payload.natsByteCount) {
            payload.write(into: &$0)
        }
    }

    static func writePub(_ buffer: inout ByteBuffer, subject: String, reply: String?, payloadBytes: Int,
                         writePayload: (inout ByteBuffer) -> Void) {
        buffer.writeStaticString("PUB ")
        buffer.writeString(subject)
        if let reply {
            buffer.writeStaticString(" ")
            buffer.writeString(reply)
        }
        buffer.writeStaticString(" ")
        writeDecimal(&buffer, payloadBytes)
        buffer.writeStaticString("\r\n")
        writePayload(&buffer)
        buffer.writeStaticString("\r\n")
    }

    static func writeHPub(_ buffer: inout ByteBuffer, subject: String, reply: String?, headers: NATSHeaders,
                          payloadBytes: Int, writePayload: (inout ByteBuffer) -> Void) {
        let headerBytes = headers.encodedByteCount
        buffer.writeStaticString("HPUB ")
        buffer.writeString(subject)
        if let reply {
            buffer.writeStaticString(" ")
            buffer.writeString(reply)
        }
        buffer.writeStaticString(" ")
        writeDecimal(&buffer, headerBytes)
        buffer.writeStaticString(" ")
        writeDecimal(&buffer, headerBytes + payloadBytes)
        buffer.writeStaticString("\r\n")
        let written = headers.write(into: &buffer)
        assert(written == headerBytes, "encodedByteCount disagrees with write(into:)")
        writePayload(&buffer)
        buffer.writeStaticString("\r\n")
    }

    static func writeSub(_ buffer: inout ByteBuffer, subject: String, queue: String?, sid: UInt64) {
        buffer.writeStaticString("SUB ")
        buffer.writeString(subject)
        if let queue {
            buffer.writeStaticString(" ")
            buffer.writeString(queue)
        }
        buffer.writeStaticString(" ")
        writeDecimal(&buffer, Int(sid))
        buffer.writeStaticString("\r\n")
    }

    static func writeUnsub(_ buffer: inout ByteBuffer, sid: UInt64, max: Int?) {
        buffer.writeStaticString("UNSUB ")
        writeDecimal(&buffer, Int(sid))
        if let max {
            buffer.writeStaticString(" ")
            writeDecimal(&buffer, max)
        }
        buffer.writeStaticString("\r\n")
    }

    static func writePing(_ buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    static func writePong(_ buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }

    static func writeConnect(_ buffer: inout ByteBuffer, json: String) {
        buffer.writeStaticString("CONNECT ")
        buffer.writeString(json)
        buffer.writeStaticString("\r\n")
    }

    /// Decimal without going through `String(Int)` (an allocation per message otherwise).
    static func writeDecimal(_ buffer: inout ByteBuffer, _ value: Int) {
        precondition(value >= 0, "negative size")
        if value < 10 {
            buffer.writeInteger(UInt8(48 + value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[19 - count] = UInt8(48 + v % 10)
                v /= 10
                count += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: d[(20 - count)...]))
        }
    }
}

/// Subject and queue-name checks applied before anything is written, so a bad name fails the
/// call instead of corrupting the connection's framing.
enum SubjectValidator {
    static func check(_ subject: String) throws {
        // Native strings expose contiguous UTF-8: check it in place (this runs per publish).
        let valid = subject.utf8.withContiguousStorageIfAvailable(isValidSubject) ?? isValidSubject(Array(subject.utf8))
        if !valid { throw NATSError.invalidSubject(subject) }
    }

    /// One pass: no empty tokens (leading, trailing or double dots), no whitespace/control.
    private static func isValidSubject<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var previous: UInt8 = UInt8(ascii: ".")
        for b in bytes {
            if b <= 32 || b == 127 || (b == UInt8(ascii: ".") && previous == UInt8(ascii: ".")) { return false }
            previous = b
        }
        return previous != UInt8(ascii: ".")
    }

    /// Like `check`, plus: `>` may only be the last token.
    static func checkSubscription(_ subject: String) throws {
        try check(subject)
        let tokens = subject.split(separator: ".")
        if tokens.dropLast().contains(">") { throw NATSError.invalidSubject(subject) }
    }

    static func checkQueue(_ queue: String) throws {
        guard !queue.isEmpty else { throw NATSError.invalidSubject(queue) }
        for b in queue.utf8 where b <= 32 || b == 127 {
            throw NATSError.invalidSubject(queue)
        }
    }
}
