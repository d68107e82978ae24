import Raft
import StreamLog

/// The per-tick work of replicas, run only for replicas that can have some (`tickWork`):
/// read-corruption checks, direct-get access (join, leave, re-prove) and driving a copy or a
/// repair. A replica enters the set when something it depends on changes — its Raft group is
/// not quiesced (every input wakes a group), its leadership, its stream's config, a direct-get
/// proof's outcome, a copy or repair starting, a read meeting a corrupt block — and leaves
/// after a tick that finds it settled (`needsTickWork`). Ten thousand idle streams then cost
/// nothing per tick, where a pass over every replica ten times a second did.
extension JetStreamCluster {
    /// Visit `r` from the next cluster tick on, until it is settled.
    func needsTick(_ r: StreamReplica) {
        guard !r.closed else { return }
        tickWork.insert(r)
    }

    /// Replicas the per-tick passes visit now (tests, `/jsz`-style diagnostics).
    var tickWorkCount: Int { tickWork.count }

    /// First pass of a tick: what the old loop over every replica did, for the replicas that
    /// can change (those of groups that are not quiesced join here).
    func tickReplicaAccess() {
        host.forEachActiveDelegate { d in
            guard let r = d as? StreamReplica else { return }
            self.needsTick(r)
            // A configuration change commits only in an active group.
            if r.isLeader { self.membershipWork.insert(r) }
        }
        for r in tickWork.elements where isCurrent(r) {
            r.checkReadCorruption()
            r.updateDirectAccess()
            r.proposeConfigIfBehind()
        }
    }

    /// Second pass: drives copies and repairs; replicas with nothing more to do leave the set.
    func tickReplicaRepairs() {
        for r in tickWork.takeAll() where isCurrent(r) {
            if r.catchup != nil || r.needsRepair || r.rangeRepair != nil { r.catchupTick() }
            if r.needsTickWork { tickWork.insert(r) }
        }
    }

    /// A replica still serving its stream here (not closed, not replaced by a reopen).
    private func isCurrent(_ r: StreamReplica) -> Bool {
        !r.closed && replicas[r.name] === r
    }
}

extension StreamReplica {
    /// Whether a cluster tick may still have something to do for this replica: a copy or a
    /// repair runs or is due, its group is not quiesced or knows no leader (leaderless time
    /// counts, proofs renew), its direct-get access is not where its config wants it (a proof
    /// is due or in flight), or a read met a corrupt block not handled yet.
    var needsTickWork: Bool {
        guard !closed else { return false }
        if catchup != nil || needsRepair || rangeRepair != nil { return true }
        guard let node = cluster.host.node(group) else { return false }
        if !node.isQuiesced || node.leader == nil { return true }
        if stream.allowsDirect == direct.subscriptions.isEmpty { return true }
        if stream.assignedConfig != nil { return true } // a config update to put in the log
        if !corruptionFound, (stream.store as? StreamLogStore)?.corruptionSeenByReads != nil { return true }
        return false
    }
}
