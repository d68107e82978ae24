import NIOCore

/// One operation received from the server.
public enum ServerOp: Equatable, Sendable {
    case info(ServerInfo)
    case msg(InboundMessage)
    case ping
    case pong
    case ok
    /// `-ERR` text with the surrounding single quotes removed.
    case err(String)
}

/// A `MSG`/`HMSG` as framed on the wire, before it is routed to a subscription.
public struct InboundMessage: Equatable, Sendable {
    public var subject: String
    public var sid: UInt64
    public var reply: String?
    public var headers: NATSHeaders?
    public var payload: ByteBuffer

    public init(subject: String, sid: UInt64, reply: String?, headers: NATSHeaders?, payload: ByteBuffer) {
        self.subject = subject
        self.sid = sid
        self.reply = reply
        self.headers = headers
        self.payload = payload
    }

    public var message: NATSMessage {
        NATSMessage(subject: subject, reply: reply, headers: headers, payload: payload)
    }
}
