import Foundation
import NIOCore

/// `$JS.API.STREAM.RESTORE.<stream>`: takes a `SnapshotArchive` from a client in chunks and
/// creates the stream from it, as nats-server does (probed against 2.15.1): the answer names
/// `$JS.SNAPSHOT.RESTORE.<stream>.<id>`; each chunk needs a reply and is answered with an empty
/// message; an empty chunk ends the transfer and is answered with a `stream_create_response`
/// (the stream's info, or 500/10062 "restore failed: ..."). A chunk without a reply, or no chunk
/// for `idleNanos`, cancels the restore (nothing is created).
///
/// The chunks are staged in a file under the account's JetStream directory (`.restore`), and
/// the whole archive is checked (every frame's checksum, their order, the counts in its end)
/// before anything is created, so a truncated or damaged archive restores nothing.
final class StreamRestoreSession {
    static let idleNanos: Int64 = 10_000_000_000

    unowned let js: JetStreamService
    let name: String
    /// The config to create, as the request gave it (its name filled in).
    let config: [String: Any]
    let deliverSubject: String
    let stagingPath: String
    private var file: FileHandle?
    private var sub: Subscription?
    private(set) var staged: Int64 = 0
    private let limit: Int64?
    private var lastActivity = SourceSession.monoNanos()
    private(set) var finished = false
    private var transferred = false

    init(js: JetStreamService, name: String, config: [String: Any], stagingDirectory: String, limit: Int64?) throws {
        self.js = js
        self.name = name
        self.config = config
        self.limit = limit
        let id = UInt64.random(in: 1...UInt64.max)
        deliverSubject = "$JS.SNAPSHOT.RESTORE.\(name).\(id)"
        stagingPath = "\(stagingDirectory)/\(id)"
        try AtomicFile.makeDirectory(stagingDirectory)
        guard FileManager.default.createFile(atPath: stagingPath, contents: nil), let f = FileHandle(forWritingAtPath: stagingPath) else {
            throw JSAPIError.storageResources("insufficient storage resources available")
        }
        file = f
    }

    /// Subscribes the chunks (on this node: the client that asked is connected here).
    func start() {
        sub = js.bus.subscribeInternal(deliverSubject) { [weak self, weak js] msg in
            guard let js, let self else { return }
            let (_, reply, _, payload) = js.copy(msg)
            js.queue.async { self.received(payload, reply: reply) }
        }
        checkIdle()
    }

    private func received(_ chunk: [UInt8], reply: String?) {
        guard !finished else { return }
        lastActivity = SourceSession.monoNanos()
        guard let reply else { return cancel("a chunk came without a reply subject") }
        if chunk.isEmpty {
            // Transferred: no more chunks, and no idle timeout while the stream is made from it.
            closeFile()
            transferred = true
            if let s = sub { js.bus.unsubscribeInternal(s) }
            sub = nil
            return js.finishRestore(self, reply: reply)
        }
        staged += Int64(chunk.count)
        if let limit, staged > limit {
            js.reply(reply, JetStreamService.errorResponse(type: JetStreamService.createResponseType,
                                                           JSAPIError(503, 10023, "insufficient resources")))
            return cancel("the archive is larger than the storage limit")
        }
        do {
            try file?.write(contentsOf: Data(chunk))
        } catch {
            js.bus.publishInternal(subject: reply, payload: ByteBuffer(string: "-ERR 'storage failure during restore'"))
            return cancel("staging failed: \(error)")
        }
        js.bus.publishInternal(subject: reply, payload: ByteBuffer())
    }

    private func checkIdle() {
        guard !finished && !transferred else { return }
        if SourceSession.monoNanos() - lastActivity > Self.idleNanos { return cancel("no chunk for \(Self.idleNanos / 1_000_000_000) s") }
        js.queue.asyncAfter(deadline: .now() + .seconds(1)) { [weak self] in self?.checkIdle() }
    }

    func cancel(_ why: String) {
        js.server.logger.warning("Restore of stream '\(name)' cancelled: \(why)")
        finish()
    }

    private func closeFile() {
        try? file?.close()
        file = nil
    }

    /// Unsubscribes and removes the staged file (the restore is over, either way).
    func finish() {
        finished = true
        js.restoreFeeds[name] = nil
        closeFile()
        if let s = sub { js.bus.unsubscribeInternal(s) }
        sub = nil
        AtomicFile.remove(stagingPath)
        js.restoreSessions[name] = nil
    }

