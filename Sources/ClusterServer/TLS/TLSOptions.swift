/// One `tls { ... }` block (client listener or `cluster`), as nats-server spells it.
///
/// Pure settings: files are read when the server starts (`TLSContexts`), so a config that
/// names a missing file fails at start with the path in the message.
public struct TLSOptions: Sendable, Equatable {
    /// PEM certificate chain presented by this server (and by its outgoing routes).
    public var certFile: String
    /// PEM private key of `certFile`.
    public var keyFile: String
    /// PEM CA bundle that peer certificates must chain to; nil means the system trust store.
    public var caFile: String?
    /// Require and verify a certificate from the connecting side. Always on for routes.
    public var verify = false
    /// Handshake deadline; nats-server's default is 2 seconds.
    public var timeoutSeconds: Double = 2
    /// Wait for the client's TLS handshake before sending INFO (nats-server `handshake_first`).
    public var handshakeFirst = false
    /// Outgoing routes only: skip verifying the peer's certificate (nats-server `insecure`).
    public var insecure = false
    /// Lowest protocol version accepted; nats-server's default is TLS 1.2.
    public var minVersion: MinVersion = .v1_2

    public enum MinVersion: String, Sendable, Equatable {
        case v1_2 = "1.2"
        case v1_3 = "1.3"
    }

    public init(certFile: String, keyFile: String) {
        self.certFile = certFile
        self.keyFile = keyFile
    }
}
