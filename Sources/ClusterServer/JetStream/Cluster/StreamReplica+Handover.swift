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
/// retry, a round trip and its back-off later):
/// - not yet proposed (this leader hands over and Raft takes no proposals, or it just stepped
///   down and publishes are still on their way to it): held, then proposed here if the
///   transfer is abandoned, or forwarded to the new leader once it is known — with or without
///   a `Nats-Msg-Id`, since such a publish is in no log and no other replica received it (the
///   stream's subjects are subscribed as a queue group, so each message reaches one replica);
/// - already proposed: never proposed again. Its entry is in the log the new leader has, and
///   the node that proposed it answers the PubAck when it applies, leader or not
///   (`answersPublish`).
/// - reaching a follower whose leader crashed (its route is gone, the election not over): held
///   until the new leader is known, then forwarded to it.
/// A former leader keeps its ingest subscriptions for `ingestLingerTicks`, forwarding what
/// reaches them, so publishers see no moment without interest while the new leader's
/// subscription spreads. Bounded in count and time; what cannot go anywhere gets a 503.
extension StreamReplica {
    static let maxHeld = 1024
    /// Held longer than this: refused. A crashed leader's successor is elected within two
    /// election timeouts (2 s) of its last heartbeat, plus a vote round.
    static let heldLimitNanos: Int64 = 3_000_000_000
    /// Cluster ticks (100 ms) a former leader keeps its ingest subscriptions.
    static let ingestLingerTicks = 20
    /// Proposed publishes remembered at most (a leader cut off from its quorum stops counting).
    static let maxProposedTracked = 65_536

    /// Whether this node sends the PubAck of a publish entry it applies: the node that proposed
    /// it (the entry's index and term match its proposal: a proposal the next leader replaced
    /// at that index is someone else's entry), and any node applying it as Raft leader — a new
    /// leader covers entries of a former leader that may have crashed — except a leader that the
    /// former one handed over to (`handedOverTerm`): that one was alive and answers its own
    /// entries, leader or not, so a handover answers each publish once (`PubAckAnswerTests`).
    /// After an election that was not a handover, the proposer and the new leader can both
    /// answer (the same PubAck: every replica decides an entry alike).
    static func answersPublish(isRaftLeader: Bool, handedOverTerm: Term? = nil, proposedTerm: Term?, entryTerm: Term) -> Bool {
        proposedTerm == entryTerm || (isRaftLeader && entryTerm != handedOverTerm)
    }

    /// Whether publishes are proposed here now: this node leads the stream, or Raft elected it
    /// and it still applies the entries before its first one. Publishes held or forwarded
    /// here are proposed at once then, right behind that entry, instead of a round trip after
    /// it: every replica decides them at apply, in log order, so nothing is decided early.
    /// Not while a transfer away from here runs (Raft takes no proposals).
    var acceptsPublishes: Bool {
        raftNode.map { $0.role == .leader && $0.transferTarget == nil } ?? false
    }

    func notePublishProposed(at index: LogIndex, _ publish: ProposedPublish) {
        guard proposals.count < Self.maxProposedTracked, let term = raftNode?.term else { return }
        proposals.append(index: index, term: term, publish)
    }

    func unsubscribeIngest() {
        for sub in stream.subscriptions { js.bus.unsubscribeInternal(sub) }
        stream.subscriptions = []
        ingestLingerUntil = nil
    }

    /// Housekeeping: a former leader drops its ingest subscriptions once the linger is over.
    func endIngestLingerIfDue(now tick: Int) {
        guard let until = ingestLingerUntil, tick >= until, !isLeader else { return }
        unsubscribeIngest()
    }

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
            // Still handing over: wait.
            guard acceptsPublishes else { return expireHeld() }
            let items = held
            held = []
            for h in items {
                let p = h.publish
                propose(subject: p.subject, reply: p.reply, headers: p.headers, payload: p.payload, forwarded: h.forwarded)
            }
            return
        }
        guard let leader = node.leader, leader != cluster.host.me else { return expireHeld() }
        var items = held[...]
        held = []
        while let h = items.first {
            // Forwarded once: one that came from a former leader and meets another change is refused.
            if h.forwarded {
                refuse(h.publish)
            } else if !cluster.forward(h.publish, to: leader) {
                // No route to the leader this replica still knows: it crashed, and the election
                // that replaces it has not ended (followers learn of a crash only by its
                // silence). Wait for the next one, in order, rather than refuse at once.
                held = Array(items)
                return expireHeld()
            }
            items.removeFirst()
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

    /// Listens for publishes forwarded here (by former leaders, and relays from nodes without a replica).
    func startForwarding() {
        js.server.routeManager?.registerExtension(forwardNamespace) { [weak self] _, payload in
            guard let self else { return }
            let decoded = Result { try ForwardedPublish.decode(Array(payload.readableBytesView)) }
            self.js.queue.async { self.receiveForwarded(decoded) }
        }
    }

    /// Sends a publish to the node of Raft id `node` (`named`: its server name, when known from
    /// elsewhere); false when it is not connected.
    func forward(_ p: ForwardedPublish, to node: NodeID, named: String? = nil) -> Bool {
        guard let name = named ?? host.name(of: node), let routes = js.server.routeManager, let id = routes.peerServerIDs()[name] else {
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
        guard let r = replicas[p.stream], r.stream.committedConfig.subjects.contains(where: { Subject.matches(pattern: $0, subject: p.subject) }) else {
            js.server.logger.warning("Dropping a forwarded publish for stream '\(p.stream)' on '\(p.subject)': not a subject of a stream here")
            return
        }
        // A relay from a node without a replica may go on to this replica's leader, once.
        r.propose(subject: p.subject, reply: p.reply, headers: p.headers, payload: p.payload, forwarded: !p.relay)
    }

    /// Publishes held by this node's replicas, and those proposed here that did not apply yet
    /// (a stopping node answers them before it goes).
    var heldPublishCount: Int { replicas.values.reduce(0) { $0 + $1.held.count + $1.proposals.withReply } }

    /// A stopping node: former leaders' ingest subscriptions whose stream's new leader listens
    /// already stop being announced (`Sublist.withdrawInterest`), so peers route publishes to
    /// the new leader only, while what they routed here before they heard is still forwarded.
    /// `force`: withdraw the rest too. Returns how many still wait for their new leader.
    func withdrawIngestInterest(force: Bool) -> Int {
        var waiting = 0
        for r in replicas.values where !r.isLeader && !r.stream.subscriptions.isEmpty {
            guard force || newLeaderListens(r.stream) else {
                waiting += 1
                continue
            }
            for sub in r.stream.subscriptions { js.account.sublist.withdrawInterest(sub) }
        }
        return waiting
    }

    /// Whether another node's replica subscribes every subject of `s` for ingest.
    private func newLeaderListens(_ s: Stream) -> Bool {
        s.committedConfig.subjects.allSatisfy(routeListensForIngest)
    }

    /// Housekeeping: held publishes whose leadership change settled (or that waited too long),
    /// and lingering ingest subscriptions that are due to go. Only replicas that hold
    /// publishes or linger are visited (`handoverWork`: they enter when they start to).
    func releaseHeldPublishes() {
        guard !handoverWork.isEmpty else { return }
        let visiting = handoverWork.takeAll().filter { !$0.closed && replicas[$0.name] === $0 }
        for r in visiting where !r.held.isEmpty { r.releaseHeld() }
        for r in visiting where r.ingestLingerUntil != nil { r.endIngestLingerIfDue(now: ticks) }
        for r in visiting where !r.held.isEmpty || r.ingestLingerUntil != nil { handoverWork.insert(r) }
    }
}
