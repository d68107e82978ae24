import ServerConfig

/// Maps `authorization`, `accounts` and `no_auth_user` (nats-server's spellings) into
/// `ServerOptions`, then checks that imports, exports and users fit together.
extension ConfigLoader {
    static func mapAuthorization(_ value: ConfigValue, into o: inout ServerOptions, warnings: inout [String]) throws {
        var defaults: Permissions?
        var users: [UserConfig] = []
        for (rawKey, v) in try entries(value, "authorization") {
            switch rawKey.lowercased() {
            case "user", "username": o.username = try string(v, "authorization.user")
            case "password", "pass": o.password = try string(v, "authorization.password")
            case "token": o.authToken = try string(v, "authorization.token")
            case "timeout": o.authTimeoutSeconds = try duration(v, "authorization.timeout")
            case "users": users = try mapUsers(v, key: "authorization.users", account: globalAccountName, warnings: &warnings)
            case "default_permission", "default_permissions", "permissions":
                defaults = try mapPermissions(v, key: "authorization.\(rawKey)")
            default:
                throw LoadError(description: "authorization key '\(rawKey)' is not supported")
            }
        }
        if let defaults {
            for i in users.indices where users[i].permissions == nil { users[i].permissions = defaults }
        }
        o.users = users
        if o.authToken != nil && !users.isEmpty {
            throw LoadError(description: "authorization: a token cannot be combined with a users array")
        }
    }

    static func mapUsers(_ v: ConfigValue, key: String, account: String, warnings: inout [String]) throws -> [UserConfig] {
        guard case let .array(items) = v else { throw LoadError(description: "\(key): expected an array") }
        return try items.map { try mapUser($0, key: key, account: account, warnings: &warnings) }
    }

    private static func mapUser(_ v: ConfigValue, key: String, account: String, warnings: inout [String]) throws -> UserConfig {
        var user: String?
        var password: String?
        var permissions: Permissions?
        for (rawKey, field) in try entries(v, "\(key)[]") {
            switch rawKey.lowercased() {
            case "user", "username": user = try string(field, "\(key)[].user")
            case "password", "pass": password = try string(field, "\(key)[].password")
            case "permission", "permissions": permissions = try mapPermissions(field, key: "\(key)[].permissions")
            case "allowed_connection_types", "connection_types", "clients":
                warnings.append("config key '\(key)[].\(rawKey)' is accepted but has no effect in clusterd")
            default:
                throw LoadError(description: "\(key)[].\(rawKey) is not supported")
            }
        }
        guard let user, !user.isEmpty else { throw LoadError(description: "\(key)[]: each user needs a user name") }
        guard let password else { throw LoadError(description: "\(key)[] \(user): a password is required") }
        try checkHash(password, "\(key)[] \(user)")
        return UserConfig(user: user, password: password, permissions: permissions, account: account)
    }

    /// A password that looks like a bcrypt hash must be one: a malformed hash would refuse every
    /// login, so it fails the load instead (`what` names it in the error).
    static func checkHash(_ password: String, _ what: String) throws {
        guard Bcrypt.isHash(password) else { return }
        do { _ = try Bcrypt.parse(password) } catch {
            throw LoadError(description: "\(what): malformed bcrypt password hash")
        }
    }

