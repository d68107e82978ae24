import Foundation
import Raft

/// A store removed from the meta group for good (`SERVER.REMOVE`) while its server keeps
/// running. Raft never tells a removed member, so it learns it from a member's hello (sent
/// once the removal committed there) or from its own log (it applied the configuration change
/// that left it out). It then stops taking part in two steps:
///
/// 1. At once: its meta group closes (no campaigns; meta leadership, if it had any, moved
///    before it was removed) and it stops answering its clients' JetStream requests as a member.
/// 2. Its stream replicas drain: leaderships it holds are handed to other voters, and each
///    replica stays until the stream's leader moved it off (the leader's hello says so; its
///    replacement is caught up first), at most `retireGraceTicks`. An R1 stream it leads can
///    move only if this store applied its new assignment before it left.
///
/// Then it moves its store — identity, meta log, bootstrap promise, replicas — into
/// `<store>/.removed-<unix time>/`, kept for an operator rather than deleted. Restarted, the
/// server finds no identity and joins as a new member.
extension JetStreamCluster {
    static let removedHealthError = "JetStream server was removed from the meta group"
    /// How long (ticks) stream replicas may take to move off a retiring store: 2 minutes.
    static let retireGraceTicks = 1_200

    /// Starts retiring (once): the meta group closes, stream leaderships move off.
    func beginRetirement(_ reason: String) {
        guard membership.retiringSinceTick == nil else { return }
        membership.retiringSinceTick = ticks
        js.server.logger.error("JetStream cluster: this server was removed from the JetStream meta group\(accountSuffix) (\(reason)); it stops taking part: its stream replicas move off, then its store is archived; restart it to join again as a new member")
        if isMetaLeader, let node = host.node(Self.metaGroup), let to = bestFollower(node) {
            try? host.transferLeadership(Self.metaGroup, to: to)
        }
        host.removeGroup(Self.metaGroup)
        dropMetaLeadership()
        handOffStreamLeaderships()
    }

    /// Every second while retiring: hands off, lets the stream leaders move the replicas off,
    /// and archives once none is left (or the grace is over).
    func retirementTick() {
        guard let since = membership.retiringSinceTick, membership.retiredArchive == nil else { return }
        if !replicas.isEmpty && ticks - since < Self.retireGraceTicks {
            handOffStreamLeaderships()
            return
        }
        cancelReplicaOpens()
        if !replicas.isEmpty {
            js.server.logger.warning("JetStream cluster: \(replicas.count) stream replica(s) did not move off within \(Self.retireGraceTicks / 10) s (\(replicas.keys.sorted().joined(separator: ", "))); archiving them")
        }
        for r in replicas.values {
            r.close()
            if js.streams[r.name] === r.stream { js.streams[r.name] = nil }
        }
        replicas.removeAll()
        let archive = root + "/.removed-\(Int(Date().timeIntervalSince1970))"
        do {
            membership.retiredArchive = try Self.archiveStore(root: root, to: archive)
            js.server.logger.error("JetStream cluster: removed from the meta group\(accountSuffix): meta log and stream replicas archived in \(archive)")
        } catch {
            membership.retiredArchive = root
            js.server.logger.error("JetStream cluster: removed from the meta group\(accountSuffix), but archiving the store failed: \(error); move \(root) away before restarting this server")
        }
    }

    /// Streams led here go to their most caught-up other voter; one without another voter (R1)
    /// keeps leading and runs its own membership step, so a move it knows of can complete.
    private func handOffStreamLeaderships() {
        let live = liveIdentities, staying = stayingPeers
        for r in replicas.values where r.isLeader {
            if let node = host.node(r.group), let to = bestFollower(node, among: staying) {
                try? host.transferLeadership(r.group, to: to)
            } else {
                streamMembershipStep(r, live: live)
            }
        }
    }

    private var accountSuffix: String { js.account.isGlobal ? "" : " of account \"\(js.account.name)\"" }

    /// Moves every entry of `root` whose name does not start with "." (identity, promise,
    /// `_meta`, stream directories; not `.accounts` or earlier archives) into `archive`.
    /// Returns `archive`. Pure file system work, tested on its own.
    static func archiveStore(root: String, to archive: String) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: archive, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: root).sorted() where !name.hasPrefix(".") {
            try fm.moveItem(atPath: root + "/" + name, toPath: archive + "/" + name)
        }
        return archive
    }

    /// `/jsz` `meta_cluster` of a retired (or retiring) store.
    func retiredMetaJSON() -> [String: Any]? {
        guard membership.retiringSinceTick != nil else { return nil }
        var o: [String: Any] = ["name": js.server.routeManager?.clusterName ?? "", "removed": true,
                                "peer": StreamAssignment.hex(host.me), "error": Self.removedHealthError]
        if let a = membership.retiredArchive { o["archive"] = a }
        return o
    }
}
