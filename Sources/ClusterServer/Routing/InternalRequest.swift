import Atomics
import Dispatch
import NIOConcurrencyHelpers
import NIOCore

/// What a server-originated request got back.
public enum InternalReply: Sendable {
    /// A reply: its headers (if any) and payload bytes.
    case message(headers: String?, payload: [UInt8])
    /// Nobody is subscribed to the subject (locally or on a route), or a `503` status came back.
    case noResponders
    case timeout
}

/// Inboxes of server-originated requests: a random per-process prefix (two nodes of one
/// cluster must never share an inbox) and a counter.
private let internalInboxPrefix = "srv" + String(UInt64.random(in: 1...UInt64.max), radix: 36)
private let internalRequestCounter = ManagedAtomic<UInt64>(0)

extension NATSServer {
    /// Request/reply from inside the server, exactly as a client does it: a unique inbox
    /// subscription (propagated to the cluster, so a reply from another node finds its way
    /// back), one publish with that inbox as reply subject, the first reply or a timeout.
    /// `completion` runs once, on a publisher's or a dispatch thread; keep it short.
    public func requestInternal(subject: String, payload: [UInt8], timeout: Double,
                                completion: @escaping @Sendable (InternalReply) -> Void) {
        let inbox = "_INBOX.\(internalInboxPrefix).\(internalRequestCounter.wrappingIncrementThenLoad(ordering: .relaxed))"
        let done = ManagedAtomic(false)
        let subBox = NIOLockedValueBox<Subscription?>(nil)
        let finish: @Sendable (InternalReply) -> Void = { [weak self] reply in
            guard done.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
            if let sub = subBox.withLockedValue({ $0 }) { self?.unsubscribeInternal(sub) }
            completion(reply)
        }
        let sub = subscribeInternal(inbox, propagates: true) { msg in
            let headers = msg.headers.map { String(buffer: $0) }
            if let h = headers, h.hasPrefix("NATS/1.0 503") {
                finish(.noResponders)
            } else {
                finish(.message(headers: headers, payload: Array(msg.payload.readableBytesView)))
            }
        }
        subBox.withLockedValue { $0 = sub }
        if done.load(ordering: .acquiring) { unsubscribeInternal(sub) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { finish(.timeout) }
        if publishInternal(subject: subject, reply: inbox, payload: ByteBuffer(bytes: payload)) == 0 {
            finish(.noResponders)
        }
    }
}
