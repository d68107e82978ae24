/// A stream leader that lost its quorum says so, as nats-server does: it stepped down because it
/// did not hear from a majority of its group for an election timeout (`RaftNode.lostQuorum`),
/// so the stream takes no writes until a majority is back. Operators watch for both signals:
/// the warning `JetStream cluster stream '<account> > <stream>' has NO quorum, stalled` and the
/// advisory `$JS.EVENT.ADVISORY.STREAM.QUORUM_LOST.<stream>`.
extension StreamReplica {
    func reportQuorumLoss() {
        let now = cluster.ticks
        guard QuorumLossReportRule.shouldReport(atTick: now, openedAtTick: openedAtTick,
                                                lastReportedAtTick: quorumLossReportedAtTick) else { return }
        quorumLossReportedAtTick = now
        js.server.logger.warning("JetStream cluster stream '\(js.account.name) > \(name)' has NO quorum, stalled")
        js.advisory("STREAM.QUORUM_LOST.\(name)", [
            "type": "io.nats.jetstream.advisory.v1.stream_quorum_lost", "stream": name,
            "replicas": cluster.streamReplicas(name),
        ])
    }
}

/// When a lost quorum is reported, in cluster ticks (100 ms), by nats-server's rules: nothing
/// for a group younger than 5 s (a cluster still forming loses and finds quorums as members
/// start), and at most one report per 10 s (a group that keeps regaining and losing its quorum
/// would otherwise flood the log and the advisory subject).
enum QuorumLossReportRule {
    static let quietTicks = 50
    static let repeatTicks = 100

    static func shouldReport(atTick now: Int, openedAtTick opened: Int, lastReportedAtTick last: Int?) -> Bool {
        guard now - opened >= quietTicks else { return false }
        guard let last else { return true }
        return now - last >= repeatTicks
    }
}
