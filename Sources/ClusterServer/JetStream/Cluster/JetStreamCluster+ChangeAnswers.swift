import Raft

/// The stream a committed update or delete changes, as the meta state held it before.
struct ChangedStream {
    /// This node led the stream when it applied the change (so it answers).
    let ledHere: Bool
    let group: GroupID
    /// Subjects before and after the change: its leader takes ingest on them.
    let subjects: [String]
}

/// An update/delete answer the meta leader holds back while the stream's leader should answer.
struct FallbackReply {
    let reply: String
    let body: [String: Any]
    let dueTick: Int
    /// The stream leader and term the meta leader saw at commit (it is a member of the group):
    /// the fallback goes out only if that leadership ended or its route dropped by the due tick.
    /// nil: a group the meta leader cannot see; sent when due.
    let expected: (group: GroupID, leader: NodeID, term: Term)?
}

extension JetStreamCluster {
    /// Who will answer a stream change led elsewhere, as far as the meta leader can tell.
    enum ChangeAnswerer {
        /// No leader able to answer: the meta leader answers now.
        case nobody
        /// A stream leader seen in the group (this node is a member), reachable over a route.
        case leader(NodeID, Term)
        /// A group this node is not in, whose leader takes ingest on another node: it answers.
        case listening
        /// A group this node is not in with no leader in sight: answer after 2 s.
        case unknown
    }

    /// Answers a committed stream update or delete the way nats-server does: the stream's
    /// leader, once it has applied the change here. A client that reads the stream right after
    /// the answer (STREAM.INFO, a KV bind after a delete) is served by that leader, so it sees
    /// its own change; were the meta leader to answer first, the stream leader on another node
    /// could still serve the old config or the deleted stream. The meta leader answers itself
    /// only when no leader can (see `changeAnswerer`), so a request normally gets one answer.
    func answerStreamChange(_ changed: ChangedStream, requester: (reply: String, type: String)?,
                            pending: (reply: String, type: String)?, body: inout [String: Any]) {
        if changed.ledHere {
            guard let requester else { return }
            body["type"] = requester.type
            js.reply(requester.reply, body)
            return
        }
        guard let pending else { return }
        body["type"] = pending.type
        switch changeAnswerer(changed) {
        case .nobody:
            js.reply(pending.reply, body)
        case let .leader(id, term):
            fallbackReplies.append(FallbackReply(reply: pending.reply, body: body, dueTick: ticks + 20,
                                                 expected: (changed.group, id, term)))
        case .listening:
            break
        case .unknown:
            fallbackReplies.append(FallbackReply(reply: pending.reply, body: body, dueTick: ticks + 20, expected: nil))
        }
    }

    func changeAnswerer(_ changed: ChangedStream) -> ChangeAnswerer {
        if let node = host.node(changed.group) {
            guard let leader = node.leader, leader != host.me, isConnected(leader) else { return .nobody }
            return .leader(leader, node.term)
        }
        return changed.subjects.contains(where: routeListensForIngest) ? .listening : .unknown
    }

    /// Sends the fallback answers that are due (tick), except those whose expected stream
    /// leader kept its leadership and route throughout: it applied the change as leader and
    /// answered.
    func sendDueFallbackReplies() {
        guard !fallbackReplies.isEmpty else { return }
        let due = fallbackReplies.filter { $0.dueTick <= ticks }
        fallbackReplies.removeAll { $0.dueTick <= ticks }
        for r in due {
            if let e = r.expected, let node = host.node(e.group), node.leader == e.leader, node.term == e.term,
               isConnected(e.leader) { continue }
            js.reply(r.reply, r.body)
        }
    }

    /// A route to the server of Raft id `id` is up.
    func isConnected(_ id: NodeID) -> Bool {
        guard let name = host.name(of: id) else { return false }
        return js.server.routeManager?.peerServerIDs()[name] != nil
    }

    /// Whether a replica on another node subscribes `pattern` for ingest (only a stream's
    /// leader does, and a former leader for 2 s after it stepped down).
    func routeListensForIngest(_ pattern: String) -> Bool {
        // A literal the pattern matches; every replica subscribes the same patterns.
        let literal = pattern.split(separator: ".", omittingEmptySubsequences: false)
            .map { $0 == "*" || $0 == ">" ? "_" : String($0) }.joined(separator: ".")
        return js.account.sublist.match(literal).queues.contains { group in
            group.contains { $0.route != nil && $0.queue == JetStreamService.ingestQueue }
        }
    }
}
