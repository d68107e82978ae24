import Foundation
import NIOCore

/// A client publish on a stream's subject that finds no interest on its node: the stream's
/// leader subscribes its subjects, and its interest can still be on its way over a route (a
/// stream created or a leader elected a moment ago, the create answered through another node).
/// nats-server answers "no responders" then (and drops a publish without a reply), and clients
/// must retry. Here the node looks the subject up in the meta state (every node holds every
/// assignment) and forwards the publish to the stream's leader, as the write path would route
/// it once the interest arrives (DESIGN, "The write path", step 2):
/// - a replica here takes it as its ingest would: a leader proposes it; a follower holds it and
///   forwards it to the leader it knows, or after a second without a leader answers 503
///   (`StreamReplica+Handover`);
/// - no replica here: forwarded to the first of the stream's replicas with a route from here
///   (this node does not know their leader). An R1 stream's replica is its leader; a replica of
///   a larger stream proposes it as leader, or relays it to the leader it knows (one more hop,
///   `ForwardedPublish.relay`), or holds it through an election as above;
/// - no replica reachable: refused as before, with the no-responders status when the publisher
///   asked for it.
/// Only publishes that reached no subscriber at all come here; the lookup runs on the client's
/// event loop and costs a lock and the subject's tokens. A forwarded publish takes a longer way
/// (this node's JetStream queue, then the route) than one routed by interest, so publishes in the
/// moment the interest arrives can be stored out of their publisher's order.
extension JetStreamService {
    /// Installs the account's taker (clustered JetStream only).
    func startTakingUnrouted(_ cluster: JetStreamCluster) {
        let index = cluster.assignments.subjectIndex
        account.setUnroutedTaker { [weak self] message, noResponders in
            guard let self, !message.fromRoute, !index.isEmpty, Subject.isValidLiteral(message.subject),
                  let stream = index.owners(overlapping: message.subject).min() else { return false }
            let (subject, reply, headers, payload) = self.copy(message)
            let item = IngestItem(stream: stream, subject: subject, reply: reply, headers: headers, payload: payload,
                                  arrival: .unrouted(noResponders: noResponders))
            self.enqueueIngest(item)
            return true
        }
    }

    /// What the publisher would have got without this path: the no-responders status when it
    /// asked for it, else nothing.
    func refuseUnrouted(_ i: IngestItem, _ noResponders: Bool) {
        guard noResponders, let reply = i.reply else { return }
        _ = bus.sendStatus("503", to: reply, fields: [("Nats-Subject", i.subject)])
    }
}

extension JetStreamCluster {
    /// On the JetStream queue: a publish that found no interest on this node (see above).
    func takeUnrouted(_ i: IngestItem, noResponders: Bool) {
        guard let a = assignments[i.stream],
              a.config.subjects.contains(where: { Subject.matches(pattern: $0, subject: i.subject) }) else {
            return js.refuseUnrouted(i, noResponders)
        }
        if let r = replicas[i.stream], !r.closed {
            return r.propose(subject: i.subject, reply: i.reply, headers: i.headers, payload: i.payload)
        }
        let publish = ForwardedPublish(stream: i.stream, subject: i.subject, reply: i.reply, headers: i.headers, payload: i.payload,
                                       relay: a.ids.count > 1)
        for (id, name) in zip(a.ids, a.peers) where id != host.me {
            if forward(publish, to: id, named: name) { return }
        }
        js.refuseUnrouted(i, noResponders)
    }
}
