import Foundation

/// The INFO line's JSON (nats-server `server.go: type Info`); optional fields are omitted
/// when nil, as Go's `omitempty` does.
public struct ServerInfo: Encodable {
    public var serverID: String
    public var serverName: String
    public var version: String
    public var proto: Int = 1
    public var go: String = "swift"
    public var host: String
    public var port: Int
    public var headers: Bool = true
    public var maxPayload: Int
    public var authRequired: Bool?
    public var tlsRequired: Bool?
    public var tlsVerify: Bool?
    public var tlsAvailable: Bool?
    public var jetstream: Bool?
    public var clientID: UInt64?
    public var clientIP: String?
    public var nonce: String?
    public var cluster: String?
    public var connectURLs: [String]?
    public var lameDuckMode: Bool?
    public var connectInfo: Bool?
    public var remoteAccount: String?
    public var apiLevel: Int?

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, proto, go, host, port
        case headers, maxPayload = "max_payload", authRequired = "auth_required"
        case tlsRequired = "tls_required", tlsVerify = "tls_verify", tlsAvailable = "tls_available", jetstream, clientID = "client_id", clientIP = "client_ip"
        case nonce, cluster, connectURLs = "connect_urls", lameDuckMode = "ldm", apiLevel = "api_lvl"
        case connectInfo = "connect_info", remoteAccount = "remote_account"
    }

    /// `INFO {...}\r\n`.
    public func line() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let json = (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        // nats-server writes a space before the CRLF; some tools split on it.
        return "INFO \(json) \r\n"
    }
}

/// CONNECT's JSON (nats-server `client.go: type ClientOpts`). Unknown fields are ignored.
/// Absent `verbose`/`pedantic` mean true: nats-server's defaults (real clients send false).
public struct ConnectOptions: Decodable, Equatable {
    public var verbose = true
    public var pedantic = true
    public var tlsRequired = false
    public var echo = true
    public var headers = false
    public var noResponders = false
    public var proto = 0
    public var user: String?
    public var pass: String?
    public var authToken: String?
    public var name: String?
    public var lang: String?
    public var version: String?
    public var nkey: String?
    public var jwt: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, tlsRequired = "tls_required", echo, headers
        case noResponders = "no_responders", proto = "protocol", user, pass
        case authToken = "auth_token", name, lang, version, nkey, jwt
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        verbose = try c.decodeIfPresent(Bool.self, forKey: .verbose) ?? true
        pedantic = try c.decodeIfPresent(Bool.self, forKey: .pedantic) ?? true
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        echo = try c.decodeIfPresent(Bool.self, forKey: .echo) ?? true
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        noResponders = try c.decodeIfPresent(Bool.self, forKey: .noResponders) ?? false
        proto = try c.decodeIfPresent(Int.self, forKey: .proto) ?? 0
        user = try c.decodeIfPresent(String.self, forKey: .user)
        pass = try c.decodeIfPresent(String.self, forKey: .pass)
        authToken = try c.decodeIfPresent(String.self, forKey: .authToken)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        lang = try c.decodeIfPresent(String.self, forKey: .lang)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        nkey = try c.decodeIfPresent(String.self, forKey: .nkey)
        jwt = try c.decodeIfPresent(String.self, forKey: .jwt)
    }
}
