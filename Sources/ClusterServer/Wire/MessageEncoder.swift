import NIOCore

/// Writes server-to-client ops into an outbound buffer.
enum MessageEncoder {
    static let crlf: [UInt8] = [13, 10]

    /// `MSG <subject> <sid> [reply] <n>\r\n<payload>\r\n`, or HMSG when `headers` is given and
    /// the receiver supports headers. A receiver without header support gets the payload only.
    @inline(__always)
    static func writeMessage(into out: inout ByteBuffer, subject: String, sid: String, reply: String?,
                             headers: ByteBuffer?, payload: ByteBuffer, receiverSupportsHeaders: Bool) {
        let h = receiverSupportsHeaders ? headers : nil
        if let h {
            out.writeStaticString("HMSG ")
        } else {
            out.writeStaticString("MSG ")
        }
        out.writeString(subject)
        out.writeInteger(UInt8(ascii: " "))
        out.writeString(sid)
        out.writeInteger(UInt8(ascii: " "))
        if let reply {
            out.writeString(reply)
            out.writeInteger(UInt8(ascii: " "))
        }
        if let h {
            writeDecimal(into: &out, h.readableBytes)
            out.writeInteger(UInt8(ascii: " "))
            writeDecimal(into: &out, h.readableBytes + payload.readableBytes)
            out.writeBytes(crlf)
            out.writeImmutableBuffer(h)
        } else {
            writeDecimal(into: &out, payload.readableBytes)
            out.writeBytes(crlf)
        }
        out.writeImmutableBuffer(payload)
        out.writeBytes(crlf)
    }

    @inline(__always)
    static func writeDecimal(into out: inout ByteBuffer, _ value: Int) {
        precondition(value >= 0)
        if value < 10 {
            out.writeInteger(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            while n > 0 {
                raw[19 - count] = UInt8(ascii: "0") &+ UInt8(n % 10)
                n /= 10
                count += 1
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }

    /// `-ERR '<text>'\r\n`.
    static func writeError(into out: inout ByteBuffer, _ text: String) {
        out.writeString("-ERR '\(text)'\r\n")
    }
}