    /// Reads the staged archive once, handing each frame to `body` after checking it.
    func readFrames(_ body: (SnapshotArchive.Frame) throws -> Void) throws {
        let reader = try openReader()
        while let frame = try reader.next() { try body(frame) }
    }

    func openReader() throws -> SnapshotArchive.FileReader {
        guard let f = FileHandle(forReadingAtPath: stagingPath) else { throw SnapshotArchive.FormatError(description: "staged archive missing") }
        return SnapshotArchive.FileReader(f)
    }
}

extension SnapshotArchive {
    /// The frames of an archive file, in order, each checked (`Decoder`, `Validator`); nil
    /// after the end, an error for a truncated archive or bytes after its end.
    final class FileReader {
        private let file: FileHandle
        private var decoder = Decoder()
        private var validator = Validator()
        private var atEOF = false

        init(_ file: FileHandle) { self.file = file }
        deinit { try? file.close() }

        func next() throws -> Frame? {
            while true {
                if let frame = try decoder.next() {
                    try validator.check(frame)
                    return frame
                }
                if atEOF {
                    guard validator.ended, decoder.pending == 0 else {
                        throw FormatError(description: validator.ended ? "bytes after the archive's end" : "the archive is truncated")
                    }
                    return nil
                }
                let piece = try file.read(upToCount: 1 << 20) ?? Data()
                if piece.isEmpty { atEOF = true } else { decoder.feed(Array(piece)) }
            }
        }
    }
}

extension JetStreamService {
    static let createResponseType = "io.nats.jetstream.api.v1.stream_create_response"

    /// Answers a restore request (checks in nats-server 2.15.1's order and codes, probed).
    func restoreStream(_ name: String, body: [UInt8]) throws -> [String: Any] {
        if Self.isEmptyRequest(body) { throw JSAPIError.badRequest() }
        let o = try JSONObject.parse(body, typeName: "JSApiStreamRestoreRequest")
        var cfg = o.fields["config"] as? [String: Any] ?? [:]
        if let given = cfg["name"] as? String, !given.isEmpty, given != name { throw JSAPIError.streamNameMismatch }
        cfg["name"] = name
        let exists = cluster.map { $0.assignments[name] != nil } ?? (streams[name] != nil)
        if exists || restoreSessions[name] != nil { throw JSAPIError(400, 10130, "stream name already in use, cannot restore") }
        // The config is checked now, not after the whole archive came.
        _ = try restoredConfig(name, cfg)
        guard let root else { throw JSAPIError.storageResources("insufficient storage resources available") }
        let limit = nodeUsage.limit(.file)
        let session = try StreamRestoreSession(js: self, name: name, config: cfg, stagingDirectory: root + "/.restore",
                                               limit: limit >= 0 ? limit : nil)
        restoreSessions[name] = session
        session.start()
        server.logger.info("Starting restore of stream '\(name)'")
        return ["deliver_subject": session.deliverSubject]
    }

    /// The end of a transfer: creates the stream from the staged archive and answers `reply`.
    func finishRestore(_ session: StreamRestoreSession, reply: String) {
        if let cluster { return finishClusteredRestore(cluster, session, reply: reply) }
        do {
            // Checked whole before anything is created.
            var archive = LocalRestore(session: session, reply: reply)
            try session.readFrames { frame in
                switch frame {
                case let .meta(json): archive.lastSeq = try Self.archivedLastSeq(json)
                case let .messages(m): archive.messages += UInt64(m.count)
                case let .consumer(r): archive.records.append(r)
                case .end: break
                }
            }
            _ = try createStream(session.name, body: JSJSON.encode(Self.fillingConfig(session)), isUpdate: false)
            guard let s = streams[session.name] else { throw JSAPIError.streamNotFound }
            archive.reader = try session.openReader()
            fillSlice(archive, into: s)
        } catch {
            fail(reply, Self.createResponseType, Self.restoreFailure(error))
            session.finish()
        }
    }

    /// What a one-node restore carries from slice to slice.
    struct LocalRestore {
        let session: StreamRestoreSession
        let reply: String
        var lastSeq: UInt64 = 0
        var messages: UInt64 = 0
        var records: [[UInt8]] = []
        var reader: SnapshotArchive.FileReader?
    }

    static let restoreSliceBytes = 4 << 20

