/// Errors thrown by the NATS client. Every case carries enough text for a one-line message.
public enum NATSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A server URL could not be parsed.
    case invalidURL(String)
    /// The options listed no servers.
    case noServers
    /// TCP connect or handshake failed for every server tried.
    case connectionFailed(String)
    /// The server answered the handshake with `-ERR` (e.g. `Authorization Violation`).
    case serverError(String)
    /// An operation did not complete in time.
    case timeout
    /// A request reached no subscriber (status 503 from the server).
    case noResponders(subject: String)
    /// The connection is closed (by `close()`, `drain()`, or after reconnect gave up).
    case connectionClosed
    /// The connection is reconnecting and the outbound buffer is full.
    case outboundBufferFull
    /// A subject or queue name is empty or contains whitespace.
    case invalidSubject(String)
    /// A header name or value cannot be encoded (empty name, `:`, CR or LF).
    case invalidHeader(String)
    /// The server sent bytes that do not parse as the NATS protocol.
    case protocolError(String)
    /// The payload (with headers) exceeds the server's `max_payload`.
    case payloadTooLarge(size: Int, max: Int)
    /// The server does not support headers but the operation needs them.
    case headersNotSupported

    public var description: String {
        switch self {
        case .invalidURL(let u): return "invalid server URL '\(u)' (expected nats://host:port)"
        case .noServers: return "no servers given"
        case .connectionFailed(let why): return "could not connect: \(why)"
        case .serverError(let text): return "server error: \(text)"
        case .timeout: return "timed out"
        case .noResponders(let subject): return "no responders on '\(subject)'"
        case .connectionClosed: return "connection closed"
        case .outboundBufferFull: return "outbound buffer full while reconnecting"
        case .invalidSubject(let s): return "invalid subject or queue name '\(s)'"
        case .invalidHeader(let h): return "invalid header: \(h)"
        case .protocolError(let why): return "protocol error: \(why)"
        case .payloadTooLarge(let size, let max): return "payload of \(size) bytes exceeds max_payload \(max)"
        case .headersNotSupported: return "server does not support headers"
        }
    }
}
