import Raft
import RaftLogStorage

/// A replica whose stream store cannot take a committed entry for a reason of its own node (a
/// full disk, an I/O error). The Raft log has the entry (its tail is preallocated, the store's
/// is not, so a filling disk refuses the store first), and the other replicas store it. A
/// replica that answered an error and applied on would store the next entry at the missing
/// one's sequence, and its copy would differ from the others' from there on for good. So it
/// stops at that entry:
/// - nothing after it is applied or answered, and at the end of the round its Raft group stops
///   here (as after a Raft log error); the other replicas go on without it, and a leader's
///   stop lets them elect another;
/// - out of space: the replica reopens from its files after 5 s (10, 20, 40, then every 60 s
///   while it fails again), which replays its Raft log from the store's last entry, as a
///   restart would, so it stores the entries in order once there is room;
/// - any other error: it stays stopped until the server restarts (an I/O error can mean the
///   page cache no longer matches the disk: reopening in this process is not trusted).
/// Publishes this replica would have answered after the failure get no answer; their clients
/// retry (with `Nats-Msg-Id`, a retry is a duplicate).
extension StreamReplica {
    /// What stopped the replica: the entry its store could not take (nil: its Raft log failed).
    struct StoreFailed: Error, CustomStringConvertible {
        let stream: String
        let index: LogIndex?
        let cause: StoreError
        var description: String {
            "stream '\(stream)': " + (index.map { "the store could not take committed entry \($0.rawValue)" } ?? "the Raft log failed") + ": \(cause)"
        }
    }

    /// Whether the entry at `index` comes before the one the store could not take (every entry
    /// does while nothing failed; none after a Raft log failure): it is stored and answered.
    func precedesStoreFailure(_ index: LogIndex) -> Bool {
        guard let failure = storeFailure else { return true }
        return failure.index.map { index < $0 } ?? false
    }

    func storeFailed(_ cause: StoreError, at index: LogIndex) {
        guard storeFailure == nil else { return }
        storeFailure = StoreFailed(stream: name, index: index, cause: cause)
        let then = cluster.noteStoreFailure(self).map { "reopens from its files in \($0 / 10) s" } ?? "stays stopped until the server restarts"
        js.server.logger.error("Stream '\(name)': its store could not take committed entry \(index.rawValue) (\(cause)); this replica stops there and \(then)")
    }

    /// The group stopped after a storage error. Its Raft log out of space is handled as the
    /// store's: the replica reopens once there is room (what the log holds is what it wrote
    /// before the refused append, as after a crash).
    func raftGroupStopped(_ error: Error) {
        guard storeFailure == nil, !closed else { return }
        if JetStreamCluster.isOutOfSpace(error) {
            storeFailure = StoreFailed(stream: name, index: nil, cause: .noSpace("\(error)"))
            let wait = cluster.noteStoreFailure(self) ?? 0
            js.server.logger.error("Stream '\(name)': its Raft log is out of space; this replica reopens from its files in \(wait / 10) s")
        }
    }

    /// End of the round in which the store failed: the group stops here.
    func stopAfterStoreFailure() {
        guard let failure = storeFailure, cluster.host.node(group) != nil else { return }
        cluster.host.stopGroup(group, because: failure)
    }
}

extension JetStreamCluster {
    /// Whether a Raft log's error (what stopped its group) means the disk is full, so the group
    /// may reopen once there is room. The log reports it as `RaftLogStorageError`; before this
    /// check knew that, a stream's Raft log out of space stopped its replica until a restart.
    static func isOutOfSpace(_ error: Error) -> Bool {
        (error as? RaftLogStorageError)?.isNoSpace == true
    }

    /// Ticks until the `n`th reopen after store failures: 5, 10, 20, 40 s, then 60 s.
    static func storeRetryTicks(_ n: Int) -> Int { min(50 << min(max(n, 1) - 1, 4), 600) }

    /// The reopen schedule after `count` failures in a row (0: the first): one more failure,
    /// due `storeRetryTicks` from now. Stream replicas and the meta group share it.
    func retry(after count: Int) -> (count: Int, due: Int) {
        (count + 1, ticks + Self.storeRetryTicks(count + 1))
    }

    /// Records `r`'s store failure; returns the ticks until its reopen, nil when it waits for a
    /// restart.
    func noteStoreFailure(_ r: StreamReplica) -> Int? {
        guard case .noSpace? = r.storeFailure?.cause else { return nil }
        let next = retry(after: storeFailures[r.name]?.count ?? 0)
        storeFailures[r.name] = next
        return next.due - ticks
    }

    /// Housekeeping: reopens the replicas whose store ran out of space, when due. One that
    /// cannot open (the disk is still full) is tried again later; one that opened forgets its
    /// failures (a new one starts again at 5 s).
    func reopenAfterStoreFailures() {
        for (name, f) in storeFailures where ticks >= f.due {
            guard let a = assignments[name], a.ids.contains(host.me) else {
                storeFailures[name] = nil
                continue
            }
            if let r = replicas[name] {
                guard case .noSpace? = r.storeFailure?.cause else {
                    storeFailures[name] = nil
                    continue
                }
                reinstall(r)
            } else if !hostsReplica(name) {
                createReplica(a)
            }
            if replicas[name] == nil {
                storeFailures[name] = retry(after: f.count)
            } else {
                storeFailures[name] = nil
            }
        }
    }
}
