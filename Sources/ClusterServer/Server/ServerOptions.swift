/// Everything that configures one clusterd node. Filled from flags and/or a config file.
public struct ServerOptions: Sendable {
    public var serverName: String?
    /// Client listener. `port == -1` picks a free port (as nats-server `--port -1`).
    public var host = "0.0.0.0"
    public var port = 4222
    /// Monitoring HTTP listener; `httpPort == 0` disables it, -1 picks a free port.
    public var httpHost = "0.0.0.0"
    public var httpPort = 0

    public var maxPayload = 1_048_576
    public var maxControlLine = 4096
    public var maxConnections = 65_536
    /// Bytes queued for one client before it is cut off as a slow consumer.
    public var maxPending = 64 * 1_048_576
    /// Subscriptions one connection may hold; 0 is unlimited (nats-server `max_subscriptions`).
    public var maxSubscriptions = 0
    public var pingIntervalSeconds: Double = 120
    public var pingMax = 2
    public var writeDeadlineSeconds: Double = 10
    public var authTimeoutSeconds: Double = 2

    /// Single-user authentication (`--user/--pass`, `authorization { user, password }`).
    public var username: String?
    public var password: String?
    /// Token authentication (`--auth`, `authorization { token }`).
    public var authToken: String?
    /// Several users of the global account (`authorization { users: [...] }`).
    public var users: [UserConfig] = []
    /// Top-level `mappings` (the global account's).
    public var mappings: [SubjectMappingConfig] = []
    /// `accounts { NAME { users, exports, imports, limits, jetstream, mappings } }`.
    public var accounts: [AccountConfig] = []
    /// A configured user that clients without credentials are logged in as.
    public var noAuthUser: String?
    /// `system_account: NAME` (one of `accounts`): where operator requests such as
    /// `$JS.API.SERVER.REMOVE` are answered once accounts are configured.
    public var systemAccount: String?

    public var jetStream = false
    public var storeDirectory: String?
    public var maxMemoryStore: Int64 = -1
    public var maxFileStore: Int64 = -1
    /// `jetstream { sync_interval }`: nil (the default, and `always`) acknowledges a publish
    /// only after its fsync (on a quorum, in a cluster). A duration opts into nats-server's
    /// default trade-off: a publish is acknowledged once written (on a quorum), and file stores
    /// and stream Raft logs are fsync'd every this many seconds — a power loss (or a crash of
    /// the machines, not only the processes) can then take acknowledged messages.
    public var jetStreamSyncIntervalSeconds: Double?
    /// `/jsz`'s `config` object for JetStream stored under `storeDirectory` (as nats-server's;
    /// `sync_interval` in nanoseconds, 0 with `always`).
    func jszConfig(storeDirectory: String) -> [String: Any] {
        ["max_memory": maxMemoryStore, "max_storage": maxFileStore, "store_dir": storeDirectory,
         "sync_interval": Int64(((jetStreamSyncIntervalSeconds ?? 0) * 1e9).rounded()),
         "sync_always": jetStreamSyncIntervalSeconds == nil, "compress_ok": true]
    }

    /// Client TLS (`tls { ... }`, `--tls*`); nil serves plaintext only.
    public var tls: TLSOptions?
    /// With `tls`: also accept clients that do not start TLS (nats-server `allow_non_tls`).
    public var allowNonTLS = false
    /// Route TLS (`cluster { tls { ... } }`): mutual, every route presents and verifies.
    public var clusterTLS: TLSOptions?
    /// Route authorization (`cluster { authorization {} }`, `--cluster nats://user:pass@...`):
    /// accepted routes must log in with it; nil accepts any route (as nats-server).
    public var clusterAuth: RouteAuth?

    public var clusterName: String?
    public var clusterHost: String?
    public var clusterPort: Int?
    /// The route address other nodes are told to dial (`cluster { advertise }`,
    /// `--cluster_advertise`): a NAT, a proxy or a Service address in front of the listener.
    public var clusterAdvertise: RouteURL?
    public var routes: [String] = []
    /// Gossip (SWIM) protocol period: one probe per member per period; a silent member is
    /// suspect after one period and dead after a few more.
    public var gossipPeriodSeconds: Double = 1
    /// The gossip timer's tick (timeouts are whole ticks).
    public var gossipTickSeconds: Double = 0.1
    /// How often host names in `routes` are re-resolved (a headless Service grows and shrinks).
    public var dnsRefreshSeconds: Double = 10
    /// Remove a JetStream meta member (and move its stream replicas) once it has been
    /// unreachable this long (`cluster { auto_remove_after }`, `--cluster_auto_remove_after`).
    /// nil (the default): only `$JS.API.SERVER.REMOVE` removes servers.
    public var jetStreamAutoRemoveAfterSeconds: Double?
    /// Host name -> address overrides for dialing routes, from the hosts-format file named by
    /// `CLUSTERD_HOSTS_FILE` (empty in production). Lets a test run the exact Kubernetes config,
    /// whose seeds are DNS names of the headless Service, with those names mapped to loopback.
    public var routeHostOverrides: [String: String] = [:]

    /// Streams from the config's `streams` list, created or updated through the JetStream API
    /// once the server is up (see `DeclarativeStreams`).
    public var declaredStreams: [DeclaredStream] = []

    public var debug = false
    public var trace = false
    public var logFile: String?
    public var configFile: String?
    public var lameDuckDurationSeconds: Double = 30
    public var lameDuckGracePeriodSeconds: Double = 10

    /// Event-loop threads; 0 means one per core.
    public var threads = 0
    /// What this node says it understands on its routes (route INFO flags). Always everything
    /// in a real node; not settable from flags or a config file: tests turn features off to
    /// stand in for an older clusterd in a mixed-version cluster.
    var routeFeatures = RouteFeatures()

    public init() {}

    /// Every configured user: top-level ones (global account) and each account's.
    public var allUsers: [UserConfig] { users + accounts.flatMap(\.users) }

    /// Credentials are configured: clients must send CONNECT first and are authenticated.
    public var authConfigured: Bool {
        username != nil || authToken != nil || !users.isEmpty || accounts.contains { !$0.users.isEmpty }
    }

    /// What INFO advertises: with a `no_auth_user`, clients may connect without credentials.
    public var authRequired: Bool { authConfigured && noAuthUser == nil }
}

/// The route INFO capability flags a node announces (see `RouteInfo`).
struct RouteFeatures: Sendable {
    /// Reads stamped consumer deliveries (`js_delivery_stamps`).
    var deliveryStamps = true
    /// Reads stream entries with dedup times (`js_dedup_times`).
    var dedupTimes = true
    /// Reads message entries whose dedup the leader decided (`js_dedup_decided`).
    var decidedDedup = true
    /// Reads stream copies that carry their leader's applied config (`js_copy_config`).
    var copyConfig = true
    /// Reads subject delete marker entries (`js_markers`).
    var markers = true
    /// Reads sourced message entries (`js_sourced`).
    var sourced = true
    /// Reads mirrored message entries (`js_mirrored`).
    var mirrored = true
    /// Takes `jsinternal` route frames (`js_internal_frames`).
    var internalFrames = true
}
