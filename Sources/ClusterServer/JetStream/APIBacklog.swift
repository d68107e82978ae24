import Atomics
import NIOConcurrencyHelpers

/// Bounds the `$JS.API` requests waiting for the JetStream queue (and, with its own limit, the
/// system account's server requests waiting for theirs: `SystemRequests`). Without a bound, a client
/// that floods the API (or many clients at once) makes the queue, and the memory of every
/// request copied into it, grow without end, and publishes wait behind it. nats-server bounds
/// its API queue at 10,000 (`request_queue_limit`) by dropping every queued request at once,
/// unanswered, with an advisory. Here the requests already queued are served, and each new one
/// over the limit is refused at once on the client's event loop: its client gets an error it
/// retries on, instead of waiting out its timeout (`JetStreamService.refuseOverLimit`).
final class APIBacklog: @unchecked Sendable {
    /// Requests queued and not yet handled at most (nats-server's default queue limit).
    static let defaultLimit = 10_000

    let limit: Int
    private let pending = ManagedAtomic<Int>(0)
    private let refused = ManagedAtomic<Int>(0)
    /// For the log line about refusals (once per 10 s, with the count of the ones folded in).
    let warnings = NIOLockedValueBox(LogThrottle(interval: 10))

    init(limit: Int = APIBacklog.defaultLimit) {
        self.limit = limit
    }

    /// Counts a request in; false (nothing counted) when `limit` are waiting already.
    func admit() -> Bool {
        if pending.loadThenWrappingIncrement(ordering: .relaxed) < limit { return true }
        pending.wrappingDecrement(ordering: .relaxed)
        refused.wrappingIncrement(ordering: .relaxed)
        return false
    }

    /// A request taken off the queue.
    func done() { pending.wrappingDecrement(ordering: .relaxed) }

    /// Requests waiting now.
    var waiting: Int { pending.load(ordering: .relaxed) }

    /// Requests refused since the start.
    var refusedTotal: Int { refused.load(ordering: .relaxed) }
}
