import Dispatch
import Raft

/// One group's background group commit. At most one sync of the log runs at a time; writes made
/// while it runs (and the messages that depend on them) wait for the next one, which starts
/// when it finishes and covers all of them with one fsync.
struct GroupSyncState {
    /// A sync job is running on a sync queue.
    var running = false
    /// Released when the running sync finishes: messages, and the last write it covers.
    var runningMessages: [Message] = []
    var runningWrite: UInt64 = 0
    /// Written since the running sync started (or not handed to a sync yet).
    var nextNeeded = false
    var nextMessages: [Message] = []
    /// The last write the next sync covers (opt-in mode: also writes already counted as
    /// persisted, for the periodic sync).
    var nextWrite: UInt64 = 0
}

extension RaftHost {
    /// Files a Ready just written (write number `write`) with the sync it depends on.
    /// `messages` speak for what this node persisted, so they wait for a sync that started
    /// after every write so far; with nothing unsynced they go out now.
    func afterWrite(_ m: Member, write: UInt64, messages: [Message]) {
        if m.ackOnWrite && !m.storage.hardStateNeedsSync && !m.sync.nextNeeded {
            // Opt-in: written (to the page cache) counts; the periodic sync covers it. A term
            // or vote change still waits for its sync: a vote forgotten in a power loss could
            // elect two leaders in one term.
            m.sync.nextWrite = write
            release(m, messages: messages, write: write)
            return
        }
        if m.storage.needsSync || m.sync.nextNeeded {
            // New writes (or earlier ones still waiting for a sync): the next sync covers them.
            if !m.sync.nextNeeded && !m.sync.running { syncsToStart.append(m) }
            m.sync.nextNeeded = true
            m.sync.nextMessages += messages
            m.sync.nextWrite = write
        } else if m.sync.running {
            // Nothing new was written since the running sync started: it covers this Ready.
            m.sync.runningMessages += messages
            m.sync.runningWrite = write
        } else {
            release(m, messages: messages, write: write)
        }
    }

    /// Starts the syncs this round asked for (one job per group, on the group's sync queue).
    /// A sole sync — one group due and no other group's sync running, as with one busy stream —
    /// runs here instead of on a sync queue: the node only waits for it (what arrives meanwhile
    /// is read into the next round, the same group commit), and two thread hand-offs per round
    /// (to the sync queue and back) are saved: measured under publish load, 15–20% less CPU
    /// and 30% fewer context switches per message. Several groups due still sync in parallel on
    /// the sync queues. (Only followers inline, the leader in the background, measured 2–3×
    /// worse: the quick follower acks split the leader's rounds.)
    func startSyncs() {
        let due = syncsToStart.filter { members[$0.node.group] === $0 && !$0.sync.running && $0.sync.nextNeeded }
        syncsToStart = []
        let inline = inlineSoleSync && due.count == 1 && backgroundSyncs == 0
        // The PubAcks of entries applied so far are owed now; held until the end of the round,
        // they would also wait for this fsync, which covers only later entries.
        if inline { replyFlush.run() }
        for m in due {
            // The log's next step of zeros, on the group's sync queue: filled inline by an
            // append, a 512 KiB step held the JetStream queue for 1–2 ms.
            if let job = m.storage.backgroundJob() { syncQueue(m.node.group).async(execute: job) }
            startSync(m, inline: inline)
        }
    }

    /// The opt-in mode's periodic group commit: every group that counts writes as persisted
    /// and has writes not yet fsync'd starts a background sync (one per log at a time).
    func startPeriodicSyncs() {
        for m in members.values where m.ackOnWrite && !m.sync.running && !m.sync.nextNeeded && m.storage.needsSync {
            m.sync.nextNeeded = true
            startSync(m, inline: false)
        }
    }

    private func startSync(_ m: Member, inline: Bool) {
        let messages = m.sync.nextMessages, write = m.sync.nextWrite
        m.sync.nextNeeded = false
        m.sync.nextMessages = []
        let job: (() throws -> Void)?
        do {
            job = try m.storage.beginSync()
        } catch {
            server.logger.error("Raft log sync failed: \(error)")
            failGroup(m, error)
            return
        }
        guard let job else {
            // Made durable on the spot (a term or vote change), or nothing was left to do.
            release(m, messages: messages, write: write)
            return
        }
        if inline {
            // Nothing is written while it runs, so it covers every write so far.
            do { try job() } catch {
                server.logger.error("Raft log sync failed: \(error)")
                failGroup(m, error)
                return
            }
            release(m, messages: messages, write: write)
            return
        }
        m.sync.running = true
        m.sync.runningMessages = messages
        m.sync.runningWrite = write
        backgroundSyncs += 1
        offQueue(m.node.group, job) { self.syncFinished(m, $0) }
    }

    /// Runs `job` (an fsync) on the sync queue of `group`, then `done` with its outcome back on
    /// the JetStream queue. One queue per group: a stream's Raft log syncs and its store's sync
    /// before a compaction never run in parallel with each other.
    func offQueue(_ group: GroupID, _ job: @escaping () throws -> Void,
                  then done: @escaping (Result<Void, Error>) -> Void) {
        let queue = self.queue
        syncQueue(group).async {
            let outcome = Result { try job() }
            queue.async { done(outcome) }
        }
    }

    /// The serial queue of `group`'s fsyncs and zero-fills.
    func syncQueue(_ group: GroupID) -> DispatchQueue {
        syncQueues[Int(group.rawValue % UInt64(syncQueues.count))]
    }

    /// Back on the JetStream queue: release what the sync covered, start the next one.
    private func syncFinished(_ m: Member, _ outcome: Result<Void, Error>) {
        backgroundSyncs -= 1
        // The group may have been removed (stream deleted, node shutting down) meanwhile.
        guard members[m.node.group] === m else { return }
        m.sync.running = false
        if case .failure(let error) = outcome {
            server.logger.error("Raft log sync failed: \(error)")
            failGroup(m, error)
            return
        }
        let messages = m.sync.runningMessages
        m.sync.runningMessages = []
        release(m, messages: messages, write: m.sync.runningWrite)
        if m.sync.nextNeeded { startSync(m, inline: false) }
        process()
    }

    /// Everything up to `write` is durable: send what waited for it, and let Raft count it
    /// (a leader's own match may rise and commit; a follower may apply more).
    private func release(_ m: Member, messages: [Message], write: UInt64) {
        coalescer.add(messages)
        m.node.synced(throughWrite: write)
        if m.node.hasReady { multi.markDirty(m.node.group) }
    }
}
