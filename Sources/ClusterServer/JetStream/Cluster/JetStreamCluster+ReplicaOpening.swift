import Dispatch
import Foundation

/// A replica whose files are being opened off the JetStream queue.
final class PendingReplicaOpen {
    let assignment: StreamAssignment
    /// The create request its first leader answers (moved to the replica once it opens).
    var createReply: (reply: String, type: String)?
    private let lock = NSLock()
    private var _cancelled = false
    /// The stream was deleted or the node stopped meanwhile (set on the JetStream queue; read
    /// by the open job too, which then opens nothing).
    var cancelled: Bool {
        get { lock.withLock { _cancelled } }
        set { lock.withLock { _cancelled = newValue } }
    }
    /// Set by the open job on its queue; read there by the cleanup of a cancelled open, or on
    /// the JetStream queue by the install (never both: see `replicaOpened`).
    var files: StreamReplica.Files?

    init(assignment: StreamAssignment) { self.assignment = assignment }
}

/// Opening new replicas off the JetStream queue. Creating a replica's store and Raft log
/// costs several fsyncs; run on the JetStream queue, which also drives every Raft group's
/// ticks and messages, a burst of creates held the meta leader's heartbeats back past the
/// election timeout on a loaded machine, and meta leadership moved during the burst (creates
/// in flight then failed). Now the files open on a few replica-open queues and the replica is
/// installed on the JetStream queue when they are ready; Raft messages for its group that come
/// earlier wait in the host's early stash (bounded) or are resent.
///
/// A stream's opens always run on the same serial queue (chosen by name), so the files of a
/// deleted stream are closed and removed before a later stream of the same name opens them.
extension JetStreamCluster {
    /// Test hook: runs on the replica-open queue before a replica's files are opened (server
    /// name, stream name). Lets a test hold one node's open to see that nothing waits for it.
    nonisolated(unsafe) static var replicaOpenHook: ((String, String) -> Void)?

    /// The replica-open queue of a stream.
    func openQueue(for stream: String) -> DispatchQueue {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in stream.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return openQueues[Int(h % UInt64(openQueues.count))]
    }

    /// Starts opening the local replica of `a` (a create, or this node added to its replicas).
    func openReplica(_ a: StreamAssignment, createReply: (reply: String, type: String)? = nil) {
        let name = a.config.name
        guard replicas[name] == nil, openingReplicas[name] == nil else { return }
        let pending = PendingReplicaOpen(assignment: a)
        pending.createReply = createReply
        openingReplicas[name] = pending
        let js = self.js, me = host.me, server = myName
        openQueue(for: name).async {
            // Deleted (or the node stopping) before its turn: nothing to open or clean up.
            if pending.cancelled { return }
            Self.replicaOpenHook?(server, name)
            let outcome = Result { try StreamReplica.openFiles(js: js, assignment: a, me: me) }
            if case .success(let files) = outcome { pending.files = files }
            js.queue.async { [weak self] in self?.replicaOpened(pending, outcome.map { _ in () }) }
        }
    }

    /// Back on the JetStream queue: install the replica, unless its stream went away meanwhile.
    private func replicaOpened(_ pending: PendingReplicaOpen, _ outcome: Result<Void, Error>) {
        let name = pending.assignment.config.name
        // A cancelled open was taken out of the table and its files are closed by the cleanup
        // job that follows it on its queue.
        guard !pending.cancelled, openingReplicas[name] === pending else { return }
        openingReplicas[name] = nil
        if case .failure(let error) = outcome {
            js.server.logger.error("JetStream cluster: cannot create replica of stream '\(name)': \(error)")
            return
        }
        guard let files = pending.files else { return }
        guard let current = assignments[name], current.group == pending.assignment.group else {
            // Not reached while the table and the assignments agree; closed rather than leaked.
            files.close()
            return
        }
        let r = StreamReplica.install(cluster: self, assignment: current, files: files)
        replicas[name] = r
        r.createReply = pending.createReply
    }

    /// The stream was deleted while its replica was opening: its files are closed and removed
    /// after the open finishes, on the same queue (so before any later open of the name).
    /// Returns false when no open was pending.
    func cancelReplicaOpen(_ name: String) -> Bool {
        guard let pending = openingReplicas.removeValue(forKey: name) else { return false }
        pending.cancelled = true
        let directory = js.streamDirectory(name)
        openQueue(for: name).async {
            pending.files?.close()
            pending.files = nil
            if pending.assignment.config.storage == .file, let directory { AtomicFile.removeTree(directory) }
        }
        return true
    }

    /// Shutdown: every pending open is cancelled and its files closed (waits for the opens).
    func cancelReplicaOpens() {
        let pending = Array(openingReplicas.values)
        openingReplicas.removeAll()
        for p in pending {
            p.cancelled = true
            // On the open's own queue: after its job, never beside it.
            openQueue(for: p.assignment.config.name).sync {
                p.files?.close()
                p.files = nil
            }
        }
    }

    /// Whether this node has (or is opening) a replica of `stream`.
    func hostsReplica(_ stream: String) -> Bool { replicas[stream] != nil || openingReplicas[stream] != nil }
}
