import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1

/// Builds the bodies of the monitoring endpoints with nats-server's field names.
final class MonitoringEndpoints: @unchecked Sendable {
    private unowned let server: NATSServer
    private let metrics: MetricsExporter
    private let cpu = CPUSampler()

    init(server: NATSServer) {
        self.server = server
        self.metrics = MetricsExporter()
    }

    func respond(to uri: String) -> MonitoringResponse {
        let (path, query) = Self.split(uri)
        switch path {
        case "/", "": return text(200, "clusterd monitoring: /healthz /varz /connz /subsz /routez /metrics\n")
        case "/healthz":
            let body = health(query)
            return MonitoringResponse(status: body["error"] == nil ? .ok : .serviceUnavailable, contentType: "application/json",
                                      body: Self.encode(body))
        case "/metrics":
            return MonitoringResponse(status: .ok, contentType: "text/plain; version=0.0.4",
                                      body: metrics.render(server, rssBytes: Self.residentBytes()))
        default:
            if let body = object(path, query) { return json(body) }
            return text(404, "404 page not found\n")
        }
    }

    /// An endpoint's JSON body (nil for a path without one), for HTTP and for the system
    /// account's requests (`SystemRequests`). `/healthz` here also carries `status_code`, as
    /// nats-server's answer to `$SYS.REQ.SERVER.PING.HEALTHZ` does.
    func object(_ path: String, _ query: [String: String]) -> [String: Any]? {
        switch path {
        case "/varz": return varz()
        case "/connz": return connz(query)
        case "/subsz", "/subscriptionsz": return subsz(query)
        case "/routez": return routez(query)
        case "/healthz":
            var body = health(query)
            body["status_code"] = body["error"] == nil ? 200 : 503
            return body
        default:
            if let handler = server.monitoringHandlers[path] { return handler(query) }
            // Without JetStream, nats-server's `/jsz` is an empty report marked `disabled`.
            if path == "/jsz" {
                return ["server_id": server.serverID, "now": Self.rfc3339(Date()), "disabled": true, "memory": 0,
                        "storage": 0, "reserved_memory": 0, "reserved_storage": 0, "accounts": 0, "ha_assets": 0,
                        "api": ["total": 0, "errors": 0]]
            }
            return nil
        }
    }

    // MARK: - endpoints

    /// `{"status": "ok"}`, or `"unavailable"` with the first failed check's `error`.
    private func health(_ query: [String: String]) -> [String: Any] {
        var error: String? = server.isReady ? nil : "server not ready"
        // Each check runs once: a lazy `compactMap(...).first` runs the winning check twice and
        // force-unwraps the second answer, which crashed the server when a check turned healthy
        // in between (a JetStream replica catching up).
        for check in server.healthChecks where error == nil {
            error = check(query)
        }
        guard let error else { return ["status": "ok"] }
        return ["status": "unavailable", "error": error]
    }