    /// `permissions { publish, subscribe, allow_responses }`; `publish`/`subscribe` take a
    /// subject, a list (the allow list) or `{ allow, deny }`.
    static func mapPermissions(_ v: ConfigValue, key: String) throws -> Permissions {
        var publish: SubjectPermission?
        var subscribe: SubjectPermission?
        var response: ResponsePermission?
        for (rawKey, field) in try entries(v, key) {
            switch rawKey.lowercased() {
            case "pub", "publish", "import": publish = try mapSubjectPermission(field, key: "\(key).publish")
            case "sub", "subscribe", "export": subscribe = try mapSubjectPermission(field, key: "\(key).subscribe")
            case "allow_responses", "publish_allow_responses":
                switch field {
                case let .bool(b): response = b ? ResponsePermission() : nil
                case .map:
                    var r = ResponsePermission()
                    for (k, f) in try entries(field, "\(key).allow_responses") {
                        switch k.lowercased() {
                        case "max", "max_msgs", "max_messages", "max_responses":
                            let n = try int(f, "\(key).allow_responses.max")
                            if n > 0 { r.maxMessages = n }
                        case "expires", "expiration", "ttl":
                            let d = try duration(f, "\(key).allow_responses.expires")
                            if d > 0 { r.expiresSeconds = d }
                        default: throw LoadError(description: "\(key).allow_responses.\(k) is not supported")
                        }
                    }
                    response = r
                default: throw LoadError(description: "\(key).allow_responses: expected true, false or a block")
                }
            default:
                throw LoadError(description: "unknown field '\(rawKey)' parsing \(key)")
            }
        }
        return Permissions(publish: publish, subscribe: subscribe, response: response)
    }

    private static func mapSubjectPermission(_ v: ConfigValue, key: String) throws -> SubjectPermission {
        guard case .map = v else { return SubjectPermission(allow: try subjectList(v, key: key), deny: []) }
        var p = SubjectPermission()
        for (rawKey, field) in try entries(v, key) {
            switch rawKey.lowercased() {
            case "allow": p.allow = try subjectList(field, key: "\(key).allow")
            case "deny": p.deny = try subjectList(field, key: "\(key).deny")
            default: throw LoadError(description: "unknown field '\(rawKey)' parsing \(key)")
            }
        }
        return p
    }

    /// A subject or an array of subjects, each checked (an entry may add a queue group).
    private static func subjectList(_ v: ConfigValue, key: String) throws -> [String] {
        let items: [ConfigValue]
        if case let .array(a) = v { items = a } else { items = [v] }
        return try items.map { item in
            let text = try string(item, key)
            let entry = PermissionEntry(text)
            guard Subject.isValidSubscription(entry.subject),
                  entry.queue.map(Subject.isValidSubscription) ?? true else {
                throw LoadError(description: "\(key): invalid subject \"\(text)\"")
            }
            return text
        }
    }

    // MARK: - accounts

    static func mapAccounts(_ value: ConfigValue, into o: inout ServerOptions, warnings: inout [String]) throws {
        var accounts: [AccountConfig] = []
        for (name, v) in try entries(value, "accounts") {
            guard !name.isEmpty, !name.contains(" ") else { throw LoadError(description: "accounts: invalid account name '\(name)'") }
            if name == globalAccountName { throw LoadError(description: "accounts: '\(globalAccountName)' is reserved") }
            var acc = AccountConfig(name: name)
            var defaults: Permissions?
            for (rawKey, field) in try entries(v, "accounts.\(name)") {
                let key = "accounts.\(name).\(rawKey)"
                switch rawKey.lowercased() {
                case "users": acc.users = try mapUsers(field, key: "accounts.\(name).users", account: name, warnings: &warnings)
                case "exports": acc.exports = try array(field, key).map { try mapExport($0, key: key) }
                case "imports": acc.imports = try array(field, key).map { try mapImport($0, key: key) }
                case "default_permissions", "default_permission": defaults = try mapPermissions(field, key: key)
                case "limits": try mapAccountLimits(field, key: key, into: &acc)
                case "jetstream":
                    acc.jetStream = try mapAccountJetStream(field, key: key)
                case "max_connections", "max_conn", "max_conns": acc.maxConnections = try int(field, key)
                case "max_subscriptions", "max_subs": acc.maxSubscriptions = try int(field, key)
                case "mappings", "maps": acc.mappings = try mapMappings(field, key: key)
                default: throw LoadError(description: "config key '\(key)' is not supported")
                }
            }
            if let defaults {
                for i in acc.users.indices where acc.users[i].permissions == nil { acc.users[i].permissions = defaults }
            }
            accounts.append(acc)
        }
        o.accounts = accounts
    }