    /// One node: stores the next slice of the archive's messages at their sequences and times
    /// (a few MiB, then the queue's other work goes on: publishes to this stream are refused
    /// meanwhile, `restoringKey`); after the last, makes them durable, puts the full config in
    /// place, adds the consumers and answers. On any failure the stream goes again.
    private func fillSlice(_ archive: LocalRestore, into s: Stream) {
        let session = archive.session, name = session.name
        do {
            guard streams[name] === s else { throw JSAPIError(500, 10062, "the stream was deleted during its restore") }
            var bytes = 0
            while bytes < Self.restoreSliceBytes, let frame = try archive.reader?.next() {
                guard case let .messages(msgs) = frame else { continue }
                for m in msgs {
                    let outcome = s.ingest(subject: m.subject, headers: m.headers, payload: m.payload, now: m.time, mirrorSeq: m.seq)
                    if outcome.refused { throw JSAPIError(500, 10062, "message \(m.seq) refused: \(String(decoding: outcome.response, as: UTF8.self))") }
                    bytes += m.payload.count + (m.headers?.count ?? 0) + m.subject.utf8.count
                }
            }
            if bytes >= Self.restoreSliceBytes {
                if s.dirty { scheduleFlush() }
                return queue.async { self.fillSlice(archive, into: s) }
            }
            // A stream whose messages were all removed keeps its next sequence.
            if s.store.state.messages == 0 && s.store.state.lastSeq < archive.lastSeq { try s.store.skip(toNext: archive.lastSeq + 1) }
            try s.store.sync()
            s.dirty = false
            let full = try restoredConfig(name, session.config)
            if full != s.config { applyConfig(s, full) }
            try restoreConsumers(archive.records, into: s)
            var info = s.infoJSON()
            info["type"] = Self.createResponseType
            reply(archive.reply, info)
            server.logger.info("Restored stream '\(name)': \(archive.messages) messages from \(session.staged) bytes")
        } catch {
            if streams[name] === s { _ = try? deleteStream(name) }
            fail(archive.reply, Self.createResponseType, Self.restoreFailure(error))
        }
        session.finish()
    }

    /// A restored stream's config, checked as a create's (which may not ask for `sealed`: a
    /// restore seals the stream once its messages are in).
    func restoredConfig(_ name: String, _ json: [String: Any]) throws -> StreamConfig {
        var unsealed = json
        unsealed["sealed"] = false
        var cfg = try validatedStreamConfig(name, body: JSJSON.encode(unsealed), isUpdate: false)
        cfg.sealed = json["sealed"] as? Bool ?? false
        return cfg
    }

    /// The config a restored stream is created with while its messages go in: not sealed,
    /// without republishing or sources, marked with `restoringKey` (publishes are refused, its
    /// sources or mirror wait, and interest retention keeps what the consumers restored next
    /// will want).
    static func fillingConfig(_ session: StreamRestoreSession) -> [String: Any] {
        var filling = session.config
        filling["sealed"] = false
        filling.removeValue(forKey: "republish")
        filling.removeValue(forKey: "sources")
        var metadata = filling["metadata"] as? [String: String] ?? [:]
        metadata[JetStreamCluster.restoringKey] = session.deliverSubject
        filling["metadata"] = metadata
        return filling
    }

    /// The last sequence the archived stream had (its meta frame's state), checked in range.
    static func archivedLastSeq(_ meta: [UInt8]) throws -> UInt64 {
        let o = try JSONObject.parse(meta, typeName: "StreamSnapshotMeta")
        let last = try o.object("state", typeName: "StreamState")?.uint64("last_seq") ?? 0
        guard last <= SnapshotArchive.maxSeq else { throw SnapshotArchive.FormatError(description: "last sequence \(last) out of range") }
        return last
    }

    static func restoreFailure(_ error: Error) -> JSAPIError {
        if let e = error as? JSAPIError { return JSAPIError(500, 10062, "restore failed: \(e.description)") }
        return JSAPIError(500, 10062, "restore failed: \(error)")
    }

    /// Adds the archive's consumers (records as `ConsumerRecord` writes them) to `s`.
    func restoreConsumers(_ records: [[UInt8]], into s: Stream) throws {
        if s.config.maxConsumers > 0 && records.count > s.config.maxConsumers { throw JSAPIError.maxConsumers }
        let now = JSTime.nowNanos()
        for record in records {
            let c = try Consumer.restored(from: record, stream: s, now: now, trusted: false)
            s.consumers[c.name] = c
            if let dir = s.directory { try AtomicFile.write(c.record, to: dir + "/consumers/\(c.name).json") }
        }
    }
}
