/// Who a client turned out to be after CONNECT.
struct AuthOutcome {
    /// The user name, or nil for token / anonymous clients.
    var user: String?
    var account: Account
    var permissions: Permissions?
}

/// Checks CONNECT credentials against the configured token, users and accounts, as
/// nats-server does: token first; then the named user (plain or bcrypt password); a client
/// that sent no credentials at all becomes the `no_auth_user`.
struct Authenticator {
    let options: ServerOptions
    let accounts: [String: Account]

    /// The user record `connect` names (or `no_auth_user` stands in for), if any.
    func candidate(for connect: ConnectOptions) -> UserConfig? {
        if options.authToken != nil { return nil }
        var users = options.allUsers
        if let user = options.username {
            users.append(UserConfig(user: user, password: options.password ?? ""))
        }
        if let name = connect.user, !name.isEmpty {
            // Look at every entry so the time taken does not reveal which users exist.
            var found: UserConfig?
            for u in users where constantTimeEquals(u.user, name) { found = u }
            return found
        }
        if let anon = options.noAuthUser, Self.sentNoCredentials(connect) {
            return users.first { $0.user == anon }
        }
        return nil
    }

    /// True when checking `connect` needs a bcrypt computation (run it off the event loop).
    func isSlow(_ connect: ConnectOptions) -> Bool {
        guard let u = candidate(for: connect), connect.user?.isEmpty == false else { return false }
        return u.passwordIsBcrypt
    }

    /// The outcome, or nil for "Authorization Violation". May take a bcrypt's time.
    func authenticate(_ connect: ConnectOptions) -> AuthOutcome? {
        guard let global = accounts[globalAccountName] else { return nil }
        guard options.authConfigured else { return AuthOutcome(user: nil, account: global, permissions: nil) }
        if let token = options.authToken {
            guard let given = connect.authToken, constantTimeEquals(given, token) else { return nil }
            return AuthOutcome(user: nil, account: global, permissions: nil)
        }
        guard let user = candidate(for: connect) else { return nil }
        if connect.user?.isEmpty == false {
            let given = connect.pass ?? ""
            guard passwordMatches(given, stored: user.password) else { return nil }
        }
        guard let account = accounts[user.account] else { return nil }
        return AuthOutcome(user: user.user, account: account, permissions: user.permissions)
    }

    static func sentNoCredentials(_ c: ConnectOptions) -> Bool {
        (c.user ?? "").isEmpty && (c.pass ?? "").isEmpty && (c.authToken ?? "").isEmpty
    }
}

/// A given password against a configured one: a bcrypt hash is verified (tens of milliseconds:
/// callers run it off the event loops), a plain one compared in constant time. Client and route
/// logins both check this way.
func passwordMatches(_ given: String, stored: String) -> Bool {
    Bcrypt.isHash(stored) ? Bcrypt.verify(given, against: stored) : constantTimeEquals(given, stored)
}
