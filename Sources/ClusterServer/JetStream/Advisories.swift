import Foundation
import NIOCore
import Raft

/// JetStream advisories (`$JS.EVENT.ADVISORY.>`), as nats-server 2.15.1 publishes them (checked
/// side by side, `Tests/compat/test_jetstream_advisories.py`): every one with a unique `id` and
/// a `timestamp`. Published once per event: stream actions by a single node or, in a cluster, by
/// the meta leader when the change applies; consumer actions, naks, terminations and pauses by
/// the node running the consumer (its stream's leader); in a cluster, stream and consumer
/// leader elections by the new leader, a stream's lost quorum by the leader that stepped down
/// for it (`StreamReplica+QuorumLoss.swift`). Not published: the API audit
/// (`$JS.EVENT.ADVISORY.API`), snapshots.
extension JetStreamService {
    /// Publishes `body` (evaluated only then) when anybody listens on the advisory's subject:
    /// naks and terminations advise per ack, and a leader election lists every replica, so
    /// nothing is built when nobody would read it (subscribers on other nodes count: their
    /// interest is in the account's sublist).
    func advisory(_ suffix: String, _ body: @autoclosure () -> [String: Any]) {
        let subject = "$JS.EVENT.ADVISORY.\(suffix)"
        guard bus.hasInterest(subject) else { return }
        var b = body()
        b["id"] = Self.generateName()
        b["timestamp"] = JSTime.format(JSTime.nowNanos())
        bus.publishInternal(subject: subject, payload: ByteBuffer(bytes: JSJSON.encode(b)))
    }

    /// A stream was created, updated or deleted (`action`: create, modify, delete: nats-server's words).
    func streamAdvisory(_ stream: String, action: String) {
        let event = ["create": "CREATED", "modify": "UPDATED", "delete": "DELETED"][action] ?? action.uppercased()
        advisory("STREAM.\(event).\(stream)", ["type": "io.nats.jetstream.advisory.v1.stream_action",
                                               "stream": stream, "action": action])
    }

    /// A consumer was created or deleted (`action`: create, delete).
    func consumerAdvisory(_ stream: String, _ consumer: String, action: String) {
        let event = action == "create" ? "CREATED" : "DELETED"
        advisory("CONSUMER.\(event).\(stream).\(consumer)", ["type": "io.nats.jetstream.advisory.v1.consumer_action",
                                                             "stream": stream, "consumer": consumer, "action": action])
    }

    /// A delivery was nak'd (`MSG_NAKED`) or terminated (`MSG_TERMINATED`, with the reason the
    /// client wrote after `+TERM`, when it gave one).
    func deliveryAdvisory(terminated: Bool, _ c: Consumer, streamSeq: UInt64, consumerSeq: UInt64, deliveries: Int,
                          reason: ArraySlice<UInt8> = []) {
        advisory("CONSUMER.\(terminated ? "MSG_TERMINATED" : "MSG_NAKED").\(c.stream.name).\(c.name)", {
            var body: [String: Any] = [
                "type": terminated ? "io.nats.jetstream.advisory.v1.terminated" : "io.nats.jetstream.advisory.v1.nak",
                "stream": c.stream.name, "consumer": c.name, "consumer_seq": consumerSeq, "stream_seq": streamSeq,
                "deliveries": deliveries,
            ]
            let text = String(decoding: reason, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { body["reason"] = text }
            return body
        }())
    }

    /// A consumer was paused or resumed.
    func pauseAdvisory(_ c: Consumer) {
        advisory("CONSUMER.PAUSE.\(c.stream.name).\(c.name)", [
            "type": "io.nats.jetstream.advisory.v1.consumer_pause", "stream": c.stream.name, "consumer": c.name,
            "paused": c.config.pauseUntil != nil, "pause_until": JSTime.format(c.config.pauseUntil ?? 0),
        ])
    }
}

extension JetStreamService {
    /// In a cluster: this node became the leader of a stream (`consumer` nil) or, since a
    /// consumer runs on its stream's leader, of that consumer.
    /// `replicas` is evaluated only when somebody listens.
    func leaderElectedAdvisory(stream: String, consumer: String? = nil, leader: String,
                               replicas: @autoclosure () -> [[String: Any]]) {
        if let consumer {
            advisory("CONSUMER.LEADER_ELECTED.\(stream).\(consumer)", [
                "type": "io.nats.jetstream.advisory.v1.consumer_leader_elected", "stream": stream, "consumer": consumer,
                "leader": leader, "replicas": replicas(),
            ])
        } else {
            advisory("STREAM.LEADER_ELECTED.\(stream)", [
                "type": "io.nats.jetstream.advisory.v1.stream_leader_elected", "stream": stream, "leader": leader,
                "replicas": replicas(),
            ])
        }
    }
}

extension JetStreamCluster {
    /// Every peer of `stream`, as its leader-elected and quorum-lost advisories list them
    /// (`current`, `active`, and `lag` where this node leads and knows it).
    func streamReplicas(_ stream: String) -> [[String: Any]] {
        guard let a = assignments[stream], let node = host.node(GroupID(a.group)) else { return [] }
        let live = liveIdentities
        return zip(a.peers, a.ids).map { replicaEntry($0, $1, node: node, leading: node.role == .leader, live: live) }
    }

    /// This node now leads `stream`: the stream's and each of its consumers' advisories.
    func announceLeadership(_ r: StreamReplica) {
        // Built at most once, and only if some advisory has a listener.
        var built: [[String: Any]]?
        func replicas() -> [[String: Any]] {
            if let built { return built }
            let list = streamReplicas(r.name)
            built = list
            return list
        }
        js.leaderElectedAdvisory(stream: r.name, leader: host.myName, replicas: replicas())
        for c in r.stream.consumers.values.sorted(by: { $0.name < $1.name }) {
            js.leaderElectedAdvisory(stream: r.name, consumer: c.name, leader: host.myName, replicas: replicas())
        }
    }
}
