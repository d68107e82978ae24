/// Errors of the storage protocol.
public enum StorageError: Error, Equatable {
    /// The requested index is below the first index (it was compacted into a snapshot).
    case compacted
    /// The requested index is past the last index.
    case unavailable
    /// The snapshot is older than what storage already holds.
    case snapshotOutOfDate
    /// A write would leave a gap in the log.
    case gap(expected: LogIndex, got: LogIndex)
}

/// Stable storage of one group's log, hard state and latest snapshot.
///
/// Raft only *reads* storage (the query half below). The driver *writes* it with what each `Ready`
/// hands out — entries, hard state, snapshots — before it sends that Ready's messages, and it
/// creates snapshots and compacts the log when the application wants to.
///
/// Implementations are classes because the driver and the `RaftNode` share one instance; both run
/// on the same thread (the group's owner).
public protocol RaftStorage: AnyObject {
    // MARK: read side (used by RaftNode)

    /// The persisted hard state and the membership as of the latest snapshot.
    func initialState() -> (hardState: HardState, conf: ConfState)
    /// The index of the first entry still in the log (snapshot index + 1).
    var firstIndex: LogIndex { get }
    /// The index of the last entry (the snapshot index when the log is empty).
    var lastIndex: LogIndex { get }
    /// The term of the entry at `index`; valid for `firstIndex - 1 ... lastIndex`.
    func term(at index: LogIndex) throws -> Term
    /// Entries in `[from, to)`, at most `maxBytes` of them but always at least one.
    func entries(from: LogIndex, to: LogIndex, maxBytes: Int) throws -> [Entry]
    /// The latest snapshot.
    func snapshot() -> Snapshot

    // MARK: write side (used by the driver)

    /// Appends entries, first truncating any existing suffix starting at `entries[0].index`.
    func append(_ entries: [Entry]) throws
    /// Drops all entries after `index` (an uncommitted suffix replaced by a new leader).
    func truncate(after index: LogIndex) throws
    func setHardState(_ hardState: HardState)
    /// Replaces the whole log with a snapshot received from a leader.
    func applySnapshot(_ snapshot: Snapshot) throws
    /// Records a snapshot of the application state at `index` (which must be applied already).
    func createSnapshot(index: LogIndex, conf: ConfState, data: [UInt8]) throws
    /// Discards entries up to and including `index` (which must be covered by the snapshot).
    func compact(upTo index: LogIndex) throws
}
