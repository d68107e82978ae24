import Foundation

/// The `/etc/hosts` format (`ADDRESS NAME [ALIAS...]`, `#` comments), read from the file named
/// by the `CLUSTERD_HOSTS_FILE` environment variable into `ServerOptions.routeHostOverrides`.
///
/// Why: the Kubernetes config seeds routes with DNS names of the headless Service
/// (`clusterd-0.clusterd-headless:6222`). A test that runs that exact config as three local
/// processes maps those names to loopback addresses with this file instead of touching the
/// machine's resolver. Only route dialing consults it; unset (production), nothing changes.
public enum HostsFile {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Name (lowercased) -> address. The first line naming a host wins, as in `/etc/hosts`.
    public static func parse(_ text: String, fileName: String = "hosts") throws -> [String: String] {
        var out: [String: String] = [:]
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let address = fields.first else { continue }
            guard isIPAddress(address) else {
                throw ParseError(description: "\(fileName):\(n + 1): '\(address)' is not an IP address")
            }
            guard fields.count > 1 else {
                throw ParseError(description: "\(fileName):\(n + 1): address \(address) names no host")
            }
            for name in fields.dropFirst() where out[name.lowercased()] == nil {
                out[name.lowercased()] = address
            }
        }
        return out
    }

    public static func load(path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ParseError(description: "cannot read hosts file \(path)")
        }
        return try parse(text, fileName: path)
    }

    static func isIPAddress(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
    }
}