    private static func array(_ v: ConfigValue, _ key: String) throws -> [ConfigValue] {
        guard case let .array(a) = v else { throw LoadError(description: "\(key): expected an array") }
        return a
    }

    private static func mapAccountLimits(_ v: ConfigValue, key: String, into acc: inout AccountConfig) throws {
        for (rawKey, field) in try entries(v, key) {
            switch rawKey.lowercased() {
            case "max_connections", "max_conn", "max_conns": acc.maxConnections = try int(field, "\(key).\(rawKey)")
            case "max_subscriptions", "max_subs": acc.maxSubscriptions = try int(field, "\(key).\(rawKey)")
            case "max_payload", "max_pay": acc.maxPayload = Int(try size(field, "\(key).\(rawKey)"))
            default: throw LoadError(description: "config key '\(key).\(rawKey)' is not supported")
            }
        }
    }

    private static func mapAccountJetStream(_ v: ConfigValue, key: String) throws -> AccountJetStreamLimits? {
        switch v {
        case let .bool(b): return b ? AccountJetStreamLimits() : nil
        case let .string(s):
            switch s.lowercased() {
            case "enabled", "enable", "true", "yes", "on": return AccountJetStreamLimits()
            case "disabled", "disable", "false", "no", "off": return nil
            default: throw LoadError(description: "\(key): expected enabled, disabled or a block")
            }
        case .map:
            var l = AccountJetStreamLimits()
            for (rawKey, field) in try entries(v, key) {
                let k = "\(key).\(rawKey)"
                switch rawKey.lowercased() {
                case "max_memory", "max_mem", "mem", "memory", "max_memory_store": l.maxMemory = try size(field, k)
                case "max_file", "max_store", "max_disk", "store", "disk", "max_file_store": l.maxStorage = try size(field, k)
                case "max_streams", "streams": l.maxStreams = try int(field, k)
                case "max_consumers", "consumers": l.maxConsumers = try int(field, k)
                default: throw LoadError(description: "config key '\(k)' is not supported")
                }
            }
            return l
        default: throw LoadError(description: "\(key): expected enabled, disabled or a block")
        }
    }

    /// `{stream: "x.>"}` / `{service: "req", accounts: [B], response_type: stream}`.
    private static func mapExport(_ v: ConfigValue, key: String) throws -> ExportConfig {
        var kind: ExportConfig.Kind?
        var subject = ""
        var accounts: [String]?
        var streamed = false
        for (rawKey, field) in try entries(v, "\(key)[]") {
            switch rawKey.lowercased() {
            case "stream", "service":
                guard kind == nil else { throw LoadError(description: "\(key)[]: an export is either a stream or a service") }
                kind = rawKey.lowercased() == "stream" ? .stream : .service
                subject = try string(field, "\(key)[].\(rawKey)")
            case "accounts": accounts = try array(field, "\(key)[].accounts").map { try string($0, "\(key)[].accounts") }
            case "response", "response_type":
                switch try string(field, "\(key)[].response_type").lowercased() {
                case "singleton", "single": streamed = false
                case "stream", "streamed", "chunked": streamed = true
                default: throw LoadError(description: "\(key)[].response_type: expected singleton or stream")
                }
            case "description", "info_url", "latency", "threshold", "response_threshold", "allow_trace":
                break
            default: throw LoadError(description: "\(key)[].\(rawKey) is not supported")
            }
        }
        guard let kind else { throw LoadError(description: "\(key)[]: expected 'stream' or 'service'") }
        guard Subject.isValidSubscription(subject) else { throw LoadError(description: "\(key)[]: invalid subject \"\(subject)\"") }
        return ExportConfig(kind: kind, subject: subject, accounts: accounts, streamedResponses: streamed)
    }

