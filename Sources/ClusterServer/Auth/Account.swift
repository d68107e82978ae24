import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// One account at runtime: its own subject namespace (a `Sublist` of its own, named in the
/// route protocol), its limits and its live connection count. Nothing published in one
/// account reaches another, except through configured imports.
public final class Account: @unchecked Sendable {
    public let name: String
    let sublist: Sublist
    public let config: AccountConfig
    private let liveConnections = ManagedAtomic<Int>(0)

    /// Stored: read on every publish.
    public let isGlobal: Bool
    /// `limits` copied out of `config` for the publish/subscribe paths (-1 = none).
    let maxPayload: Int
    let maxSubscriptions: Int
    /// `mappings`, nil when there are none (one check per publish).
    let mappings: SubjectMappings?

    /// - Parameter cluster: this server's cluster name (cluster-scoped mapping destinations).
    init(config: AccountConfig, sublist: Sublist, cluster: String? = nil) {
        self.name = config.name
        self.config = config
        self.sublist = sublist
        self.isGlobal = config.name == globalAccountName
        self.maxPayload = config.maxPayload
        self.maxSubscriptions = config.maxSubscriptions
        // Checked when the config was loaded (`ConfigLoader.mapMappings`).
        self.mappings = (try? SubjectMappings(config.mappings, cluster: cluster)) ?? nil
    }

    /// Clustered JetStream's taker of client publishes that found no interest at all
    /// (`JetStreamService.takeUnrouted`); nil without it.
    private let unroutedTaker = NIOLockedValueBox<(@Sendable (RoutedMessage, Bool) -> Bool)?>(nil)

    /// Installs (or with nil removes) the taker of publishes that found no interest.
    func setUnroutedTaker(_ taker: (@Sendable (_ message: RoutedMessage, _ noResponders: Bool) -> Bool)?) {
        unroutedTaker.withLockedValue { $0 = taker }
    }

    /// Offers a client's publish that reached no subscriber: true when a stream of this account
    /// takes it (it will answer the reply itself). `noResponders`: the publisher asked for a
    /// 503 status when nobody answers.
    func offerUnrouted(_ message: RoutedMessage, noResponders: Bool) -> Bool {
        guard let take = unroutedTaker.withLockedValue({ $0 }) else { return false }
        return take(message, noResponders)
    }

    /// The name RMSG carries for this account's messages (nil for the global default).
    var routedName: String? { isGlobal ? nil : name }

    public var connectionCount: Int { liveConnections.load(ordering: .relaxed) }

    /// Counts a client against `max_connections`; false (nothing counted) when full.
    func admitConnection() -> Bool {
        let n = liveConnections.wrappingIncrementThenLoad(ordering: .relaxed)
        if config.maxConnections >= 0 && n > config.maxConnections {
            liveConnections.wrappingDecrement(ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseConnection() { liveConnections.wrappingDecrement(ordering: .relaxed) }

    /// Delivers a server-forwarded message (import, response) to this account's subscribers,
    /// including other nodes' interest. Returns how many accepted it.
    func deliver(_ message: RoutedMessage, seed: UInt64) -> Int {
        let result = sublist.match(message.subject)
        if result.isEmpty { return 0 }
        var m = message
        m.account = routedName
        var rng = SplitMix64(seed: seed)
        return Fanout.deliver(m, to: result, skipOwner: nil, rng: &rng)
    }
}
