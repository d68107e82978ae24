import Raft

/// The meta group's log refused a write (`RaftHost.failGroup`): the group stops on this node
/// while the others go on without it. Out of space, it reopens from its files after 5 s (10,
/// 20, 40, then every 60 s while it fails again), as a stream replica does
/// (`StreamReplica+StoreFailure.swift`): Raft resumes after the last meta entry applied here
/// (everything applied was durable in the log first), and the leader sends what it missed. Before,
/// it stayed stopped until the server restarted: this node learned no new stream, update or
/// delete, and did not open its replicas of streams created meanwhile. Any other error still
/// waits for a restart (after an I/O error the page cache may no longer match the disk).
extension JetStreamCluster {
    func raftGroupStopped(_ error: Error) {
        guard Self.isOutOfSpace(error) else {
            js.server.logger.error("JetStream cluster: the meta group stopped on this server after a storage error; it stays stopped until the server restarts")
            return
        }
        let next = retry(after: metaFailure?.count ?? 0)
        metaFailure = next
        js.server.logger.error("JetStream cluster: the meta log is out of space; the meta group reopens from its files in \((next.due - ticks) / 10) s")
    }

    /// Housekeeping, when due: reopens the meta group from its files. One that cannot open (the
    /// disk is still full) is tried again later; one that opened forgets its failures.
    func reopenMeta(after f: (count: Int, due: Int)) {
        guard host.node(Self.metaGroup) == nil else {
            metaFailure = nil
            return
        }
        do {
            guard let storage = try RaftStorageFactory.open(directory: metaDirectory, ids: nil) else {
                metaFailure = nil
                js.server.logger.error("JetStream cluster: the meta log is gone from \(metaDirectory); the meta group stays stopped")
                return
            }
            host.addGroup(Self.metaGroup, storage: storage, delegate: self, delegateOwnsHost: true, applied: metaApplied, quiesce: false)
            metaFailure = nil
            js.server.logger.info("JetStream cluster: the meta group reopened from its files after entry \(metaApplied.rawValue)")
        } catch {
            let next = retry(after: f.count)
            metaFailure = next
            js.server.logger.error("JetStream cluster: the meta log does not open yet (\(error)); trying again in \((next.due - ticks) / 10) s")
        }
    }
}