    /// `{stream: {account: A, subject: "x.>"}, prefix: p}` / `{service: {account, subject}, to: "local"}`.
    private static func mapImport(_ v: ConfigValue, key: String) throws -> ImportConfig {
        var kind: ExportConfig.Kind?
        var account = ""
        var subject = ""
        var prefix: String?
        var to: String?
        for (rawKey, field) in try entries(v, "\(key)[]") {
            switch rawKey.lowercased() {
            case "stream", "service":
                guard kind == nil else { throw LoadError(description: "\(key)[]: an import is either a stream or a service") }
                kind = rawKey.lowercased() == "stream" ? .stream : .service
                for (k, f) in try entries(field, "\(key)[].\(rawKey)") {
                    switch k.lowercased() {
                    case "account": account = try string(f, "\(key)[].\(rawKey).account")
                    case "subject": subject = try string(f, "\(key)[].\(rawKey).subject")
                    default: throw LoadError(description: "\(key)[].\(rawKey).\(k) is not supported")
                    }
                }
            case "prefix": prefix = try string(field, "\(key)[].prefix")
            case "to": to = try string(field, "\(key)[].to")
            case "share", "allow_trace": break
            default: throw LoadError(description: "\(key)[].\(rawKey) is not supported")
            }
        }
        guard let kind else { throw LoadError(description: "\(key)[]: expected 'stream' or 'service'") }
        guard !account.isEmpty else { throw LoadError(description: "\(key)[]: the import needs an account") }
        guard Subject.isValidSubscription(subject) else { throw LoadError(description: "\(key)[]: invalid subject \"\(subject)\"") }
        if let to {
            guard Subject.isValidLiteral(to), Subject.isValidLiteral(subject) else {
                throw LoadError(description: "\(key)[]: 'to' needs a literal subject on both sides (\"\(subject)\" -> \"\(to)\")")
            }
        }
        if let prefix {
            guard kind == .stream else { throw LoadError(description: "\(key)[]: 'prefix' applies to stream imports only") }
            guard Subject.isValidLiteral(prefix) else { throw LoadError(description: "\(key)[]: invalid prefix \"\(prefix)\"") }
        }
        return ImportConfig(kind: kind, account: account, subject: subject, prefix: prefix, to: to)
    }

    /// Cross-checks after the whole file was read: unique users, a known `no_auth_user`, and
    /// every import backed by a matching export that admits the importer.
    static func validateAuth(_ o: ServerOptions) throws {
        var seen = Set<String>()
        for u in o.allUsers {
            guard seen.insert(u.user).inserted else { throw LoadError(description: "duplicate user \"\(u.user)\" detected") }
        }
        if let name = o.noAuthUser, !seen.contains(name) {
            throw LoadError(description: "no_auth_user: \"\(name)\" not present as user or nkey in authorization block or account configuration")
        }
        let byName = Dictionary(o.accounts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        if let sys = o.systemAccount, byName[sys] == nil {
            throw LoadError(description: "system_account: account \"\(sys)\" is not defined in accounts")
        }
        for acc in o.accounts {
            for imp in acc.imports {
                guard let exporter = byName[imp.account] else {
                    throw LoadError(description: "accounts.\(acc.name).imports: unknown account \"\(imp.account)\"")
                }
                guard imp.account != acc.name else {
                    throw LoadError(description: "accounts.\(acc.name).imports: an account cannot import from itself")
                }
                let ok = exporter.exports.contains {
                    $0.kind == imp.kind && $0.allows(acc.name) && Subject.matches(pattern: $0.subject, subject: imp.subject)
                }
                guard ok else {
                    throw LoadError(description: "accounts.\(acc.name).imports: \(imp.kind.rawValue) import \"\(imp.subject)\" from account \"\(imp.account)\" is not authorized (no matching export)")
                }
            }
        }
    }
}
