import Foundation

/// Route authorization (`cluster { authorization { user, password, timeout } }`, or the
/// credentials of `--cluster nats://user:pass@host:port`), as nats-server has it: an accepted
/// route must send a `CONNECT` with this user and password before anything else, within
/// `timeoutSeconds`, or it gets `-ERR 'Authorization Violation'` (or `'Authentication
/// Timeout'`) and is closed. Pure values and checks; the route handler does the I/O.
public struct RouteAuth: Equatable, Sendable {
    public var user: String
    /// Plain text, or a bcrypt hash (`$2a$...`) as nats-server accepts.
    public var password: String
    /// How long an accepted route may take to log in (nats-server's default: 2 s).
    public var timeoutSeconds: Double

    public init(user: String, password: String, timeoutSeconds: Double = 2) {
        self.user = user
        self.password = password
        self.timeoutSeconds = timeoutSeconds
    }

    /// Checking a password against a bcrypt hash takes tens of milliseconds: not on an event loop.
    var isSlow: Bool { Bcrypt.isHash(password) }

    /// Whether a route's `CONNECT` carries these credentials (may take a bcrypt's time).
    func accepts(user given: String?, password givenPassword: String?) -> Bool {
        guard let given, constantTimeEquals(given, user) else { return false }
        return passwordMatches(givenPassword ?? "", stored: password)
    }

    /// What this node sends when it dials a route whose URL names no credentials (routes
    /// learned by gossip; every node of a cluster shares the authorization): nil when the
    /// password is a bcrypt hash, which cannot be sent (such nodes need credentials in each
    /// route URL).
    var dialCredentials: RouteCredentials? {
        isSlow ? nil : RouteCredentials(user: user, password: password)
    }
}

/// The user and password a dialer sends in its route `CONNECT`.
public struct RouteCredentials: Equatable, Sendable {
    public var user: String
    public var password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// The credentials of a URL (`nats://user:pass@host:port`, percent-escapes decoded); nil
    /// when it names none. The user info ends at the last `@`, as `RouteURL` reads it.
    public init?(url text: String) {
        guard let info = RouteURL.split(text).userInfo else { return nil }
        let user = info.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(user[0]).removingPercentEncoding ?? String(user[0])
        guard !name.isEmpty else { return nil }
        let password = user.count > 1 ? (String(user[1]).removingPercentEncoding ?? String(user[1])) : ""
        self.init(user: name, password: password)
    }
}
