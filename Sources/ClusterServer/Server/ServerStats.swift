import Atomics

/// Server-wide counters for /varz and /metrics. Inbound counters are added once per read
/// batch, not per message, to keep cores from fighting over the cache lines.
public final class ServerStats: @unchecked Sendable {
    public let inMsgs = ManagedAtomic<Int>(0)
    public let inBytes = ManagedAtomic<Int>(0)
    public let slowConsumers = ManagedAtomic<Int>(0)
    public let totalConnections = ManagedAtomic<Int>(0)
    public let authFailures = ManagedAtomic<Int>(0)
    /// Publishes and subscriptions refused by a user's permissions.
    public let permissionViolations = ManagedAtomic<Int>(0)
    /// Outbound counters of connections that have closed (live ones are summed on demand).
    public let closedOutMsgs = ManagedAtomic<Int>(0)
    public let closedOutBytes = ManagedAtomic<Int>(0)
}
