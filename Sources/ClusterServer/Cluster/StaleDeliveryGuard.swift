import Foundation
import Logging
import NIOConcurrencyHelpers

/// The server's `DeliveryTermFence`, shared by every route and the local JetStream leaders
/// (deliveries are handed out on several event loops), with the drop count for /varz and a
/// rate-limited log line per drop burst.
final class StaleDeliveryGuard: @unchecked Sendable {
    private let lock = NIOLock()
    private var fence = DeliveryTermFence()
    private var throttle = LogThrottle(interval: 5)

    /// Deliveries dropped because a newer term's delivery of their stream passed here first.
    var dropped: Int { lock.withLock { fence.dropped } }

    /// The newest term handed out here for the stream `key` (nil: no stamped delivery yet).
    func term(of key: String) -> UInt64? { lock.withLock { fence.term(of: key) } }

    /// True if a delivery stamped `stamp` may go to local subscribers; logs (at most every 5 s)
    /// when one is dropped.
    func admit(_ stamp: DeliveryStamp, target: String, from source: String, logger: Logger) -> Bool {
        let (ok, newest, note): (Bool, UInt64, String?) = lock.withLock {
            if fence.admit(stamp) { return (true, 0, nil) }
            return (false, fence.term(of: stamp.key) ?? 0, throttle.admit(now: Date()))
        }
        if !ok, let note {
            logger.warning("Dropped a stale JetStream delivery to '\(target)' from \(source): stream \(stamp.key) term \(stamp.term), a term \(newest) delivery was already handed out here (the old leader's copy arrived late; the current leader redelivers it if unacked)\(note)")
        }
        return ok
    }
}
