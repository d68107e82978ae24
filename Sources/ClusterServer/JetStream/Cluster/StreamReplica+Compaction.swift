import Dispatch
import Raft

/// Raft log compaction (the `compact` op, proposed by the leader every 2 s when the log holds
/// more than `compactionThreshold` entries). Entries up to `upTo` may be dropped only once the
/// store that holds what they stored is durable, and the store is written without fsyncs, so
/// the first compaction after a busy stretch syncs everything stored since the last one.
/// That fsync ran on the JetStream queue, at the same entry on every replica: 51–76 ms with
/// ~400,000 messages behind it (hand-run probe, three nodes under async publish), in which no
/// node took a publish or a Raft frame. It now runs on the group's sync queue while the queue
/// goes on; the log is compacted when it finished. Compacting late only keeps entries longer.
extension StreamReplica {
    /// Applies a `compact` op: syncs the store off the queue, then compacts up to `upTo`.
    func compactAfterStoreSync(upTo: LogIndex) {
        if compaction.syncing {
            compaction.next = max(compaction.next ?? upTo, upTo)
            return
        }
        stream.persistRemovedLastID()
        guard let job = stream.store.syncJob() else { return compactLog(upTo: upTo) }
        compaction.syncing = true
        cluster.host.offQueue(group, job) { self.storeSynced(forCompactionUpTo: upTo, $0) }
    }

    /// Back on the JetStream queue.
    private func storeSynced(forCompactionUpTo upTo: LogIndex, _ outcome: Result<Void, Error>) {
        compaction.syncing = false
        // Closed meanwhile (deleted, reopened, shutting down): the next open compacts.
        guard !closed, storeFailure == nil, cluster.replicas[name] === self else { return }
        if case .failure(let error) = outcome {
            // What was applied since is answered and in the Raft log, which keeps it: the
            // replica stops after it, as if the next entry's store write had failed.
            let cause = error as? StoreError ?? .io("\(error)")
            storeFailed(cause, at: (cluster.host.node(group)?.appliedIndex ?? upTo).next)
            return stopAfterStoreFailure()
        }
        compactLog(upTo: upTo)
        if let next = compaction.next {
            compaction.next = nil
            compactAfterStoreSync(upTo: next)
        }
    }

    private func compactLog(upTo: LogIndex) {
        do {
            try cluster.host.compact(group, upTo: upTo)
        } catch {
            js.server.logger.warning("Stream '\(name)': compacting its Raft log up to \(upTo.rawValue) failed: \(error)")
        }
    }
}
