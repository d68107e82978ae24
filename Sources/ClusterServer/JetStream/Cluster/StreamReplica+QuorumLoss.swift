/// A stream leader that lost its quorum says so, as nats-server does: it stepped down because it
/// did not hear from a majority of its group for an election timeout (`RaftNode.lostQuorum`),
/// so the stream takes no writes until a majority is back. Operators watch for both signals:
/// the warning `JetStream cluster stream '<account> > <stream>' has NO quorum, stalled` and the
/// advisory `$JS.EVENT.ADVISORY.STREAM.QUORUM_LOST.<stream>`.
extension StreamReplica {
    /// nats-server's rules: nothing for a group younger than 5 s (a cluster still forming), and
    /// at most one report per 10 s (a group that keeps regaining and losing its quorum).
    static let quorumLossQuietTicks = 50
    static let quorumLossRepeatTicks = 100

    func reportQuorumLoss() {
        let now = cluster.ticks
        guard now - openedAtTick >= Self.quorumLossQuietTicks,
              quorumLossReportedAtTick.map({ now - $0 >= Self.quorumLossRepeatTicks }) ?? true else { return }
        quorumLossReportedAtTick = now
        js.server.logger.warning("JetStream cluster stream '\(js.account.name) > \(name)' has NO quorum, stalled")
        js.advisory("STREAM.QUORUM_LOST.\(name)", [
            "type": "io.nats.jetstream.advisory.v1.stream_quorum_lost", "stream": name,
            "replicas": cluster.streamReplicas(name),
        ])
    }
}
