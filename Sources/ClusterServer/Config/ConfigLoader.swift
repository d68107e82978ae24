import Foundation
import ServerConfig

/// Reads a nats-server style config file into `ServerOptions`.
///
/// Keys are matched case-insensitively (as nats-server does). Unknown keys produce warnings;
/// keys for features clusterd does not serve yet (TLS, leafnodes, ...) are errors,
/// because silently ignoring them would weaken security or durability the operator asked for.
public enum ConfigLoader {
    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    nonisolated(unsafe) public private(set) static var lastWarnings: [String] = []

    public static func load(path: String, into base: ServerOptions) throws -> ServerOptions {
        let parser = ConfigParser(environment: ProcessInfo.processInfo.environment, readFile: readFile)
        let root = try parser.parseFile(atPath: path)
        var warnings: [String] = []
        let options = try map(root, into: base, warnings: &warnings)
        lastWarnings = warnings
        return options
    }

    /// Reads a config (or included) file; errors read like nats-server's (`open X: reason`).
    static func readFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file or directory"
            throw LoadError(description: "open \(path): \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LoadError(description: "\(path): not UTF-8 text")
        }
        return text
    }

    /// Applies a parsed config tree to `base`.
    public static func map(_ root: ConfigValue, into base: ServerOptions, warnings: inout [String]) throws -> ServerOptions {
        var o = base
        guard case let .map(entries) = root else { throw LoadError(description: "configuration must be a map of keys") }
        for (rawKey, value) in entries {
            let key = rawKey.lowercased()
            switch key {
            case "listen":
                let (h, p) = try hostPort(value, key)
                if let h { o.host = h }
                if let p { o.port = p }
            case "host", "net", "addr": o.host = try string(value, key)
            case "port": o.port = try int(value, key)
            case "server_name": o.serverName = try string(value, key)
            case "http", "monitor":
                let (h, p) = try hostPort(value, key)
                if let h { o.httpHost = h }
                if let p { o.httpPort = p }
            case "http_port", "monitor_port": o.httpPort = try int(value, key)
            case "http_host": o.httpHost = try string(value, key)
            case "max_payload": o.maxPayload = Int(try size(value, key))
            case "max_control_line": o.maxControlLine = Int(try size(value, key))
            case "max_connections", "max_conn": o.maxConnections = try int(value, key)
            case "max_pending": o.maxPending = Int(try size(value, key))
            case "max_subscriptions", "max_subs": o.maxSubscriptions = try int(value, key)
            case "tls": o.tls = try mapTLS(value, "tls")
            case "allow_non_tls": o.allowNonTLS = try bool(value, key)
            case "ping_interval": o.pingIntervalSeconds = try duration(value, key)
            case "ping_max": o.pingMax = try int(value, key)
            case "write_deadline": o.writeDeadlineSeconds = try duration(value, key)
            case "debug": o.debug = try bool(value, key)
            case "trace": o.trace = try bool(value, key)
            case "logfile", "log_file": o.logFile = try string(value, key)
            case "lame_duck_duration":
                o.lameDuckDurationSeconds = try duration(value, key)
                // nats-server's floor: shorter spreads make every client reconnect at once.
                guard o.lameDuckDurationSeconds >= 30 else {
                    throw LoadError(description: "invalid lame_duck_duration of \(o.lameDuckDurationSeconds)s, minimum is 30 seconds")
                }
            case "lame_duck_grace_period": o.lameDuckGracePeriodSeconds = try duration(value, key)
            case "authorization": try mapAuthorization(value, into: &o, warnings: &warnings)
            case "accounts": try mapAccounts(value, into: &o, warnings: &warnings)
            case "no_auth_user": o.noAuthUser = try string(value, key)
            case "system_account": o.systemAccount = try string(value, key)
            case "jetstream": try mapJetStream(value, into: &o, warnings: &warnings)
            case "cluster": try mapCluster(value, into: &o, warnings: &warnings)
            case "streams": o.declaredStreams = try DeclaredStreamsParser.parse(value)
            case "mappings", "maps": o.mappings = try mapMappings(value, key: key)
            case "pid_file", "ports_file_dir", "logtime", "syslog", "max_traced_msg_len", "connect_error_reports",
                 "reconnect_error_reports", "disable_sublist_cache", "no_header_support":
                warnings.append("config key '\(rawKey)' is accepted but has no effect in clusterd")
            case "leafnodes", "gateway", "websocket", "mqtt", "operator",
                 "resolver", "nkeys":
                throw LoadError(description: "config key '\(rawKey)' is not supported yet")
            default:
                warnings.append("unknown config key '\(rawKey)' ignored")
            }
        }
        try validateAuth(o)
        return o
    }

    private static func mapJetStream(_ value: ConfigValue, into o: inout ServerOptions, warnings: inout [String]) throws {
        switch value {
        case let .bool(b): o.jetStream = b
        case let .string(s): o.jetStream = ["enabled", "true", "yes", "on"].contains(s.lowercased())
        case .map:
            o.jetStream = true
            for (rawKey, v) in try entries(value, "jetstream") {
                switch rawKey.lowercased() {
                case "store_dir", "storedir": o.storeDirectory = try string(v, "jetstream.store_dir")
                case "max_memory_store", "max_mem_store", "max_mem": o.maxMemoryStore = try size(v, "jetstream.max_memory_store")
                case "max_file_store", "max_file": o.maxFileStore = try size(v, "jetstream.max_file_store")
                case "enabled", "enable": o.jetStream = try bool(v, "jetstream.enabled")
                case "sync_interval", "sync": o.jetStreamSyncIntervalSeconds = try syncInterval(v)
                default: warnings.append("unknown config key 'jetstream.\(rawKey)' ignored")
                }
            }
        default: throw LoadError(description: "jetstream: expected a block or a boolean")
        }
    }

    /// `always` (clusterd's default) or a duration of at least 10 ms, as nats-server takes it.
    private static func syncInterval(_ v: ConfigValue) throws -> Double? {
        if case let .string(text) = v, text.lowercased() == "always" { return nil }
        let seconds = try duration(v, "jetstream.sync_interval")
        guard seconds >= 0.01, seconds <= 86_400 else {
            throw LoadError(description: "jetstream.sync_interval: expected 'always' or a duration from 10ms to 24h")
        }
        return seconds
    }

    private static func mapCluster(_ value: ConfigValue, into o: inout ServerOptions, warnings: inout [String]) throws {
        for (rawKey, v) in try entries(value, "cluster") {
            switch rawKey.lowercased() {
            case "name": o.clusterName = try string(v, "cluster.name")
            case "listen":
                let (h, p) = try hostPort(v, "cluster.listen")
                o.clusterHost = h ?? "0.0.0.0"
                o.clusterPort = p
            case "host": o.clusterHost = try string(v, "cluster.host")
            case "port": o.clusterPort = try int(v, "cluster.port")
            case "advertise", "cluster_advertise":
                let text = try string(v, "cluster.advertise")
                guard let url = RouteURL(text), url.port > 0 else {
                    throw LoadError(description: "cluster.advertise \"\(text)\": expected host:port")
                }
                o.clusterAdvertise = url
            case "routes":
                guard case let .array(items) = v else { throw LoadError(description: "cluster.routes: expected an array") }
                o.routes = try items.map { try string($0, "cluster.routes") }
            case "gossip_period": // clusterd: the SWIM protocol period
                let d = try duration(v, "cluster.gossip_period")
                guard (0.1...60).contains(d) else { throw LoadError(description: "cluster.gossip_period: must be between 100ms and 60s") }
                o.gossipPeriodSeconds = d
            case "dns_refresh": // clusterd: how often host names in routes are re-resolved
                let d = try duration(v, "cluster.dns_refresh")
                guard (1...3600).contains(d) else { throw LoadError(description: "cluster.dns_refresh: must be between 1s and 1h") }
                o.dnsRefreshSeconds = d
            case "auto_remove_after": // clusterd: drop a JetStream member gone this long (default off)
                let d = try duration(v, "cluster.auto_remove_after")
                guard d >= 1 else { throw LoadError(description: "cluster.auto_remove_after: must be at least 1s") }
                o.jetStreamAutoRemoveAfterSeconds = d
            case "tls":
                var t = try mapTLS(v, "cluster.tls")
                // As nats-server: routes always present and verify certificates.
                t.verify = true
                o.clusterTLS = t
            case "authorization": o.clusterAuth = try mapRouteAuth(v)
            case "no_advertise", "connect_retries", "pool_size", "compression":
                warnings.append("config key 'cluster.\(rawKey)' is accepted but has no effect in clusterd")
            default: warnings.append("unknown config key 'cluster.\(rawKey)' ignored")
            }
        }
    }

    /// `cluster { authorization { user, password, timeout } }`. Other keys are errors: route
    /// permissions, tokens and user lists are not served, and dropping one silently would open
    /// routes the operator meant to restrict.
    static func mapRouteAuth(_ value: ConfigValue) throws -> RouteAuth {
        var user: String?, password: String?, timeout = 2.0
        for (rawKey, v) in try entries(value, "cluster.authorization") {
            switch rawKey.lowercased() {
            case "user", "username": user = try string(v, "cluster.authorization.user")
            case "password", "pass": password = try string(v, "cluster.authorization.password")
            case "timeout":
                // nats-server writes it as seconds, often fractional (`timeout: 0.5`).
                if case let .double(d) = v { timeout = d } else { timeout = try duration(v, "cluster.authorization.timeout") }
                guard timeout > 0, timeout <= 60 else {
                    throw LoadError(description: "cluster.authorization.timeout: must be more than 0 and at most 60s")
                }
            default:
                throw LoadError(description: "cluster.authorization.\(rawKey): not supported (route authorization takes user, password and timeout)")
            }
        }
        guard let user, !user.isEmpty, let password, !password.isEmpty else {
            throw LoadError(description: "cluster.authorization: user and password are required")
        }
        try checkHash(password, "cluster.authorization.password")
        return RouteAuth(user: user, password: password, timeoutSeconds: timeout)
    }

    /// A `tls { ... }` block. Unknown keys are errors: a TLS setting that is silently dropped
    /// (a cipher list, certificate pinning) would weaken what the operator asked for.
    static func mapTLS(_ value: ConfigValue, _ path: String) throws -> TLSOptions {
        var cert: String?, key: String?
        var t = TLSOptions(certFile: "", keyFile: "")
        for (rawKey, v) in try entries(value, path) {
            let name = "\(path).\(rawKey)"
            switch rawKey.lowercased() {
            case "cert_file": cert = try string(v, name)
            case "key_file": key = try string(v, name)
            case "ca_file": t.caFile = try string(v, name)
            case "verify": t.verify = try bool(v, name)
            case "insecure": t.insecure = try bool(v, name)
            case "timeout":
                // nats-server takes fractional seconds here (`timeout: 0.5`) or a duration.
                if case let .double(seconds) = v { t.timeoutSeconds = seconds } else { t.timeoutSeconds = try duration(v, name) }
                guard t.timeoutSeconds > 0, t.timeoutSeconds <= 3600 else {
                    throw LoadError(description: "\(name): expected a timeout between 0 and 3600 seconds")
                }
            case "handshake_first", "first":
                guard case let .bool(b) = v else {
                    throw LoadError(description: "\(name): only true or false is supported (no fallback delay)")
                }
                t.handshakeFirst = b
            case "min_version":
                let text = try string(v, name)
                guard let m = TLSOptions.MinVersion(rawValue: text) else {
                    throw LoadError(description: "\(name): expected \"1.2\" or \"1.3\", found \"\(text)\"")
                }
                t.minVersion = m
            default:
                throw LoadError(description: "config key '\(name)' is not supported yet")
            }
        }
        guard let cert, let key else {
            throw LoadError(description: "\(path): cert_file and key_file are both required")
        }
        t.certFile = cert
        t.keyFile = key
        return t
    }

    // MARK: - typed accessors with errors that name the key

    static func entries(_ v: ConfigValue, _ key: String) throws -> [(key: String, value: ConfigValue)] {
        guard case let .map(e) = v else { throw LoadError(description: "\(key): expected a block") }
        return e
    }

    static func string(_ v: ConfigValue, _ key: String) throws -> String {
        switch v {
        case let .string(s): return s
        case let .integer(i): return String(i)
        default: throw LoadError(description: "\(key): expected a string")
        }
    }

    static func int(_ v: ConfigValue, _ key: String) throws -> Int {
        switch v {
        case let .integer(i): return Int(i)
        case let .string(s): if let i = Int(s) { return i }
        default: break
        }
        throw LoadError(description: "\(key): expected an integer")
    }

    static func bool(_ v: ConfigValue, _ key: String) throws -> Bool {
        if case let .bool(b) = v { return b }
        throw LoadError(description: "\(key): expected true or false")
    }

    /// Sizes (`1GB`, `"64MB"`, plain integers) with nats-server's suffix rules.
    static func size(_ v: ConfigValue, _ key: String) throws -> Int64 {
        do { return try v.asSize(key: key) } catch { throw LoadError(description: "\(error)") }
    }

    /// Durations: Go-style strings (`2m`, `1h30m`, `500ms`) or a bare number of seconds.
    static func duration(_ v: ConfigValue, _ key: String) throws -> Double {
        do {
            let d = try v.asDuration(key: key)
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        } catch {
            throw LoadError(description: "\(error)")
        }
    }

    /// `"host:port"`, `":port"`, a bare port number, or a host alone.
    static func hostPort(_ v: ConfigValue, _ key: String) throws -> (String?, Int?) {
        if case let .integer(p) = v { return (nil, Int(p)) }
        let s = try string(v, key)
        guard let colon = s.lastIndex(of: ":") else {
            if let p = Int(s) { return (nil, p) }
            return (s, nil)
        }
        guard let p = Int(s[s.index(after: colon)...]) else { throw LoadError(description: "\(key): bad port in '\(s)'") }
        let host = String(s[..<colon])
        return (host.isEmpty ? nil : host, p)
    }
}

extension ServerOptions {
    /// Seconds of a duration written as in the config file (`90s`, `10m`, `1h`), for flags that
    /// take one; nil when it does not parse.
    public static func durationSeconds(_ text: String) -> Double? {
        guard let d = try? parseDuration(text) else { return nil }
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
