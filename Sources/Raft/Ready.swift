/// Everything a node produced since the last `advance`. Handle it in this order: persist
/// `snapshot`, then `entries`, then `hardState` (durably when `mustSync`); send `messages`;
/// apply `snapshot` and `committedEntries`; serve `readStates`; call `advance`.
public struct Ready: Sendable {
    /// Persist when non-nil (term, vote or commit changed).
    public var hardState: HardState?
    /// Append to stable storage, truncating any existing entries from `entries[0].index` on.
    public var entries: [Entry]
    /// Persist (replacing the log) and load into the state machine.
    public var snapshot: Snapshot?
    /// Send after persisting.
    public var messages: [Message]
    /// Apply to the state machine in order (after persisting).
    public var committedEntries: [Entry]
    /// Reads that may be served once `index` is applied.
    public var readStates: [ReadState]
    public var role: RaftRole
    public var leader: NodeID?
    /// Entries or term/vote changed: persist durably (fsync) before sending messages.
    public var mustSync: Bool

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty
    }
}

extension RaftNode {
    /// Whether `ready()` would return anything to do.
    public var hasReady: Bool {
        !msgs.isEmpty || !log.unstable.isEmpty || log.pendingSnapshot != nil || !readStates.isEmpty
            || hardState != prevHardState || log.hasNextCommittedEntries
    }

    /// Collects the work for the driver. Messages and read states are handed out once; entries,
    /// snapshot and committed entries are handed out until `advance` confirms them.
    public func ready() -> Ready {
        let hs = hardState
        let rd = Ready(hardState: hs != prevHardState ? hs : nil,
                       entries: log.unstable,
                       snapshot: log.pendingSnapshot,
                       messages: msgs,
                       committedEntries: log.nextCommittedEntries(),
                       readStates: readStates,
                       role: role,
                       leader: leader,
                       mustSync: hs.term != prevHardState.term || hs.vote != prevHardState.vote || !log.unstable.isEmpty)
        prevHardState = hs
        msgs = []
        readStates = []
        return rd
    }

    /// The driver persisted and applied `rd`.
    public func advance(_ rd: Ready) {
        if let last = rd.entries.last { log.stableTo(index: last.index, term: last.term) }
        if let snap = rd.snapshot {
            log.stableSnapshotTo(snap.metadata.index)
            log.snapshotApplied(snap.metadata.index)
        }
        if let last = rd.committedEntries.last { log.appliedTo(last.index) }
        if confLog.count > 16 { pruneConfLog() }
    }
}
