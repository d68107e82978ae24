import Foundation
import Raft

/// A store removed from the meta group for good (`SERVER.REMOVE`) while its server keeps
/// running. Raft never tells a removed member, so it learns it from a member's hello (sent
/// once the removal committed there) or from its own log (it applied the configuration change
/// that left it out). It then stops taking part: it hands off the leaderships it holds, waits
/// for them to move (at most 2 s), closes its meta group and every stream replica (no more
/// campaigns, no JetStream served as a member) and moves its store — identity, meta log,
/// bootstrap promise, replicas — into `<store>/.removed-<unix time>/`, kept for an operator
/// rather than deleted. Restarted, the server finds no identity and joins as a new member.
extension JetStreamCluster {
    static let removedHealthError = "JetStream server was removed from the meta group"

    /// Starts retiring (once): leaderships move off first.
    func beginRetirement(_ reason: String) {
        guard membership.retiringSinceTick == nil else { return }
        membership.retiringSinceTick = ticks
        js.server.logger.error("JetStream cluster: this server was removed from the JetStream meta group\(accountSuffix) (\(reason)); it stops taking part and archives its meta log and stream replicas; restart it to join again as a new member")
        _ = handOffLeaderships()
    }

    /// Every second while retiring: finishes once nothing is led here, or after 2 s.
    func retirementTick() {
        guard let since = membership.retiringSinceTick, membership.retiredArchive == nil else { return }
        if ledGroupCount > 0 && ticks - since < 20 {
            _ = handOffLeaderships()
            return
        }
        cancelReplicaOpens()
        for r in replicas.values {
            r.close()
            if js.streams[r.name] === r.stream { js.streams[r.name] = nil }
        }
        replicas.removeAll()
        host.removeGroup(Self.metaGroup)
        dropMetaLeadership()
        let archive = root + "/.removed-\(Int(Date().timeIntervalSince1970))"
        do {
            membership.retiredArchive = try Self.archiveStore(root: root, to: archive)
            js.server.logger.error("JetStream cluster: removed from the meta group\(accountSuffix): meta log and stream replicas archived in \(archive)")
        } catch {
            membership.retiredArchive = root
            js.server.logger.error("JetStream cluster: removed from the meta group\(accountSuffix), but archiving the store failed: \(error); move \(root) away before restarting this server")
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
