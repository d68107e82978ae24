import Foundation
import StreamLog

/// Finding corrupt blocks in a replica's store and handing it to the repair (a copy of the
/// stream from the leader, `StreamReplica+Catchup`).
///
/// Opening a store CRC-checks only its tail segment; sealed segments are trusted through
/// their index files. So after open, and then every `JetStreamCluster.scrubEveryTicks`
/// (`CLUSTERD_SCRUB_SECONDS`, default a day), a scrub reads every block of every sealed
/// segment on a background thread (one segment under the log's lock at a time), and every read that meets
/// a bad block (it reads as absent: corrupt bytes are never served) reports it too. A replica
/// that found damage stops serving direct gets, gives up leadership if it has it, and copies
/// the stream from the new leader.
extension StreamReplica {
    /// Cluster ticks between leadership hand-off attempts of a corrupt leader.
    private static let handOffEveryTicks = 20

    /// Starts a scrub of the sealed segments (after a reopen, and every `scrubEveryTicks`),
    /// unless one is running or damage was already found.
    func startScrub() {
        guard !scrubbing, !corruptionFound, !closed, let store = stream.store as? StreamLogStore else { return }
        let bases = store.sealedSegments
        guard !bases.isEmpty else { return }
        scrubbing = true
        let queue = js.queue
        let cluster = cluster
        let name = name
        DispatchQueue.global(qos: .utility).async {
            // A closed store (the replica reopened or left) answers nil for every segment.
            let bad = Self.firstDamage(in: store, segments: bases)
            // Looked up on the queue: the outcome counts only for the replica still on `store`.
            queue.async {
                guard let r = cluster.replicas[name], r.stream.store === store else { return }
                r.scrubbing = false
                if let bad { r.storeFoundCorrupt(bad, by: "the scrub of its sealed segments", store: store) }
            }
        }
    }

    /// The first bad block of `segments`, scrubbed one after another (off the queue).
    private static func firstDamage(in store: StreamLogStore, segments: [UInt64]) -> CorruptRange? {
        for base in segments {
            if let bad = store.scrub(segment: base) { return bad }
        }
        return nil
    }

    /// Every cluster tick: a read that met a corrupt block starts the repair.
    func checkReadCorruption() {
        guard !corruptionFound, rangeRepair == nil, let store = stream.store as? StreamLogStore,
              let bad = store.corruptionSeenByReads else { return }
        storeFoundCorrupt(bad, by: "a read", store: store)
    }

    /// The store holds a bad block: re-fetch what it lost from another replica when it is in a
    /// sealed segment (`+RangeRepair`), else copy the whole stream from the leader. A bad block
    /// a read met in the tail segment of the running store is in data written whole (a torn
    /// write is cut at open, never read), so the tail is sealed and repaired the same way.
    /// The tail segment holding `bad`, sealed for a repair by range; nil when `bad` is not in the
    /// tail or sealing failed (logged: the whole copy that follows is the fallback).
    private func sealTail(of store: StreamLogStore, holding bad: CorruptRange) -> UInt64? {
        do {
            return try store.sealTail(holding: bad)
        } catch {
            js.server.logger.error("Stream '\(name)': could not seal the damaged tail segment for a repair by range: \(error)")
            return nil
        }
    }

    func storeFoundCorrupt(_ bad: CorruptRange, by finder: String, store: StreamLogStore) {
        // A whole copy is decided once per replica object: it ends in a reopen (a new object).
        guard !closed, stream.store === store, !corruptionFound else { return }
        if catchup == nil, let base = store.sealedSegmentBase(of: bad) ?? sealTail(of: store, holding: bad) {
            guard !damagedSegments.contains(base) else { return }
            damagedSegments.append(base)
            js.server.logger.error("Stream '\(name)': \(finder) found \(bad); re-fetching the damaged range from another replica")
        } else {
            corruptionFound = true
            damagedSegments = []
            js.server.logger.error("Stream '\(name)': \(finder) found \(bad); copying the stream from its leader")
            guard catchup == nil else { return } // a copy already under way replaces the store too
        }
        needsRepair = true
        updateDirectAccess()
        handOffLeadershipIfCorrupt()
    }

    /// A leader with a corrupt store moves leadership to a sound replica (it can only be
    /// repaired as a follower, and its consumers would skip what it cannot read).
    func handOffLeadershipIfCorrupt() {
        guard needsRepair, isLeader, cluster.ticks % Self.handOffEveryTicks == 0 || !handOffTried else { return }
        handOffTried = true
        do {
            try stepDown()
            js.server.logger.warning("Stream '\(name)': handing leadership to another replica (corrupt store)")
        } catch {
            js.server.logger.error("Stream '\(name)': corrupt store, and no replica to hand leadership to: \(error)")
        }
    }
}
