import ArgumentParser
import ClusterServer

/// nats-server's command line, as far as clusterd implements it. Spellings follow
/// nats-server (`-js`, `-sd`, `--server_name`, ...) so scripts and harnesses carry over.
struct Flags: ParsableArguments {
    @Option(name: [.customShort("a"), .customLong("addr"), .customLong("net")], help: "Bind to host address")
    var addr: String?

    @Option(name: [.customShort("p"), .customLong("port")], parsing: .unconditional,
            help: "Client port (-1 picks a free port)")
    var port: Int?

    @Option(name: [.customShort("n"), .customLong("name"), .customLong("server_name")], help: "Server name")
    var serverName: String?

    @Option(name: [.customShort("m"), .customLong("http_port")], parsing: .unconditional,
            help: "HTTP monitoring port (-1 picks a free port)")
    var httpPort: Int?

    @Option(name: [.customLong("http_host")], help: "HTTP monitoring bind address")
    var httpHost: String?

    @Flag(name: [.customLong("js", withSingleDash: true), .customLong("jetstream")], help: "Enable JetStream")
    var jetstream = false

    @Option(name: [.customLong("sd", withSingleDash: true), .customLong("store_dir")], help: "JetStream storage directory")
    var storeDir: String?

    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration file")
    var config: String?

    @Option(name: [.customLong("cluster"), .customLong("cluster_listen")], help: "Cluster URL for route connections")
    var cluster: String?

    @Option(name: [.customLong("cluster_advertise")], help: "Cluster URL to advertise to other servers")
    var clusterAdvertise: String?

    @Option(name: [.customLong("cluster_name")], help: "Cluster name")
    var clusterName: String?

    @Option(name: [.customLong("routes")], help: "Routes to actively solicit (comma separated)")
    var routes: String?

    @Option(name: [.customLong("cluster_auto_remove_after")], help: "Remove a JetStream server unreachable this long, e.g. 10m (default: never)")
    var clusterAutoRemoveAfter: String?

    @Flag(name: [.customShort("D"), .customLong("debug")], help: "Enable debug logging")
    var debug = false

    @Flag(name: [.customShort("V"), .customLong("trace")], help: "Enable protocol trace logging")
    var trace = false

    @Option(name: [.customLong("user")], help: "User required for connections")
    var user: String?

    @Option(name: [.customLong("pass")], help: "Password required for connections")
    var pass: String?

    @Option(name: [.customLong("auth")], help: "Authorization token required for connections")
    var auth: String?

    @Option(name: [.customLong("max_payload")], help: "Maximum message payload in bytes")
    var maxPayload: Int?

    @Option(name: [.customShort("l"), .customLong("log")], help: "File to redirect log output")
    var log: String?

    @Option(name: [.customShort("P"), .customLong("pid")], help: "File to store the process id")
    var pidFile: String?

    @Flag(name: [.customLong("tls")], help: "Enable TLS, do not verify clients")
    var tls = false

    @Option(name: [.customLong("tlscert")], help: "Server certificate file")
    var tlsCert: String?

    @Option(name: [.customLong("tlskey")], help: "Private key for server certificate")
    var tlsKey: String?

    @Flag(name: [.customLong("tlsverify")], help: "Enable TLS, verify client certificates")
    var tlsVerify = false

    @Option(name: [.customLong("tlscacert")], help: "Client certificate CA for verification")
    var tlsCACert: String?

    @Flag(name: [.customShort("v"), .customLong("version")], help: "Show version")
    var version = false

    /// Flags that name features clusterd does not serve yet: refused, never silently ignored.
    func unsupported() -> [String] {
        []
    }

    private func autoRemoveSeconds(_ text: String) -> Double? {
        guard let s = ServerOptions.durationSeconds(text) else { return nil }
        return s >= 1 ? s : nil
    }

    /// Flag values that do not parse (reported as fatal errors before anything starts).
    func invalid() -> [String] {
        var out: [String] = []
        if let cluster, RouteURL(cluster) == nil { out.append("--cluster \"\(cluster)\": expected nats://host:port") }
        if let cluster, let c = RouteCredentials(url: cluster), c.password.isEmpty {
            out.append("--cluster \"\(cluster)\": a user in the cluster URL needs a password")
        }
        if let clusterAdvertise, RouteURL(clusterAdvertise).map({ $0.port <= 0 }) ?? true {
            out.append("--cluster_advertise \"\(clusterAdvertise)\": expected host:port")
        }
        if let clusterAutoRemoveAfter, autoRemoveSeconds(clusterAutoRemoveAfter) == nil {
            out.append("--cluster_auto_remove_after \"\(clusterAutoRemoveAfter)\": expected a duration of at least 1s, e.g. 10m")
        }
        for r in (routes ?? "").split(separator: ",") where RouteURL(String(r)).map({ $0.port <= 0 }) ?? true {
            out.append("--routes \"\(r)\": expected nats://host:port")
        }
        return out
    }

    /// Overrides `options` with what was given on the command line (flags win over the
    /// config file, as in nats-server).
    func apply(to options: inout ServerOptions) {
        if let addr { options.host = addr }
        if let port { options.port = port }
        if let serverName { options.serverName = serverName }
        if let httpPort { options.httpPort = httpPort }
        if let httpHost { options.httpHost = httpHost }
        // As nats-server: --store_dir alone does not enable JetStream.
        if jetstream { options.jetStream = true }
        if let storeDir { options.storeDirectory = storeDir }
        if let clusterName { options.clusterName = clusterName }
        if let cluster, let url = RouteURL(cluster) {
            options.clusterHost = url.host
            options.clusterPort = url.port
            // As nats-server: credentials in the cluster URL are the route authorization.
            if let c = RouteCredentials(url: cluster) {
                options.clusterAuth = RouteAuth(user: c.user, password: c.password,
                                                timeoutSeconds: options.clusterAuth?.timeoutSeconds ?? 2)
            }
        }
        if let clusterAdvertise, let url = RouteURL(clusterAdvertise) { options.clusterAdvertise = url }
        if let clusterAutoRemoveAfter, let d = autoRemoveSeconds(clusterAutoRemoveAfter) { options.jetStreamAutoRemoveAfterSeconds = d }
        if let routes { options.routes = routes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if debug { options.debug = true }
        if trace { options.trace = true }
        if let user { options.username = user }
        if let pass { options.password = pass }
        if let auth { options.authToken = auth }
        if let maxPayload { options.maxPayload = maxPayload }
        if let log { options.logFile = log }
        // As nats-server: any TLS flag turns client TLS on; flags override the config's block.
        if tls || tlsVerify || tlsCert != nil || tlsKey != nil || tlsCACert != nil {
            var t = options.tls ?? TLSOptions(certFile: "", keyFile: "")
            if let tlsCert { t.certFile = tlsCert }
            if let tlsKey { t.keyFile = tlsKey }
            if let tlsCACert { t.caFile = tlsCACert }
            if tlsVerify { t.verify = true }
            options.tls = t
        }
    }

    /// nats-server accepts `-sd=DIR` and `--port=4222`; split single-dash `=` forms for the
    /// argument parser (it already understands `--long=value`).
    static func normalize(_ args: [String]) -> [String] {
        args.flatMap { arg -> [String] in
            guard arg.hasPrefix("-"), !arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") else { return [arg] }
            return [String(arg[..<eq]), String(arg[arg.index(after: eq)...])]
        }
    }
}

import Foundation
