/// The name of nats-server's default account, used when no account is configured.
public let globalAccountName = "$G"

/// One configured user (`authorization { users }` or an account's `users`).
public struct UserConfig: Equatable, Sendable {
    public var user: String
    /// Plain text, or a bcrypt hash (`$2a$...`, `$2b$...`) as nats-server accepts.
    public var password: String
    public var permissions: Permissions?
    /// The account the user belongs to (`$G` for top-level users).
    public var account: String

    public init(user: String, password: String, permissions: Permissions? = nil, account: String = globalAccountName) {
        self.user = user
        self.password = password
        self.permissions = permissions
        self.account = account
    }

    var passwordIsBcrypt: Bool { Bcrypt.isHash(password) }
}

/// An exported stream or service, optionally restricted to some importing accounts.
public struct ExportConfig: Equatable, Sendable {
    public enum Kind: String, Sendable { case stream, service }
    public var kind: Kind
    public var subject: String
    /// nil: any account may import.
    public var accounts: [String]?
    /// Services: `singleton` (one reply per request, the default) or `stream` (any number
    /// until the response threshold).
    public var streamedResponses = false

    public init(kind: Kind, subject: String, accounts: [String]? = nil, streamedResponses: Bool = false) {
        self.kind = kind
        self.subject = subject
        self.accounts = accounts
        self.streamedResponses = streamedResponses
    }

    func allows(_ account: String) -> Bool { accounts.map { $0.contains(account) } ?? true }
}

/// An import of another account's stream or service into this one.
public struct ImportConfig: Equatable, Sendable {
    public var kind: ExportConfig.Kind
    /// The exporting account.
    public var account: String
    /// The subject in the exporting account.
    public var subject: String
    /// Streams: a prefix put in front of the subject in the importing account.
    public var prefix: String?
    /// The (literal) subject the import appears under locally; defaults to `subject`.
    public var to: String?

    public init(kind: ExportConfig.Kind, account: String, subject: String, prefix: String? = nil, to: String? = nil) {
        self.kind = kind
        self.account = account
        self.subject = subject
        self.prefix = prefix
        self.to = to
    }

    /// The subject of this import in the importing account.
    public var localSubject: String {
        if let to { return to }
        if let prefix { return prefix + "." + subject }
        return subject
    }
}

/// Per-account JetStream limits (`jetstream { max_memory, max_file, max_streams,
/// max_consumers }` in an account block); -1 is unlimited.
public struct AccountJetStreamLimits: Equatable, Sendable {
    public var maxMemory: Int64 = -1
    public var maxStorage: Int64 = -1
    public var maxStreams = -1
    public var maxConsumers = -1
    public init() {}
}

/// One `accounts { NAME { ... } }` entry.
public struct AccountConfig: Equatable, Sendable {
    public var name: String
    public var users: [UserConfig] = []
    public var exports: [ExportConfig] = []
    public var imports: [ImportConfig] = []
    /// `limits { max_connections, max_subscriptions, max_payload }`; -1 is unlimited.
    public var maxConnections = -1
    public var maxSubscriptions = -1
    public var maxPayload = -1
    /// nil: JetStream is not enabled for this account.
    public var jetStream: AccountJetStreamLimits?
    /// `mappings`: client publishes on a source subject go to a destination instead.
    public var mappings: [SubjectMappingConfig] = []

    public init(name: String) { self.name = name }
}
