import Foundation

/// The INFO a node sends on a route (a subset of nats-server's route INFO). The same shape is
/// gossiped: an INFO whose `server_id` is not the route's peer announces a third server.
public struct RouteInfo: Codable, Equatable {
    public var serverID: String
    public var serverName: String
    public var version: String
    public var cluster: String
    /// The route URL others should dial to reach this server (`nats-route://host:port/`).
    public var routeURL: String
    /// Client URLs (`host:port`) of this server, for clients' `connect_urls`.
    public var connectURLs: [String]
    public var jetstream: Bool
    /// False on a gossip INFO a receiver must not act on (reserved, as nats' `no_gossip`).
    public var gossip: Bool
    /// The sender understands `XMSG sdeliver` (stamped JetStream deliveries); absent (false) on
    /// older clusterd versions, which get plain `deliver` frames.
    public var deliveryStamps: Bool
    /// The sender reads stream entries that carry a dedup time (`StreamEntry`, tag 4); absent
    /// (false) on older clusterd versions, whose groups get entries without one.
    public var dedupTimes: Bool
    /// The sender reads message entries whose dedup the leader decided (`StreamEntry`, tag 5);
    /// absent (false) on older clusterd versions, whose groups' leaders keep dedup at apply.
    public var decidedDedup: Bool
    /// The sender reads stream copies that carry the config their leader applied
    /// (`CatchupState.config`, frame version 4); absent (false) on older clusterd versions,
    /// which get copies without one.
    public var copyConfig: Bool
    /// The sender reads subject delete marker entries (`StreamEntry.marker`, tag 7); absent
    /// (false) on older clusterd versions, which would skip them: their groups get no markers.
    public var markers: Bool
    /// Reads sourced message entries (tag 8, a stream's `sources`); absent (false) on older
    /// clusterd versions, which could not decode them: their groups' sources do not run.
    public var sourced: Bool
    /// Reads mirrored message entries (tag 9, a stream's `mirror`); absent (false) on older
    /// clusterd versions, which could not decode them: their groups' mirrors do not run.
    public var mirrored: Bool
    /// Takes `jsinternal` route frames (a source's or mirror's consumer created as the
    /// server's own: not listed, not counted against `max_consumers`); absent (false) on older
    /// clusterd versions, to which such creates go through the API as a client's.
    public var internalFrames: Bool
    /// The sender is stopping (lame duck; nats-server's route INFO `ldm`): peers hand it no
    /// leadership. Absent while false (nats-server's `omitempty`).
    public var lameDuck: Bool?
    /// Routes must log in (`CONNECT` with user and password) before anything else; absent
    /// while false (nats-server's `auth_required`).
    public var authRequired: Bool?
    /// `lameDuck` as a plain flag (what `RouteManager.peers(announcing:)` reads).
    public var isLeaving: Bool { lameDuck == true }

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, cluster
        case routeURL = "ip", connectURLs = "connect_urls", jetstream, gossip
        case deliveryStamps = "js_delivery_stamps"
        case dedupTimes = "js_dedup_times"
        case decidedDedup = "js_dedup_decided"
        case copyConfig = "js_copy_config"
        case markers = "js_markers"
        case sourced = "js_sourced"
        case mirrored = "js_mirrored"
        case internalFrames = "js_internal_frames"
        case lameDuck = "ldm"
        case authRequired = "auth_required"
    }

    public init(serverID: String, serverName: String, version: String, cluster: String, routeURL: String,
                connectURLs: [String], jetstream: Bool, gossip: Bool = true, deliveryStamps: Bool = true, dedupTimes: Bool = true,
                decidedDedup: Bool = true, copyConfig: Bool = true, markers: Bool = true, sourced: Bool = true,
                mirrored: Bool = true, internalFrames: Bool = true) {
        self.serverID = serverID
        self.serverName = serverName
        self.version = version
        self.cluster = cluster
        self.routeURL = routeURL
        self.connectURLs = connectURLs
        self.jetstream = jetstream
        self.gossip = gossip
        self.deliveryStamps = deliveryStamps
        self.dedupTimes = dedupTimes
        self.decidedDedup = decidedDedup
        self.copyConfig = copyConfig
        self.markers = markers
        self.sourced = sourced
        self.mirrored = mirrored
        self.internalFrames = internalFrames
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decode(String.self, forKey: .serverID)
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName) ?? serverID
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        cluster = try c.decodeIfPresent(String.self, forKey: .cluster) ?? ""
        routeURL = try c.decodeIfPresent(String.self, forKey: .routeURL) ?? ""
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        jetstream = try c.decodeIfPresent(Bool.self, forKey: .jetstream) ?? false
        gossip = try c.decodeIfPresent(Bool.self, forKey: .gossip) ?? true
        deliveryStamps = try c.decodeIfPresent(Bool.self, forKey: .deliveryStamps) ?? false
        dedupTimes = try c.decodeIfPresent(Bool.self, forKey: .dedupTimes) ?? false
        decidedDedup = try c.decodeIfPresent(Bool.self, forKey: .decidedDedup) ?? false
        copyConfig = try c.decodeIfPresent(Bool.self, forKey: .copyConfig) ?? false
        markers = try c.decodeIfPresent(Bool.self, forKey: .markers) ?? false
        sourced = try c.decodeIfPresent(Bool.self, forKey: .sourced) ?? false
        mirrored = try c.decodeIfPresent(Bool.self, forKey: .mirrored) ?? false
        internalFrames = try c.decodeIfPresent(Bool.self, forKey: .internalFrames) ?? false
        lameDuck = try c.decodeIfPresent(Bool.self, forKey: .lameDuck) == true ? true : nil
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) == true ? true : nil
    }

    func line() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let json = (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "INFO \(json)\r\n"
    }
}

/// The CONNECT a soliciting node sends first (nats-server: name = server id, no `lang`, which
/// is how a client on the route port is told apart).
struct RouteConnect: Codable {
    var name: String
    var cluster: String
    var verbose = false
    var pedantic = false
    var headers = true
    var lang: String?
    /// Route authorization (`RouteAuth`); absent when the dialer has none.
    var user: String?
    var pass: String?

    func line() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let json = (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "CONNECT \(json)\r\n"
    }
}

/// A route or cluster listen URL: `nats-route://host:port`, `nats://user:pass@host:port`,
/// or `host:port`. Credentials are not part of it (`RouteCredentials(url:)` reads them).
public struct RouteURL: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text`; nil when there is no host:port with a port in -1...65535.
    public init?(_ text: String) {
        var rest = Self.split(text).hostPort
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        let host: Substring, portText: Substring
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (-1...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }

    public var description: String { "nats-route://\(host.contains(":") ? "[\(host)]" : host):\(port)/" }

    /// `text` without its scheme, split at its last `@` into the user info (nil when there is
    /// none) and the rest: how both the address and the credentials of a route URL are read.
    static func split(_ text: String) -> (userInfo: Substring?, hostPort: Substring) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        guard let at = rest.lastIndex(of: "@") else { return (nil, rest) }
        return (rest[..<at], rest[rest.index(after: at)...])
    }
}
