import Foundation
import StreamLog

/// StreamLog's fault-injecting file system, named here so tests need only ClusterServer.
typealias FaultInjectingFileSystem = FaultyFileSystem

/// Stream and consumer metadata on disk: `<root>/<stream>/meta.json` (config, created) and
/// `<root>/<stream>/consumers/<name>.json` (config and ack state), each written atomically.
/// Memory streams are not persisted (as in nats-server).
extension JetStreamService {
    func streamDirectory(_ name: String) -> String? { root.map { "\($0)/\(name)" } }

    /// The file seam for new stream logs (a fault-injecting one in tests).
    func fileSystem() -> FileSystem { fileSystemOverride ?? PowerCutMode.fileSystem ?? PosixFileSystem() }

    func makeStore(for config: StreamConfig, clustered: Bool = false) throws -> MessageStore {
        if config.storage == .memory { return MemoryStore() }
        guard let dir = streamDirectory(config.name) else { return MemoryStore(fileAccounting: true) }
        // A replica's durability is its Raft log's; with the opt-in `sync_interval`, a store is
        // fsync'd by the periodic sync only (`syncPeriodically`), not by its own thread.
        let manual = clustered || syncIntervalSeconds != nil
        return try StreamLogStore(directory: dir + "/msgs", config: config, fileSystem: fileSystem(),
                                  fsync: manual ? .manual : .always)
    }

    static let metaFileName = "meta.json"

    func persistMeta(_ s: Stream) throws {
        guard s.config.storage == .file, let dir = s.directory else { return }
        try Self.writeMeta(config: s.config, created: s.created, directory: dir)
    }

    /// A stream's `meta.json`. In a cluster it is the config the replica's log applied last
    /// (`StreamReplica+Config`); on one node the config `recover()` restores.
    static func writeMeta(config: StreamConfig, created: Int64, directory: String) throws {
        let body: [String: Any] = ["config": config.json, "created": created]
        try AtomicFile.write(JSJSON.encode(body), to: directory + "/" + metaFileName)
    }

    /// A stream's `meta.json` as `writeMeta` wrote it (nil when the file is missing), its config
    /// normalized; throws when it does not decode.
    static func readMeta(directory: String, clustered: Bool) throws -> (config: StreamConfig, created: Int64?)? {
        guard let bytes = AtomicFile.read(directory + "/" + metaFileName) else { return nil }
        let o = try JSONObject.parse(bytes, typeName: "StreamMeta")
        guard let co = try o.object("config", typeName: "StreamConfig") else { return nil }
        return (try StreamConfig.decodeNormalized(co, clustered: clustered), try o.int64("created"))
    }

    /// Memory consumers and consumers of memory streams keep no state on disk (as nats-server).
    func isDurable(_ c: Consumer) -> Bool {
        c.stream.config.storage == .file && !c.config.memStorage && !c.deleted && c.stream.directory != nil
    }

    /// The stream replica that replicates `c`'s state (a durable consumer in a cluster), if any.
    func replicating(_ c: Consumer) -> StreamReplica? {
        isDurable(c) ? cluster?.replicas[c.stream.name] : nil
    }

    /// Makes the consumer's state durable: written here, or (in a cluster) replicated through the
    /// stream's group, where `answer` is sent once the record committed.
    func persist(_ c: Consumer, answer: StreamReplica.PendingReply? = nil) {
        c.dirty = false
        guard isDurable(c), let dir = c.stream.directory else { return }
        let body = c.record
        if let r = replicating(c) {
            proposeRetentionRemovals(c.stream)
            // Every replica writes the record when it applies.
            try? r.proposeEntry(StreamEntry.encodeConsumerRecord(name: c.name, record: body), answer: answer)
            return
        }
        do {
            try AtomicFile.write(body, to: dir + "/consumers/\(c.name).json")
        } catch {
            server.logger.error("JetStream could not persist consumer '\(c.stream.name) > \(c.name)': \(error)")
        }
    }

    /// Rebuilds streams and consumers from disk (on start, on the JetStream queue).
    func recover() throws {
        guard let root else { return }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for name in names.sorted() {
            let dir = "\(root)/\(name)"
            do {
                guard let (cfg, stamped) = try Self.readMeta(directory: dir, clustered: false) else { continue }
                if Stream.isRestoring(cfg) {
                    // A restore the stop interrupted: its client got no answer, and a stream
                    // left marked would refuse every publish.
                    server.logger.warning("JetStream: removing stream '\(name)', whose restore did not finish")
                    AtomicFile.removeTree(dir)
                    continue
                }
                let created = stamped ?? JSTime.nowNanos()
                let store = try makeStore(for: cfg)
                let s = Stream(service: self, config: cfg, store: store, created: created, directory: dir)
                s.rebuildDedup()
                streams[name] = s
                s.noteTimedWork()
                loadConsumers(s)
                subscribeIngest(s)
                server.logger.info("  Restored \(store.state.messages) messages for stream '\(account.name) > \(name)'")
            } catch {
                server.logger.error("JetStream could not restore stream '\(name)': \(error)")
            }
        }
    }

    /// Loads the stream's consumers from their records (at start; in a cluster, when this node
    /// becomes the stream's leader — the records are replicated to every replica).
    func loadConsumers(_ s: Stream) {
        guard let dir = s.directory else { return }
        s.consumers = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/consumers")) ?? []
        let now = JSTime.nowNanos()
        for file in files.sorted() where file.hasSuffix(".json") {
            guard let bytes = AtomicFile.read(dir + "/consumers/" + file) else { continue }
            do {
                let c = try Consumer.restored(from: bytes, stream: s, now: now)
                let name = c.name
                s.consumers[name] = c
            } catch {
                server.logger.error("JetStream could not restore consumer '\(s.name) > \(file)': \(error)")
            }
        }
    }
}
