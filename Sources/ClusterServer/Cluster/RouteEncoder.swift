import NIOCore

/// Writes route ops into an outbound buffer (the inverse of `RouteProtocolParser`).
enum RouteEncoder {
    /// nats-server's global account: where clients go when no accounts are configured.
    static let globalAccount = globalAccountName

    static func writeSubscribe(into out: inout ByteBuffer, account: String = globalAccount, subject: String,
                               queue: String?, weight: Int) {
        out.writeString("RS+ \(account) \(subject)")
        if let queue { out.writeString(" \(queue) \(weight)") }
        out.writeBytes(MessageEncoder.crlf)
    }

    static func writeUnsubscribe(into out: inout ByteBuffer, account: String = globalAccount, subject: String,
                                 queue: String?) {
        out.writeString("RS- \(account) \(subject)")
        if let queue { out.writeString(" \(queue)") }
        out.writeBytes(MessageEncoder.crlf)
    }

    /// `RMSG`/`HMSG` with the queue groups this route was picked for (`+ reply q..`, `| q..`).
    static func writeMessage(into out: inout ByteBuffer, account: String = globalAccount, _ message: RoutedMessage,
                             queues: [String]) {
        let account = message.account ?? account
        let headers = message.headers
        out.writeStaticString(headers == nil ? "RMSG " : "HMSG ")
        out.writeString(account)
        out.writeInteger(UInt8(ascii: " "))
        out.writeString(message.subject)
        out.writeInteger(UInt8(ascii: " "))
        if !queues.isEmpty {
            if let reply = message.reply {
                out.writeStaticString("+ ")
                out.writeString(reply)
                out.writeInteger(UInt8(ascii: " "))
            } else {
                out.writeStaticString("| ")
            }
            for q in queues {
                out.writeString(q)
                out.writeInteger(UInt8(ascii: " "))
            }
        } else if let reply = message.reply {
            out.writeString(reply)
            out.writeInteger(UInt8(ascii: " "))
        }
        if let h = headers {
            MessageEncoder.writeDecimal(into: &out, h.readableBytes)
            out.writeInteger(UInt8(ascii: " "))
            MessageEncoder.writeDecimal(into: &out, h.readableBytes + message.payload.readableBytes)
            out.writeBytes(MessageEncoder.crlf)
            out.writeImmutableBuffer(h)
        } else {
            MessageEncoder.writeDecimal(into: &out, message.payload.readableBytes)
            out.writeBytes(MessageEncoder.crlf)
        }
        out.writeImmutableBuffer(message.payload)
        out.writeBytes(MessageEncoder.crlf)
    }

    /// `XMSG <namespace> <#bytes>\r\n<payload>\r\n`.
    static func writeExtension(into out: inout ByteBuffer, namespace: String, payload: ByteBuffer) {
        out.writeString("XMSG \(namespace) ")
        MessageEncoder.writeDecimal(into: &out, payload.readableBytes)
        out.writeBytes(MessageEncoder.crlf)
        out.writeImmutableBuffer(payload)
        out.writeBytes(MessageEncoder.crlf)
    }
}
