import Foundation
import NIOCore
import Raft

/// A publish waiting out a leadership change of its stream.
struct HeldPublish {
    var publish: ForwardedPublish
    /// It came from the former leader already: refused rather than forwarded a second time.
    var forwarded: Bool
    /// `JSTime` nanoseconds when it was held.
    var since: Int64
}

/// Publishes that meet a leadership change are not refused at once (the publisher would only
/// retry, a round trip and its back-off later): while this leader hands over (Raft takes no
/// proposals then), or just after it stepped down (publishes already on their way to it), they
/// are held, then proposed here if the transfer is abandoned, or forwarded to the new leader
/// once it is known. Bounded in count and time; what cannot go anywhere gets the 503 it got before.
extension StreamReplica {
    static let maxHeld = 1024
    /// Held longer than this: refused.
    static let heldLimitNanos: Int64 = 1_000_000_000

    func hold(_ p: ForwardedPublish, forwarded: Bool) {
        guard held.count < Self.maxHeld else { return refuse(p) }
        held.append(HeldPublish(publish: p, forwarded: forwarded, since: JSTime.nowNanos()))
    }

    /// Proposes, forwards or refuses what is held, as far as the leadership allows now. Runs
    /// on leadership changes and from the housekeeping tick.
    func releaseHeld() {
        guard !held.isEmpty else { return }
        guard !closed, let node = cluster.host.node(group) else { return refuseHeld() }
        if node.role == .leader {
            // Still handing over, or elected but still applying the old term: wait.
            guard isLeader, node.transferTarget == nil else { return expireHeld() }
            let items = held
            held = []
            for h in items {
                let p = h.publish
                propose(subject: p.subject, reply: p.reply, headers: p.headers, payload: p.payload, forwarded: h.forwarded)
            }
            return
        }
        guard let leader = node.leader, leader != cluster.host.me else { return expireHeld() }
        let items = held
        held = []
        for h in items {
            // Forwarded only when a second copy would be dropped as a duplicate: while interest
            // moved, the publisher's server may have routed the same message to the new leader.
            if h.forwarded || !ForwardedPublish.deduplicable(h.publish.headers) || !cluster.forward(h.publish, to: leader) {
                refuse(h.publish)
            }
        }
    }

    func refuseHeld() {
        let items = held
        held = []
        for h in items { refuse(h.publish) }
    }

    private func expireHeld() {
        let now = JSTime.nowNanos()
        guard let first = held.first, now - first.since > Self.heldLimitNanos else { return }
        let old = held.filter { now - $0.since > Self.heldLimitNanos }
        held.removeAll { now - $0.since > Self.heldLimitNanos }
        for h in old { refuse(h.publish) }
    }
}

extension JetStreamCluster {
    var forwardNamespace: String { Self.routeNamespace(ForwardedPublish.namespace, account: js.account) }

    /// Listens for publishes former leaders forward here.
    func startForwarding() {
        js.server.routeManager?.registerExtension(forwardNamespace) { [weak self] _, payload in
            guard let self else { return }
            let decoded = Result { try ForwardedPublish.decode(Array(payload.readableBytesView)) }
            self.js.queue.async { self.receiveForwarded(decoded) }
        }
    }

    /// Sends a held publish to the node of Raft id `node`; false when it is not connected.
    func forward(_ p: ForwardedPublish, to node: NodeID) -> Bool {
        guard let name = host.name(of: node), let routes = js.server.routeManager, let id = routes.peerServerIDs()[name] else {
            return false
        }
        let bytes = p.encode()
        var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
        buf.writeBytes(bytes)
        return routes.sendExtension(forwardNamespace, payload: buf, to: id)
    }

    private func receiveForwarded(_ decoded: Result<ForwardedPublish, Error>) {
        let p: ForwardedPublish
        do { p = try decoded.get() } catch {
            js.server.logger.warning("Dropping a malformed forwarded publish: \(error)")
            return
        }
        // Only a publish on the stream's own subjects (a peer cannot slip anything else in).
        guard let r = replicas[p.stream], r.stream.config.subjects.contains(where: { Subject.matches(pattern: $0, subject: p.subject) }) else {
            js.server.logger.warning("Dropping a forwarded publish for stream '\(p.stream)' on '\(p.subject)': not a subject of a stream here")
            return
        }
        r.propose(subject: p.subject, reply: p.reply, headers: p.headers, payload: p.payload, forwarded: true)
    }

    /// Publishes held by this node's replicas.
    var heldPublishCount: Int { replicas.values.reduce(0) { $0 + $1.held.count } }

    /// Housekeeping: held publishes whose leadership change settled (or that waited too long).
    func releaseHeldPublishes() {
        for r in replicas.values where !r.held.isEmpty { r.releaseHeld() }
    }
}
