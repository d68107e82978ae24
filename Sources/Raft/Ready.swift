/// Everything a node produced since the last `advance`. Handle it in this order: persist
/// `snapshot`, then `entries`, then `hardState` (durably when `mustSync`); send `messages`;
/// apply `snapshot` and `committedEntries`; serve `readStates`; call `advance`.
///
/// A driver that makes writes durable in the background (while the node keeps taking input)
/// instead writes, sends `splitMessages().early`, applies, calls `advanceWritten(_:)` and keeps
/// the write number it returns; once a sync that started after the write finished, it sends
/// `splitMessages().afterPersist` and calls `synced(throughWrite:)`. Readies taken meanwhile are
/// handled the same way, so every message follows the writes it depends on.
public struct Ready: Sendable {
    /// Persist when non-nil (term, vote or commit changed).
    public var hardState: HardState?
    /// Append to stable storage, truncating any existing entries from `entries[0].index` on.
    public var entries: [Entry]
    /// Persist (replacing the log) and load into the state machine.
    public var snapshot: Snapshot?
    /// Send after persisting.
    public var messages: [Message]
    /// Set when `messages` come from a leader whose term was durable before this Ready (it
    /// won an election with it); see `splitMessages()`.
    public var fromDurableLeader: Bool
    /// Apply to the state machine in order (after persisting).
    public var committedEntries: [Entry]
    /// Reads that may be served once `index` is applied.
    public var readStates: [ReadState]
    public var role: RaftRole
    public var leader: NodeID?
    /// Entries or term/vote changed: persist durably (fsync) before sending messages.
    public var mustSync: Bool

    /// `messages` split into those that may be sent before this Ready is persisted and those
    /// that must wait. Early: a leader's appends, heartbeats and snapshots (Raft dissertation
    /// §10.2.1) — its term was made durable before it could win the election, and its own copy
    /// of new entries counts toward commit only once reported durable (`advance` or
    /// `synced(throughWrite:)`). Everything else (votes, append responses...) speaks for what
    /// this node persisted and waits.
    public func splitMessages() -> (early: [Message], afterPersist: [Message]) {
        guard fromDurableLeader else { return ([], messages) }
        var early: [Message] = [], late: [Message] = []
        for m in messages {
            switch m.body {
            case .appendEntries, .heartbeat, .installSnapshot: early.append(m)
            default: late.append(m)
            }
        }
        return (early, late)
    }

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty
    }
}

extension RaftNode {
    /// Whether `ready()` would return anything to do.
    public var hasReady: Bool {
        !msgs.isEmpty || (broadcastPending && role == .leader) || !log.unstable.isEmpty || log.pendingSnapshot != nil || !readStates.isEmpty
            || hardState != prevHardState || log.hasNextCommittedEntries
    }

    /// Collects the work for the driver. Messages and read states are handed out once; entries,
    /// snapshot and committed entries are handed out until `advance` confirms them.
    public func ready() -> Ready {
        if broadcastPending {
            broadcastPending = false
            if role == .leader { broadcastAppend() }
        }
        let hs = hardState
        let termOrVoteChanged = hs.term != prevHardState.term || hs.vote != prevHardState.vote
        let rd = Ready(hardState: hs != prevHardState ? hs : nil,
                       entries: log.unstable,
                       snapshot: log.pendingSnapshot,
                       messages: msgs,
                       fromDurableLeader: role == .leader && !termOrVoteChanged,
                       committedEntries: log.nextCommittedEntries(),
                       readStates: readStates,
                       role: role,
                       leader: leader,
                       mustSync: termOrVoteChanged || !log.unstable.isEmpty)
        prevHardState = hs
        msgs = []
        readStates = []
        return rd
    }

    /// The driver persisted `rd` durably (and everything before it) and applied it.
    public func advance(_ rd: Ready) {
        accept(rd)
        if log.syncedAll() { durableRose() }
    }

    /// The driver wrote `rd` (not necessarily durably) and applied it; the next `ready()` hands
    /// out only what is newer. Returns the write's number for `synced(throughWrite:)`.
    @discardableResult
    public func advanceWritten(_ rd: Ready) -> UInt64 {
        accept(rd)
        return log.written()
    }

    /// A sync that started after write number `seq` finished: everything written up to it is
    /// durable. A leader now counts its own copy of those entries toward commit.
    public func synced(throughWrite seq: UInt64) {
        if log.synced(throughWrite: seq) { durableRose() }
    }

    private func accept(_ rd: Ready) {
        if let last = rd.entries.last { log.stableTo(index: last.index, term: last.term) }
        if let snap = rd.snapshot {
            log.stableSnapshotTo(snap.metadata.index)
            log.snapshotApplied(snap.metadata.index)
        }
        if let last = rd.committedEntries.last { log.appliedTo(last.index) }
        if confLog.count > 16 { pruneConfLog() }
    }

    /// More of our log is durable: as leader, our own match rises (and may commit).
    private func durableRose() {
        guard role == .leader, tracker.progress[id]?.maybeUpdate(log.durable) == true else { return }
        if maybeCommit() { broadcastPending = true }
    }
}
