import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// How to connect, authenticate, keep alive and reconnect.
public struct NATSOptions: Sendable {
    /// Servers to try, in order; reconnect moves on to the next one.
    public var servers: [ServerAddress]
    /// Sent as CONNECT `name`; shows up in the server's `/connz`.
    public var name: String?
    public var user: String?
    public var password: String?
    public var token: String?
    /// false: the server does not deliver this connection's own publishes to its own subscriptions.
    public var echo = true

    /// TCP connect plus INFO/CONNECT/PING/PONG handshake, per server attempt.
    public var connectTimeout: TimeAmount = .seconds(2)
    public var allowReconnect = true
    /// Failed attempts (over all servers) before the connection gives up and closes.
    public var maxReconnectAttempts = 60
    /// Wait after a failed round over all servers: doubles from min to max (bounded backoff).
    public var reconnectWaitMin: TimeAmount = .milliseconds(20)
    public var reconnectWaitMax: TimeAmount = .seconds(2)

    /// Client PING every interval; after `maxPingsOut` unanswered the connection is declared dead.
    public var pingInterval: TimeAmount = .seconds(30)
    public var maxPingsOut = 2

    /// Publishers wait (connected) or fail with `outboundBufferFull` (reconnecting) above this.
    public var maxPendingBytes = 8 * 1024 * 1024
    /// Messages a subscription's AsyncSequence buffers before it drops new ones (slow consumer).
    public var subscriptionPendingLimit = 1_000_000
    /// Prefix of the request/reply inbox.
    public var inboxPrefix = "_INBOX"
    /// TLS: when set, the connection upgrades to TLS after the server's INFO (as NATS clients
    /// do). Without it, a server whose INFO says `tls_required` is refused.
    public var tls: TLSConfiguration?
    /// With `tls`: start TLS right after TCP connect, before the server's INFO (for servers
    /// configured with nats-server's `handshake_first`).
    public var tlsHandshakeFirst = false
    /// Add the servers a server announces in INFO `connect_urls` (the rest of its cluster) to
    /// the servers reconnect may use, as NATS clients do. Discovered servers use this
    /// connection's credentials.
    public var discoverServers = true
    /// Lame duck (INFO with `ldm:true`): move to another known server after a random delay of
    /// up to this long, so the clients of a stopping server do not all reconnect at the same
    /// instant. `.zero` moves at once. The move waits (at most 1 s more) for pending requests.
    public var lameDuckMoveJitter: TimeAmount = .milliseconds(500)
    /// Called (on an event loop; keep it short) when the connected server announces lame-duck
    /// mode, with that INFO and whether the connection is moving to another server.
    public var onLameDuck: (@Sendable (_ info: ServerInfo, _ moving: Bool) -> Void)?
    /// Event loops to run on; default is NIO's shared singleton group.
    public var eventLoopGroup: (any EventLoopGroup)?

    public init(servers: [ServerAddress]) {
        self.servers = servers
    }

    /// Parses `nats://host:port` URLs (a comma-separated entry counts as several). URLs may
    /// carry `user:pass@` or `token@`, which fill in the credentials when not set already.
    public init(urls: [String]) throws {
        var servers: [ServerAddress] = []
        var user: String?, password: String?, token: String?
        for entry in urls {
            for raw in entry.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !raw.isEmpty {
                guard let address = ServerAddress(raw) else { throw NATSError.invalidURL(raw) }
                servers.append(address)
                if let creds = Self.credentials(in: raw) {
                    if let colon = creds.firstIndex(of: ":") {
                        user = user ?? String(creds[..<colon])
                        password = password ?? String(creds[creds.index(after: colon)...])
                    } else {
                        token = token ?? String(creds)
                    }
                }
            }
        }
        guard !servers.isEmpty else { throw NATSError.noServers }
        self.init(servers: servers)
        self.user = user
        self.password = password
        self.token = token
    }

    private static func credentials(in url: String) -> Substring? {
        var rest = Substring(url)
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        guard let at = rest.lastIndex(of: "@") else { return nil }
        return rest[..<at]
    }

    /// Backoff after `failedRounds` complete rounds over the server list.
    func reconnectWait(afterRounds failedRounds: Int) -> TimeAmount {
        let shift = min(failedRounds, 20)
        let wait = reconnectWaitMin.nanoseconds << shift
        return .nanoseconds(min(wait, reconnectWaitMax.nanoseconds))
    }
}

