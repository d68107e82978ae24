import Foundation
import Raft

/// Snapshot install: a replica whose log is behind the leader's compaction point (its data was
/// wiped, or it was down while compaction moved on) or whose store is corrupt copies the
/// stream from the leader (`CatchupSession`), then reopens with the copy switched in. Raft
/// never acknowledged the snapshot meanwhile, so the leader does not count this replica for
/// entries it does not have.
extension StreamReplica {
    func raftSnapshotOffered(_ metadata: SnapshotMetadata) {
        guard catchup == nil else { return }
        let applied = cluster.host.node(group)?.appliedIndex.rawValue ?? 0
        js.server.logger.warning("Stream '\(name)': this replica lacks entries up to \(metadata.index) that the leader compacted; copying the stream from the leader")
        startCatchup(minimumIndex: max(applied, metadata.index.rawValue))
    }

    /// The leader's log disagrees with an entry this replica had committed and applied: with
    /// `sync_interval`, a power loss took from the quorum entries this node kept. Its store and
    /// log are not the stream's any more, so it copies the whole stream from the leader (at
    /// whatever index the leader is: ours is no lower bound) and reopens with the copy.
    func raftDiverged(at index: LogIndex) {
        js.server.logger.error("Stream '\(name)': the leader's log disagrees with entry \(index.rawValue) this replica had committed (acknowledged writes lost from the quorum in a power loss with sync_interval); copying the stream from the leader")
        diverged = true
        guard catchup == nil else { return }
        startCatchup(minimumIndex: 0)
    }

    private func startCatchup(minimumIndex: UInt64) {
        do {
            let session = try CatchupSession(replica: self, minimumIndex: minimumIndex, streamDirectory: stream.directory)
            catchup = session
            session.sendNext()
        } catch {
            js.server.logger.error("Stream '\(name)': cannot start a copy from the leader: \(error)")
        }
    }

    /// Every cluster tick: drive the copy or the range re-fetch, or start the repair of a
    /// corrupt store once a leader (another node) is known: by range for damaged sealed
    /// segments, else a copy of the whole stream.
    func catchupTick() {
        if let c = catchup {
            c.tick()
            return
        }
        if let rr = rangeRepair {
            rr.tick()
            return
        }
        if needsRepair && isLeader { return handOffLeadershipIfCorrupt() }
        guard needsRepair, !isLeader, let node = cluster.host.node(group), let leader = node.leader,
              leader != cluster.host.me else { return }
        if let base = damagedSegments.first, !corruptionFound, startRangeRepair(segment: base) { return }
        needsRepair = false
        damagedSegments = []
        startCatchup(minimumIndex: diverged ? 0 : node.appliedIndex.rawValue)
    }

    /// The copy is complete and its marker durable: reopen, which switches it in. A memory
    /// stream's copy is handed to the reopened replica with the state's Raft metadata.
    func catchupFinished(_ state: CatchupState, messages: Int) {
        js.server.logger.info("Stream '\(name)': copied \(messages) messages (sequences \(state.firstSeq)...\(state.lastSeq)) from the leader at Raft index \(state.index)")
        let memory = (catchup?.copy as? StagedMemoryCopy).map {
            ($0.store, SnapshotMetadata(index: LogIndex(state.index), term: Term(state.term),
                                        conf: ConfState(voters: state.voters.map { NodeID($0) }, learners: state.learners.map { NodeID($0) })),
             $0.dedupSkews, state.appliedConfig)
        }
        catchup = nil
        js.queue.async { [cluster] in cluster.reinstall(self, memoryCopy: memory) }
    }

    func catchupFailed(_ error: Error) {
        js.server.logger.error("Stream '\(name)': copy from the leader failed (\(error)); the next snapshot offer starts over")
        catchup?.abandon()
        catchup = nil
        // A corrupt store is not offered a snapshot again, nor is a diverged replica: retry the
        // repair on a later tick.
        if corruptionFound || diverged { needsRepair = true }
    }
}
