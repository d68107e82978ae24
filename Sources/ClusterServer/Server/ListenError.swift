/// A listener could not be opened. Names which one and where, so an "Address already in use"
/// points at the port that was taken (the monitoring and route listeners open in the same
/// start as the client one).
public struct ListenError: Error, CustomStringConvertible {
    public enum Listener: Sendable { case client, monitoring, route }
    public let listener: Listener
    public let host: String
    /// The configured port (-1: a free one was asked for).
    public let port: Int
    public let underlying: Error

    public init(_ listener: Listener, host: String, port: Int, underlying: Error) {
        self.listener = listener
        self.host = host
        self.port = port
        self.underlying = underlying
    }

    /// nats-server 2.12's wording for each listener (checked against its [FTL] lines).
    public var description: String {
        switch listener {
        case .client: return "Error listening on port: \(host):\(port), \"\(underlying)\""
        case .monitoring: return "Can't start monitoring: can't listen to the monitor port: \(host):\(port), \"\(underlying)\""
        case .route: return "Error listening on router port: \(port) - \(host):\(port), \"\(underlying)\""
        }
    }
}

/// Runs `bind`, reporting a failure as a `ListenError` for `listener` at `host:port`.
func listening<T>(_ listener: ListenError.Listener, host: String, port: Int, _ bind: () throws -> T) throws -> T {
    do {
        return try bind()
    } catch {
        throw ListenError(listener, host: host, port: port, underlying: error)
    }
}
