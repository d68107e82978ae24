/// One of the system account's server requests, as nats-server reads them (pure: no I/O):
/// `$SYS.REQ.SERVER.PING` (statistics) and `$SYS.REQ.SERVER.PING.<KIND>` go to every server,
/// `$SYS.REQ.SERVER.<server id>.<KIND>` to one. The body is JSON: the endpoint's options under
/// nats-server's JSON names, plus filters that let servers stay silent (`server_name`, `host`,
/// `cluster`: each must be contained in this server's). The `nats` CLI's `server list`,
/// `server report` and `server check` are built on them.
struct SystemRequest: Equatable {
    /// The kinds answered here. Others (`ACCOUNTZ`, `GATEWAYZ`, `LEAFZ`, ...) have no
    /// subscriber, so a request for one finds no responders, as one for an unknown kind does on
    /// nats-server.
    enum Kind: String, CaseIterable {
        case statsz = "STATSZ", varz = "VARZ", connz = "CONNZ", subsz = "SUBSZ", routez = "ROUTEZ"
        case jsz = "JSZ", healthz = "HEALTHZ", idz = "IDZ"

        /// The monitoring endpoint whose body a reply carries (`statsz` and `idz` have their own).
        var path: String { "/" + rawValue.lowercased() }
    }

    /// A bad request body: every addressed server answers it with a 400 error.
    struct Failure: Error, Equatable {
        let description: String
    }

    var kind: Kind
    /// Filters (`EventFilterOptions`); empty ones match every server.
    var serverName = ""
    var host = ""
    var cluster = ""
    /// The options in the form the HTTP endpoint takes them (`?subs=detail&offset=2`).
    var query: [String: String] = [:]

    /// Every subject a server with `serverID` subscribes in the system account.
    static func subjects(serverID: String) -> [String] {
        ["$SYS.REQ.SERVER.PING"] + Kind.allCases.flatMap { ["$SYS.REQ.SERVER.PING.\($0.rawValue)", "$SYS.REQ.SERVER.\(serverID).\($0.rawValue)"] }
    }

    /// The kind `subject` asks this server (`serverID`) for, nil when it is not one of ours.
    static func kind(of subject: String, serverID: String) -> Kind? {
        if subject == "$SYS.REQ.SERVER.PING" { return .statsz }
        for prefix in ["$SYS.REQ.SERVER.PING.", "$SYS.REQ.SERVER.\(serverID)."] where subject.hasPrefix(prefix) {
            return Kind(rawValue: String(subject.dropFirst(prefix.count)))
        }
        return nil
    }

    /// Reads a request body (empty means no options). Options of the wrong type are refused
    /// like bad JSON; unknown ones are ignored (newer tools send more than older servers know).
    static func parse(_ kind: Kind, body: [UInt8]) throws -> SystemRequest {
        let o: JSONObject
        do {
            o = try JSONObject.parse(body, typeName: "\(kind.rawValue.capitalized)EventOptions")
        } catch let e as JSAPIError {
            throw Failure(description: e.text)
        }
        var r = SystemRequest(kind: kind)
        do {
            r.serverName = try o.string("server_name") ?? ""
            r.host = try o.string("host") ?? ""
            r.cluster = try o.string("cluster") ?? ""
            for (json, http) in queryNames(kind) {
                if let v = try queryValue(o, json) { r.query[http] = v }
            }
            // Subscriptions with their details, asked for by two booleans in JSON.
            if try o.bool("subscriptions_detail") == true, kind == .connz || kind == .routez { r.query["subs"] = "detail" }
        } catch let e as JSAPIError {
            throw Failure(description: e.text)
        }
        return r
    }

    /// True when the filters leave this server out (it then does not answer at all).
    func excludes(serverName name: String, host h: String, cluster c: String) -> Bool {
        (!serverName.isEmpty && !name.contains(serverName)) || (!host.isEmpty && !h.contains(host))
            || (!cluster.isEmpty && !c.contains(cluster))
    }

    /// JSON option name -> HTTP query name, per kind (nats-server's `*Options` structs).
    private static func queryNames(_ kind: Kind) -> [(String, String)] {
        switch kind {
        case .connz: return [("subscriptions", "subs"), ("offset", "offset"), ("limit", "limit"), ("sort", "sort"),
                             ("auth", "auth"), ("cid", "cid"), ("state", "state"), ("user", "user"), ("acc", "acc")]
        case .subsz: return [("subscriptions", "subs"), ("offset", "offset"), ("limit", "limit"), ("test", "test"),
                             ("account", "acc")]
        case .routez: return [("subscriptions", "subs")]
        case .jsz: return [("account", "acc"), ("accounts", "accounts"), ("streams", "streams"), ("consumer", "consumers"),
                           ("config", "config"), ("leader_only", "leader-only"), ("offset", "offset"), ("limit", "limit"),
                           ("raft", "raft")]
        case .healthz: return [("js-enabled-only", "js-enabled-only"), ("js-server-only", "js-server-only"),
                               ("js-meta-only", "js-meta-only"), ("account", "account"), ("stream", "stream"),
                               ("consumer", "consumer"), ("details", "details")]
        case .statsz, .varz, .idz: return []
        }
    }

    /// An option's value as query text (booleans and integers as the HTTP form writes them);
    /// nil when absent or null, an error for an array or object.
    private static func queryValue(_ o: JSONObject, _ key: String) throws -> String? {
        guard let v = o.fields[key] else { return nil }
        if JSONObject.isBool(v) { return try o.bool(key).map { $0 ? "true" : "false" } }
        if v is String { return try o.string(key) }
        return try o.int64(key).map { String($0) }
    }
}
