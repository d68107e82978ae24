/// Per-user publish/subscribe permissions, decided as nats-server does.
///
/// Pure value types: the connection keeps the per-connection caches and reply tracking.
public struct SubjectPermission: Equatable, Sendable {
    /// nil: everything is allowed (deny may still refuse); an empty list allows nothing.
    public var allow: [String]?
    public var deny: [String]

    public init(allow: [String]? = nil, deny: [String] = []) {
        self.allow = allow
        self.deny = deny
    }

    var isUnrestricted: Bool { allow == nil && deny.isEmpty }
}

/// `allow_responses`: a user may publish to the reply subjects of messages it received, up
/// to `maxMessages` times each and within `expiresSeconds` of receiving the request.
public struct ResponsePermission: Equatable, Sendable {
    /// nats-server's defaults (`DEFAULT_ALLOW_RESPONSE_MAX_MSGS`, `..._EXPIRATION`).
    public static let defaultMaxMessages = 1
    public static let defaultExpiresSeconds: Double = 120

    public var maxMessages: Int
    public var expiresSeconds: Double

    public init(maxMessages: Int = defaultMaxMessages, expiresSeconds: Double = defaultExpiresSeconds) {
        self.maxMessages = maxMessages
        self.expiresSeconds = expiresSeconds
    }
}

public struct Permissions: Equatable, Sendable {
    public var publish: SubjectPermission?
    public var subscribe: SubjectPermission?
    public var response: ResponsePermission?

    public init(publish: SubjectPermission? = nil, subscribe: SubjectPermission? = nil,
                response: ResponsePermission? = nil) {
        self.publish = publish
        self.subscribe = subscribe
        self.response = response
        // As nats-server: allowing responses turns off the blanket publish allow, so only
        // replies (and explicitly allowed subjects) may be published.
        if response != nil {
            if self.publish == nil { self.publish = SubjectPermission() }
            if self.publish?.allow == nil { self.publish?.allow = [] }
        }
    }

    /// True when `publish` restricts anything (the fast path skips all checks otherwise).
    public var restrictsPublish: Bool { !(publish?.isUnrestricted ?? true) }

    /// The static publish decision for a literal subject (reply tracking comes on top).
    public func canPublish(_ subject: String) -> Bool {
        guard let p = publish else { return true }
        var allowed = true
        if let allow = p.allow {
            allowed = allow.contains { PermissionEntry($0).subjectMatches(subject) }
        }
        if allowed && p.deny.contains(where: { PermissionEntry($0).subjectMatches(subject) }) {
            allowed = false
        }
        return allowed
    }

    /// Whether a SUB on `subject` in `queue` is allowed. An allow entry must cover every
    /// subject the subscription could receive (`one.*` does not admit `one.>`); a deny entry
    /// refuses subscriptions it matches token by token. An entry `"subject queue"` applies to
    /// that queue group only.
    public func canSubscribe(_ subject: String, queue: String? = nil) -> Bool {
        guard let s = subscribe else { return true }
        var allowed = true
        if let allow = s.allow {
            let hits = allow.map(PermissionEntry.init).filter { $0.subjectCovers(subject) }
            allowed = hits.contains { $0.queue == nil }
            let queueHits = hits.filter { $0.queue != nil }
            if let queue, !queueHits.isEmpty {
                allowed = queueHits.contains { $0.queueMatches(queue) }
            }
        }
        if allowed {
            let hits = s.deny.map(PermissionEntry.init).filter { $0.subjectMatches(subject) }
            if hits.contains(where: { $0.queue == nil }) {
                allowed = false
            } else if let queue, hits.contains(where: { $0.queueMatches(queue) }) {
                allowed = false
            }
        }
        return allowed
    }

    /// True when an allowed wildcard subscription also covers denied subjects: its deliveries
    /// must then be filtered one by one (`sub.>` with `sub.secret` denied).
    public func needsDeliveryFilter(_ subject: String) -> Bool {
        guard let deny = subscribe?.deny, !deny.isEmpty, Subject.hasWildcard(subject) else { return false }
        return deny.contains { entry in
            let e = PermissionEntry(entry)
            return e.queue == nil && Subject.overlaps(e.subject, subject)
        }
    }

    /// Whether a message on the literal `subject` may be delivered to a filtered subscription.
    public func canReceive(_ subject: String) -> Bool {
        guard let deny = subscribe?.deny else { return true }
        return !deny.contains { entry in
            let e = PermissionEntry(entry)
            return e.queue == nil && e.subjectMatches(subject)
        }
    }
}

/// One permission list entry: a subject pattern, optionally followed by a queue-group pattern.
struct PermissionEntry {
    var subject: String
    var queue: String?

    init(_ text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        subject = parts.first.map(String.init) ?? text
        queue = parts.count > 1 ? String(parts[1]) : nil
    }

    func subjectMatches(_ s: String) -> Bool { Subject.matches(pattern: subject, subject: s) }

    /// True when every literal subject `s` (possibly a wildcard subscription) matches is
    /// matched by this entry's pattern.
    func subjectCovers(_ s: String) -> Bool {
        let p = subject.split(separator: ".", omittingEmptySubsequences: false)
        let t = s.split(separator: ".", omittingEmptySubsequences: false)
        var i = 0
        while i < p.count {
            if p[i] == ">" { return i < t.count }
            guard i < t.count else { return false }
            switch t[i] {
            case ">": return false
            case "*": if p[i] != "*" { return false }
            default: if p[i] != "*" && p[i] != t[i] { return false }
            }
            i += 1
        }
        return i == t.count
    }

    func queueMatches(_ q: String) -> Bool {
        guard let queue else { return false }
        return Subject.matches(pattern: queue, subject: q)
    }
}

/// Reply subjects a client must not use: service-import replies and JetStream acks are the
/// server's own, as are gateway replies (nats-server `isReservedReply`).
enum ReservedSubjects {
    static func isReservedReply(_ reply: String) -> Bool {
        (reply.hasPrefix("_R_.") && reply.utf8.count > 4) || (reply.hasPrefix("$JS.ACK.") && reply.utf8.count > 8)
            || (reply.hasPrefix("$GNR.") && reply.utf8.count > 5)
    }
}
