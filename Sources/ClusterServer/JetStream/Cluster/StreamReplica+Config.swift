import Foundation
import Raft

/// Config updates of a clustered stream, applied by every replica at the same point of the
/// stream's log. An update commits in the meta group, and each replica applies meta entries at
/// its own point of the stream's log. But the limits an update changes decide at apply whether
/// a publish is stored (a lower max_msgs with discard new, a seal, max_age): applied at the
/// meta entry, a publish between two replicas' applies was stored by one and refused by
/// another, and their sequences diverged. So the stream's leader puts the committed config in
/// the stream's log (a `config` op, with its clock's `now` for max_age), and every replica
/// applies it there. Meanwhile the replica listens on and shows the committed config
/// (`Stream.assignedConfig`) and stores by the one it applied.
extension StreamReplica {
    /// The meta group committed `cfg` for this stream in its entry `metaIndex`.
    func configAssigned(_ cfg: StreamConfig, metaIndex: UInt64) {
        let committed = JetStreamService.keepingFirstSeq(cfg, of: stream)
        let listened = stream.committedConfig.subjects
        configIndexes.assigned = metaIndex
        stream.assignedConfig = committed == stream.config ? nil : committed
        if isLeader && stream.committedConfig.subjects != listened { js.subscribeIngest(stream) }
        proposeConfigIfBehind()
        cluster.needsTick(self)
    }

    /// Leader: proposes the committed config while this replica has not applied it; one in
    /// flight at a time (another after 5 s: the log may have refused it). A leader whose meta
    /// state is behind what the log already applied proposes nothing (no step back).
    /// `firstLeadership`: a replica that leads for the first time since it opened, and has
    /// applied no config op since, proposes its config in any case. Its peers may wait for an
    /// update it cannot tell they miss: it restarted, and opened with the newest config,
    /// between the update's commit and the op's.
    func proposeConfigIfBehind(firstLeadership: Bool = false) {
        guard isLeader else { return }
        if !firstLeadership {
            guard stream.assignedConfig != nil else { return }
            guard configIndexes.assigned > configIndexes.applied else {
                stream.assignedConfig = nil
                return
            }
        }
        let mono = DispatchTime.now().uptimeNanoseconds
        if let hold = configHold, mono < hold { return }
        configHold = mono + 5_000_000_000
        try? proposeOp(["op": "config", "config": stream.committedConfig.json, "meta_index": configIndexes.assigned,
                        "now": JSTime.nowNanos()], answer: nil)
    }

    /// A `config` op: the config takes effect here, at the same point of the log on every replica.
    func applyConfigOp(_ o: JSONObject, at index: LogIndex) throws {
        guard let co = try o.object("config", typeName: "StreamConfig"), let now = try o.int64("now") else { return }
        let cfg = JetStreamService.keepingFirstSeq(try StreamConfig.decodeNormalized(co, clustered: true), of: stream)
        configHold = nil
        configAppliedAt = index
        configIndexes.applied = max(configIndexes.applied, try o.uint64("meta_index") ?? 0)
        if stream.assignedConfig == cfg || configIndexes.applied >= configIndexes.assigned { stream.assignedConfig = nil }
        if cfg != stream.config {
            // What the log applied before this point is durable with the config it was judged
            // by, and a restart replays what comes after by the new one (`applyConfig` writes
            // it to `meta.json`).
            try? stream.syncStore()
            js.applyConfig(stream, cfg, now: now)
        }
        // Direct-get access follows the applied config; a newer committed config is proposed next.
        cluster.needsTick(self)
    }

    /// The config a file stream's replica applied last (its `meta.json`, written at create and
    /// when a `config` op applies). A restarted replica opens with it, not with the newest
    /// committed config: the entries it replays after its store's durable point are judged by
    /// the config in force there, and an update still ahead in its log applies where it is. A
    /// stream copy from the leader writes its leader's applied config there (or removes the
    /// file when the copy carries none: the replica then opens with the newest committed
    /// config). Nil when missing or unreadable.
    static func readAppliedConfig(directory: String) -> StreamConfig? {
        (try? JetStreamService.readMeta(directory: directory, clustered: true))??.config
    }

    /// A config as JSON (`CatchupState.config`); nil when unreadable.
    static func decodeAppliedConfig(_ bytes: [UInt8]) -> StreamConfig? {
        guard let o = try? JSONObject.parse(bytes, typeName: "StreamConfig") else { return nil }
        return try? StreamConfig.decodeNormalized(o, clustered: true)
    }

    /// The config a replica opens with: the one its log (or its copy's leader) applied last,
    /// unless that belongs to another stream of the name; else the newest committed one.
    static func openingConfig(applied: StreamConfig?, assigned: StreamConfig) -> StreamConfig {
        applied.flatMap { $0.name == assigned.name ? $0 : nil } ?? assigned
    }
}