    /// `nats://user:secret@host` -> `nats://user:[REDACTED]@host`: /varz never shows secrets.
    static func redactURL(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let userinfo = url[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<url.index(after: colon)]) + "[REDACTED]" + String(url[at...])
    }

    func varz() -> [String: Any] {
        let o = server.options
        let out = server.outMsgsTotal
        let now = Date()
        var v: [String: Any] = [
            "server_id": server.serverID, "server_name": server.serverName,
            "version": ServerVersion.nats, "proto": 1, "go": "swift", "host": o.host, "port": server.clientPort,
            "auth_required": o.authRequired, "max_connections": o.maxConnections,
            "ping_interval": Int64(o.pingIntervalSeconds * 1e9), "ping_max": o.pingMax,
            "http_host": o.httpHost, "http_port": server.monitoringPort,
            "auth_timeout": o.authTimeoutSeconds, "max_control_line": o.maxControlLine,
            "max_payload": o.maxPayload, "max_pending": o.maxPending,
            "write_deadline": Int64(o.writeDeadlineSeconds * 1e9),
            "start": Self.rfc3339(server.startTime), "now": Self.rfc3339(now),
            "uptime": Self.goDuration(now.timeIntervalSince(server.startTime)),
            "mem": Self.residentBytes(), "cores": ProcessInfo.processInfo.activeProcessorCount,
            "cpu": cpu.sample(),
            "connections": server.connectionCount,
            "total_connections": server.stats.totalConnections.load(ordering: .relaxed),
            "routes": server.routeManager?.routeCount ?? 0, "remotes": server.routeManager?.routeCount ?? 0, "leafnodes": 0,
            "in_msgs": server.stats.inMsgs.load(ordering: .relaxed),
            "in_bytes": server.stats.inBytes.load(ordering: .relaxed),
            "out_msgs": out.msgs, "out_bytes": out.bytes,
            "slow_consumers": server.stats.slowConsumers.load(ordering: .relaxed),
            "auth_failures": server.stats.authFailures.load(ordering: .relaxed),
            "permission_violations": server.stats.permissionViolations.load(ordering: .relaxed),
            // clusterd only: consumer deliveries from a deposed leader refused here (finding 15).
            "stale_deliveries_dropped": server.staleDeliveries.dropped,
            "subscriptions": server.sublist.count,
            "config_load_time": Self.rfc3339(server.configLoadTime),
        ]
        // Tools read these unconditionally; nats-server always sends them.
        v["tls_timeout"] = o.tls?.timeoutSeconds ?? 2.0
        if let tls = o.tls {
            if !o.allowNonTLS { v["tls_required"] = true }
            if tls.verify { v["tls_verify"] = true }
        }
        if o.maxSubscriptions > 0 { v["max_subscriptions"] = o.maxSubscriptions }
        v["cluster"] = [String: Any]()
        // A running route mesh reports what it bound; a named cluster without one, its config.
        let routes = server.routeManager
        if let name = routes?.clusterName ?? o.clusterName {
            v["cluster"] = ["name": name, "addr": o.clusterHost ?? (routes == nil ? "" : "0.0.0.0"),
                            "cluster_port": routes?.port ?? o.clusterPort ?? 0, "urls": o.routes.map(Self.redactURL),
                            "auth_timeout": o.clusterAuth?.timeoutSeconds ?? 2]
        }
        if let routes { v["connect_urls"] = routes.clientConnectURLs() }
        if o.jetStream {
            v["jetstream"] = ["config": ["max_memory": o.maxMemoryStore, "max_storage": o.maxFileStore,
                                         "store_dir": o.storeDirectory ?? ""]]
        }
        return v
    }

    private func connz(_ query: [String: String]) -> [String: Any] {
        let includeSubs = query["subs"] == "1" || query["subs"] == "true" || query["subs"] == "detail"
        let offset = max(0, Int(query["offset"] ?? "") ?? 0)
        let limit = max(1, Int(query["limit"] ?? "") ?? 1024)
        let snaps = server.connections().map { $0.snapshot(includeSubscriptions: includeSubs) }.sorted { $0.cid < $1.cid }
        let now = Date()
        let page = snaps.dropFirst(offset).prefix(limit)
        let list: [[String: Any]] = page.map { s in
            var c: [String: Any] = [
                "cid": s.cid, "kind": "Client", "type": "nats", "ip": s.ip, "port": s.port,
                "start": Self.rfc3339(s.start), "last_activity": Self.rfc3339(s.lastActivity),
                "uptime": Self.goDuration(now.timeIntervalSince(s.start)),
                "idle": Self.goDuration(now.timeIntervalSince(s.lastActivity)),
                "pending_bytes": s.pendingBytes, "in_msgs": s.inMsgs, "out_msgs": s.outMsgs,
                "in_bytes": s.inBytes, "out_bytes": s.outBytes, "subscriptions": s.subscriptionCount,
            ]
            if !s.name.isEmpty { c["name"] = s.name }
            if !s.lang.isEmpty { c["lang"] = s.lang }
            if !s.version.isEmpty { c["version"] = s.version }
            c["account"] = s.account
            if let user = s.user { c["authorized_user"] = user }
            if let subjects = s.subjects { c["subscriptions_list"] = subjects }
            return c
        }
        return ["server_id": server.serverID, "now": Self.rfc3339(now), "num_connections": list.count,
                "total": snaps.count, "offset": offset, "limit": limit, "connections": list]
    }

    private func subsz(_ query: [String: String]) -> [String: Any] {
        var s: [String: Any] = [
            "server_id": server.serverID, "now": Self.rfc3339(Date()),
            "num_subscriptions": server.sublist.count, "num_cache": server.sublist.cacheCount,
        ]
        let st = server.sublist.stats
        s["num_inserts"] = st.inserts
        s["num_removes"] = st.removes
        s["num_matches"] = st.matches
        s["cache_hit_rate"] = st.cacheHitRate
        s["max_fanout"] = st.maxFanout
        s["avg_fanout"] = st.averageFanout
        let offset = max(0, Int(query["offset"] ?? "") ?? 0)
        let limit = max(1, Int(query["limit"] ?? "") ?? 1024)
        var subs = server.sublist.all()
        if let test = query["test"] { subs = subs.filter { Subject.matches(pattern: $0.subject, subject: test) } }
        s["total"] = subs.count
        s["offset"] = offset
        s["limit"] = limit
        if query["subs"] == "1" || query["subs"] == "true" || query["subs"] == "detail" {
            let page = subs.sorted { ($0.ownerID, $0.sid) < ($1.ownerID, $1.sid) }.dropFirst(offset).prefix(limit)
            s["subscriptions_list"] = page.map { sub -> [String: Any] in
                var d: [String: Any] = ["subject": sub.subject, "sid": sub.sid, "cid": sub.ownerID]
                if let q = sub.queue { d["qgroup"] = q }
                return d
            }
        }
        return s
    }

    private func routez(_ query: [String: String]) -> [String: Any] {
        let includeSubs = query["subs"] == "1" || query["subs"] == "true" || query["subs"] == "detail"
        let now = Date()
        let routes: [[String: Any]] = (server.routeManager?.snapshots(includeSubscriptions: includeSubs) ?? []).map { r in
            var d: [String: Any] = [
                "rid": r.rid, "remote_id": r.remoteID, "remote_name": r.remoteName, "did_solicit": r.didSolicit,
                "is_configured": r.isConfigured, "ip": r.ip, "port": r.port, "start": Self.rfc3339(r.start),
                "last_activity": Self.rfc3339(r.lastActivity), "uptime": Self.goDuration(now.timeIntervalSince(r.start)),
                "idle": Self.goDuration(now.timeIntervalSince(r.lastActivity)), "pending_size": r.pendingBytes,
                "in_msgs": r.inMsgs, "out_msgs": r.outMsgs, "in_bytes": r.inBytes, "out_bytes": r.outBytes,
                "subscriptions": r.subscriptionCount,
            ]
            if let subjects = r.subjects { d["subscriptions_list"] = subjects }
            return d
        }
        var out: [String: Any] = ["server_id": server.serverID, "server_name": server.serverName, "now": Self.rfc3339(now),
                                  "num_routes": routes.count, "routes": routes]
        if let gossip = server.gossip {
            // clusterd extension: the gossip membership view, this node included.
            out["members"] = gossip.members.map { m -> [String: Any] in
                var d: [String: Any] = ["name": m.name, "address": m.address, "server_id": m.serverID,
                                        "state": m.status, "incarnation": m.incarnation, "self": m.isSelf]
                if let rtt = m.rtt {
                    let us = rtt * 1e6 // Go's duration text, as nats-server's route "rtt"
                    d["rtt"] = us < 1000 ? String(format: "%.3fµs", us) : String(format: "%.3fms", us / 1000)
                }
                return d
            }
        }
        return out
    }

    // MARK: - helpers

    private func json(_ object: [String: Any]) -> MonitoringResponse {
        MonitoringResponse(status: .ok, contentType: "application/json", body: Self.encode(object))
    }

    private func text(_ code: Int, _ body: String) -> MonitoringResponse {
        MonitoringResponse(status: HTTPResponseStatus(statusCode: code), contentType: "text/plain", body: body)
    }

    static func encode(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object,
                                                     options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func split(_ uri: String) -> (String, [String: String]) {
        guard let q = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            let value = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            query[key] = value
        }
        return (String(uri[..<q]), query)
    }

    static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    /// Go's `time.Duration.String()` shape, e.g. `1h2m3s`, `45.5s`.
    static func goDuration(_ seconds: Double) -> String {
        var s = max(0, seconds)
        if s < 1 { return "\(Int(s * 1000))ms" }
        var out = ""
        let h = Int(s / 3600)
        if h > 0 { out += "\(h)h"; s -= Double(h * 3600) }
        let m = Int(s / 60)
        if m > 0 || h > 0 { out += "\(m)m"; s -= Double(m * 60) }
        return out + "\(Int(s))s"
    }

    /// Resident set size from /proc/self/statm (pages * page size).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Process CPU use (percent of one core) since the previous sample, from getrusage.
final class CPUSampler: @unchecked Sendable {
    private let lock = NIOLock()
    private var lastWall = Date()
    private var lastCPU = CPUSampler.cpuSeconds()

    func sample() -> Double {
        lock.withLock {
            let now = Date()
            let cpu = Self.cpuSeconds()
            let wall = now.timeIntervalSince(lastWall)
            let pct = wall > 0 ? (cpu - lastCPU) / wall * 100 : 0
            lastWall = now
            lastCPU = cpu
            return (pct * 10).rounded() / 10
        }
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
