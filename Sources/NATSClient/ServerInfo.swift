/// The fields of the server's `INFO` that the client uses; unknown fields are ignored.
public struct ServerInfo: Decodable, Equatable, Sendable {
    public var serverID: String
    public var serverName: String?
    public var version: String
    public var proto: Int?
    public var host: String?
    public var port: Int?
    public var headers: Bool?
    public var maxPayload: Int?
    public var jetstream: Bool?
    public var authRequired: Bool?
    public var tlsRequired: Bool?
    public var tlsAvailable: Bool?
    public var connectURLs: [String]?
    public var lameDuckMode: Bool?
    public var clientID: UInt64?

    public init(serverID: String, version: String) {
        self.serverID = serverID
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, proto, host, port, headers
        case maxPayload = "max_payload", jetstream, authRequired = "auth_required"
        case tlsRequired = "tls_required", tlsAvailable = "tls_available"
        case connectURLs = "connect_urls", lameDuckMode = "ldm", clientID = "client_id"
    }
}
