import Foundation
import Logging
import Raft

/// Opening a stream's local replica: its files (store and Raft log, off the JetStream queue),
/// then the replica and its Raft group (on the queue), with the checks of what the store found
/// on open.
extension StreamReplica {
    /// A replica's files, opened (or created) off the JetStream queue: the store and the Raft
    /// log, with a finished stream copy switched in. Every fsync of a new replica happens here.
    struct Files {
        /// The config the store was opened with.
        let config: StreamConfig
        let directory: String?
        let fresh: Bool
        let store: MessageStore
        let storage: DurableRaftStorage
        let installed: SnapshotMetadata?
        /// A memory stream's copy: its leader's dedup offset marks (file streams read theirs).
        var dedupSkews: DedupSkews? = nil

        /// Closes both (a replica whose stream was deleted, or the node stopped, before it opened).
        func close() {
            store.close()
            storage.closeLog()
        }
    }

    /// Opens (or creates) the files of the local replica of `a`. Touches nothing of the
    /// JetStream queue's state, so it runs on a replica-open queue (`+ReplicaOpening`).
    static func openFiles(js: JetStreamService, assignment a: StreamAssignment, me: NodeID) throws -> Files {
        var cfg = a.config
        var dir: String?
        var fresh = true
        var installed: SnapshotMetadata?
        if cfg.storage == .file, let d = js.streamDirectory(cfg.name) {
            dir = d
            // A directory left by an earlier stream of the same name (another group) is stale.
            let marker = d + "/cluster.json"
            if let bytes = AtomicFile.read(marker), let o = try? JSONObject.parse(bytes, typeName: "Marker"),
               (try? o.uint64("group")) == a.group {
                fresh = false
                // A stream copy that finished (maybe just before a crash) is switched in now.
                installed = try StreamInstall.rollForward(streamDirectory: d, created: a.created)
                // The config its log applied last (`StreamReplica+Config`); newer ones follow.
                cfg = openingConfig(applied: readAppliedConfig(directory: d), assigned: cfg)
            } else {
                AtomicFile.removeTree(d)
                try AtomicFile.makeDirectory(d + "/consumers")
                try JetStreamService.writeMeta(config: cfg, created: a.created, directory: d)
                try AtomicFile.write(JSJSON.encode(["group": a.group, "stream": cfg.name]), to: marker)
            }
        }
        let store = try js.makeStore(for: cfg, clustered: true)
        if fresh, cfg.firstSeq > 0 { try? store.skip(toNext: cfg.firstSeq) }
        // Only the stores the group was created with start from its bootstrap configuration; a
        // replica added later starts empty and learns the membership from the leader's log.
        let storage: DurableRaftStorage
        do {
            storage = try RaftStorageFactory.open(directory: dir.map { $0 + "/raft" }, ids: a.initial.contains(me) ? a.initial : [])!
            if let installed, let dir {
                try StreamInstall.finishRaftLog(installed, storage: storage, streamDirectory: dir)
            }
        } catch {
            store.close()
            throw error
        }
        if let fileStore = store as? StreamLogStore {
            do {
                let onlyVoter = a.config.numReplicas == 1 && a.ids == [me] ? me : nil
                try reconcileStoreAhead(fileStore, storage: storage, onlyVoter: onlyVoter, stream: cfg.name, logger: js.server.logger)
            } catch {
                storage.closeLog()
                store.close()
                throw error
            }
        }
        return Files(config: cfg, directory: dir, fresh: fresh, store: store, storage: storage, installed: installed)
    }

