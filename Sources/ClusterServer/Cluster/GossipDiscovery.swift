import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns the configured route list into discovery inputs for the gossip layer: IP literals
/// are seed addresses as they are; host names are DNS names (a headless Service resolves to
/// every pod) that the driver re-resolves periodically.
struct GossipDiscovery: Equatable {
    /// `ip:port` seeds.
    var seeds: [String] = []
    /// `host:port` names to resolve.
    var names: [RouteURL] = []

    init(routes: [String]) {
        for text in routes {
            guard let url = RouteURL(text), url.port > 0 else { continue }
            if Self.isIPLiteral(url.host) {
                seeds.append(Self.address(url.host, url.port))
            } else if !names.contains(url) {
                names.append(url)
            }
        }
        seeds = Array(Set(seeds)).sorted()
    }

    /// The gossip address form of a host and port: `host:port`, IPv6 in brackets.
    static func address(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Every address `host` resolves to (blocking getaddrinfo: call it off the event loops);
    /// empty when it does not resolve.
    static func resolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            if let sa = ai.pointee.ai_addr {
                if ai.pointee.ai_family == AF_INET {
                    sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                        var a = p.pointee.sin_addr
                        _ = inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
                    }
                } else if ai.pointee.ai_family == AF_INET6 {
                    sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                        var a = p.pointee.sin6_addr
                        _ = inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                    }
                }
            }
            let text = String(cString: buf)
            if !text.isEmpty, !out.contains(text) { out.append(text) }
            cursor = ai.pointee.ai_next
        }
        return out
    }
}
