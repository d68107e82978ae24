import Foundation
import NIOCore

/// What a node lets wait for its JetStream queue, and what it answers beyond that. A client (or
/// many) faster than the queue would otherwise grow the waiting work, and the memory of every
/// message copied into it, without end: API requests (`APIBacklog`), publishes and acks
/// (`Mailbox` bounds). Refusals happen on the event loop that received the message, without a
/// queue hop, so a flood cannot delay its own refusal.
extension JetStreamService {
    /// Publishes waiting for the queue at most (between two drains; what a drain took is being
    /// proposed or stored already).
    static let maxQueuedPublishes = 100_000
    /// Their payload and header bytes at most: the default nats-server allows one stream
    /// (`max_buffered_size`); here it bounds all of the account's streams on the node.
    static let maxQueuedPublishBytes = 128 << 20

    /// Hands a publish to the queue, or refuses it when `ingestMailbox` is full: a publish with a
    /// reply subject gets a 503/10008 error PubAck naming the backlog (its client retries), one
    /// without is dropped. Nothing refused here was stored.
    func enqueueIngest(_ item: IngestItem) {
        switch ingestMailbox.add(item, size: item.payload.count + (item.headers?.count ?? 0)) {
        case .scheduleDrain: queue.async { self.drainIngest() }
        case .queued: break
        case .full:
            if let more = ingestWarnings.withLockedValue({ $0.admit(now: Date()) }) {
                server.logger.warning("JetStream: \(ingestMailbox.maxItems) publishes or \(ingestMailbox.maxBytes >> 20) MiB queued; refusing new ones until the queue catches up\(more)")
            }
            guard let reply = item.reply else { return }
            let e = JSAPIError.unavailable(.publishBacklog)
            bus.publishInternal(subject: reply, payload: ByteBuffer(bytes: Stream.errorAck(e, stream: item.stream)))
        }
    }

    /// An API request over `APIBacklog.limit`, on the event loop that received it: its client
    /// gets 503/10008 naming the backlog in nats-server's refusal shape (a pull or direct get:
    /// the 503 status; `JetStreamAccounts.refusalReply`), without a queue hop. One that came over a route is dropped: every node hears every
    /// request, and the client's own node answers it.
    func refuseOverLimit(_ msg: RoutedMessage, _ backlog: APIBacklog) {
        if let more = backlog.warnings.withLockedValue({ $0.admit(now: Date()) }) {
            server.logger.warning("JetStream API: \(backlog.waiting) requests queued (limit \(backlog.limit)); refusing new ones (\(backlog.refusedTotal) so far)\(more)")
        }
        guard !msg.fromRoute, let reply = msg.reply else { return }
        switch JetStreamAccounts.refusalReply(subject: msg.subject, .unavailable(.apiBacklog(backlog.limit))) {
        case nil: return
        case .noResponders?: _ = bus.sendStatus("503", to: reply, fields: [("Nats-Subject", msg.subject)])
        case .body(let body)?: bus.publishInternal(subject: reply, payload: ByteBuffer(bytes: body))
        }
    }

    /// An ack over the bound of `bound` queued ones: dropped. Its message stays pending and is
    /// redelivered after `ack_wait`; a double ack's client gets no confirmation and retries.
    func dropAckOverBound(_ bound: Int) {
        if let more = ackWarnings.withLockedValue({ $0.admit(now: Date()) }) {
            server.logger.warning("JetStream: \(bound) acks queued; dropping new ones until the queue catches up\(more)")
        }
    }
}
