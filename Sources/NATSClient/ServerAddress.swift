import Foundation

/// A `nats://host:port` address.
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }

    /// Parses `nats://host:port`, `host:port` or `host` (port 4222).
    public init?(_ url: String) {
        var rest = Substring(url)
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), (0...65535).contains(p) else { return nil }
            host = String(rest[..<colon]); port = p
        } else {
            host = String(rest); port = 4222
        }
        if host.isEmpty { return nil }
    }
    public var description: String { "nats://\(host):\(port)" }
}
