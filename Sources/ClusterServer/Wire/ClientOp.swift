import NIOCore

/// One operation a client sent, as decoded by `ClientProtocolParser`. Payload buffers are
/// slices of the read buffer (no copy).
public enum ClientOp: Equatable {
    case connect(json: ByteBuffer)
    case pub(subject: String, reply: String?, payload: ByteBuffer)
    /// `headers` is the whole header block including the final blank line.
    case hpub(subject: String, reply: String?, headers: ByteBuffer, payload: ByteBuffer)
    case sub(subject: String, queue: String?, sid: String)
    case unsub(sid: String, max: Int?)
    case ping
    case pong
    /// A client's INFO line; ignored by the server (it is a server-to-client op).
    case info
    /// A client's `+OK`; ignored.
    case clientOK
}

/// Why parsing failed. Every case closes the connection, as in nats-server.
public enum ClientProtocolError: Error, Equatable {
    /// The op name is not one we know: `-ERR 'Unknown Protocol Operation'`.
    case unknownOperation
    /// A control line longer than the limit: `-ERR 'maximum control line exceeded'`.
    case maxControlLineExceeded
    /// A message larger than max_payload: `-ERR 'Maximum Payload Violation'`.
    case maxPayloadExceeded
    /// Arguments that do not parse (wrong count, bad size, header size > total size); the
    /// text says which op.
    case badArguments(String)
    /// The two bytes after a payload were not CRLF.
    case missingPayloadTerminator
    /// CONNECT whose JSON does not decode (closed silently).
    case badConnect

    /// The `-ERR` text nats-server sends for this error, or nil when it closes silently.
    public var errText: String? {
        switch self {
        case .unknownOperation, .missingPayloadTerminator: return "Unknown Protocol Operation"
        case .maxControlLineExceeded: return "maximum control line exceeded"
        case .maxPayloadExceeded: return "Maximum Payload Violation"
        case .badArguments, .badConnect: return nil
        }
    }
}