    /// A store that holds entries its Raft log lost (a power loss with `sync_interval`, where
    /// the store's pages reached the disk and the log's did not; or a log cut at a corrupt
    /// block) would refuse the log's next entries at those indexes and stop. The log decides:
    /// - `onlyVoter` (an R1 stream's node): nobody else holds those entries and the store applied
    ///   them, so the log continues after the store's last entry (a snapshot marker there);
    /// - more: the quorum's log is the truth (a new leader may have put other entries at those
    ///   indexes), so the store lets them go and the leader sends what was committed again.
    static func reconcileStoreAhead(_ store: StreamLogStore, storage: DurableRaftStorage, onlyVoter: NodeID?, stream: String,
                                    logger: Logger) throws {
        let (logLast, ahead) = (storage.lastIndex.rawValue, store.lastRaftIndex)
        guard ahead > logLast else { return }
        if let onlyVoter {
            logger.error("Stream '\(stream)': the store holds entries up to Raft index \(ahead), its log only up to \(logLast); the log continues after the store's (the only replica)")
            try storage.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: LogIndex(ahead), term: Term(store.lastRaftTerm),
                                                                           conf: ConfState(voters: [onlyVoter]))))
            try storage.sync()
            return
        }
        let before = store.state.lastSeq
        try store.truncate(afterRaftIndex: logLast)
        logger.error("Stream '\(stream)': the store held entries up to Raft index \(ahead), its log only up to \(logLast); its sequences \(store.state.lastSeq + 1)...\(before) are let go and the leader sends what was committed again")
    }

    /// A memory stream's copy from the leader, its Raft metadata and the replica's Raft log.
    /// `config`: the config the leader's store applied at the copied index, when the copy
    /// carried one.
    typealias MemoryInstall = (store: MemoryStore, meta: SnapshotMetadata, storage: DurableRaftStorage, skews: DedupSkews,
                               config: StreamConfig?)

    /// Opens (or creates) the local replica on the JetStream queue: files, then `install`.
    /// `memoryInstall`: a memory stream reopened with a copy from its leader; its Raft log (the
    /// same object, which keeps the term and vote) continues after the copied index.
    static func open(cluster: JetStreamCluster, assignment a: StreamAssignment,
                     memoryInstall m: MemoryInstall? = nil) throws -> StreamReplica {
        guard let m else {
            return install(cluster: cluster, assignment: a, files: try openFiles(js: cluster.js, assignment: a, me: cluster.host.me))
        }
        try StreamInstall.advanceRaftLog(m.meta, storage: m.storage)
        let cfg = openingConfig(applied: m.config, assigned: a.config)
        try? m.store.configure(cfg)
        return install(cluster: cluster, assignment: a,
                       files: Files(config: cfg, directory: nil, fresh: false, store: m.store, storage: m.storage, installed: m.meta,
                                    dedupSkews: m.skews))
    }

    /// Makes opened files the local replica (on the JetStream queue): the `Stream`, its Raft
    /// group, and the checks of what the store found on open. `a` is the current assignment
    /// (its config may be newer than the one the files were opened with).
    static func install(cluster: JetStreamCluster, assignment a: StreamAssignment, files: Files) -> StreamReplica {
        let js = cluster.js
        // The config the files were opened with: the one the replica's log applied last.
        let cfg = files.config
        let (dir, fresh, store, storage) = (files.directory, files.fresh, files.store, files.storage)
        if let installed = files.installed {
            js.server.logger.info("Stream '\(cfg.name)': installed a copy from the leader at Raft index \(installed.index) (\(store.state.messages) messages)")
        }
        let s = Stream(service: js, config: cfg, store: store, created: a.created, directory: dir)
        let me = cluster.host.me
        let r = StreamReplica(cluster: cluster, name: cfg.name, group: GroupID(a.group), stream: s)
        // Committed since (or while the files were opening): applies where its op is in the
        // log. Its meta entry is not known here; 1 is after nothing applied yet and before any
        // later update.
        if a.config != cfg { r.configAssigned(a.config, metaIndex: 1) }
        js.streams[cfg.name] = s
        // Under a server limit the other accounts' placement counts this copy's max_bytes.
        js.reservationsChanged = true
        s.noteTimedWork() // max_age: expiries are timed work
        // The store holds what it applied (its records carry their Raft index); after a
        // compaction the snapshot marker covers the rest (the store was synced before it).
        let applied = max(store.lastRaftIndex, storage.snapshot().metadata.index.rawValue)
        // Dedup ids within the window, as of the last stored message, before the log replays
        // (which adds its own): every replica must decide duplicates the same way.
        if !fresh { s.rebuildDedup(skews: files.dedupSkews) }
        cluster.host.addGroup(r.group, storage: storage, delegate: r,
                              applied: applied > 0 ? LogIndex(applied) : nil, quiesce: true,
                              campaign: fresh && a.initial.first == me, externalSnapshots: true, ackOnWrite: true)
        // A torn tail is normal after a crash (the store is synced only before compactions, and
        // the Raft log replays what was cut); a cut below the compaction point, or corrupt
        // blocks, lost messages the log no longer has. Damage confined to sealed segments is
        // re-fetched by range; anything else makes the replica copy the whole stream.
        let tailLost = (store as? StreamLogStore)?.tailCutOnOpen == true
            && store.lastRaftIndex < storage.snapshot().metadata.index.rawValue
        if let fileStore = store as? StreamLogStore, !tailLost, !fileStore.openCorruptions.isEmpty,
           case let bases = fileStore.openCorruptions.map({ fileStore.sealedSegmentBase(of: $0) }), !bases.contains(nil) {
            js.server.logger.error("Stream '\(cfg.name)': corrupt block(s) in the store (\(fileStore.openCorruptions.map(\.description).joined(separator: "; "))); re-fetching the damaged ranges from another replica")
            r.damagedSegments = Array(Set(bases.compactMap { $0 })).sorted()
            r.needsRepair = true
        } else if let fileStore = store as? StreamLogStore, fileStore.corruptionsOnOpen > 0 || tailLost {
            js.server.logger.error("Stream '\(cfg.name)': corrupt block(s) in the store (\(fileStore.corruptionsOnOpen) block(s), tail cut: \(fileStore.tailCutOnOpen)); copying the stream from its leader")
            r.needsRepair = true
            r.corruptionFound = true
        } else if !fresh {
            r.startScrub()
        }
        if !fresh {
            js.server.logger.info("  Restored \(store.state.messages) messages for stream '$G > \(cfg.name)' (replica of group \(a.group))")
        }
        // Ticked until it settles (direct access joined, group quiesced); a read that meets a
        // corrupt block later brings it back.
        cluster.needsTick(r)
        if let fileStore = store as? StreamLogStore {
            let queue = js.queue
            let name = cfg.name
            fileStore.onReadCorruption { [weak cluster] in
                guard let cluster else { return }
                queue.async { if let r = cluster.replicas[name] { cluster.needsTick(r) } }
            }
        }
        return r
    }
}
