import Foundation
import NIOCore

/// A restore in a cluster. The node the client restores through (it staged and checked the
/// archive, `StreamRestoreSession`) creates the stream through the meta group with the
/// `restoringKey` in its metadata, so its leader refuses publishes (a publish would take a
/// sequence the archive holds), then hands the archive's messages to the stream's leader over
/// the route (`RestoreFrame`). The leader proposes each one at its sequence and time (as a
/// mirror's copy, so a batch sent again after a lost answer or a leader change stores nothing
/// twice), then the consumers' records. Finally the full config replaces the filling one.
/// Any failure deletes the stream and answers 500/10062.
enum RestoreFrame: Equatable {
    case batch(request: UInt64, stream: String, [CatchupMessage])
    /// The archive's end: its consumers' records, and the sequence the stream must reach.
    case commit(request: UInt64, stream: String, lastSeq: UInt64, nextSeq: UInt64, records: [[UInt8]])
    /// The leader's answer: `error` empty when done (committed and applied here).
    case answer(request: UInt64, error: String)

    static let namespace = "jsrestore"

    func encode() -> [UInt8] {
        var w = CatchupWire.Writer()
        switch self {
        case let .batch(r, s, msgs):
            w.bytes.append(1); w.u64(r); w.data(Array(s.utf8)); w.messages(msgs)
        case let .commit(r, s, last, next, records):
            w.bytes.append(2); w.u64(r); w.data(Array(s.utf8)); w.u64(last); w.u64(next)
            w.u32(UInt32(records.count))
            for rec in records { w.data(rec) }
        case let .answer(r, e):
            w.bytes.append(3); w.u64(r); w.data(Array(e.utf8))
        }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> RestoreFrame {
        var r = CatchupWire.Reader(bytes: bytes)
        let tag = try r.byte(), request = try r.u64()
        let f: RestoreFrame
        switch tag {
        case 1:
            f = .batch(request: request, stream: String(decoding: try r.data() ?? [], as: UTF8.self), try r.messages())
        case 2:
            let s = String(decoding: try r.data() ?? [], as: UTF8.self)
            let last = try r.u64(), next = try r.u64()
            let n = try r.count(minSize: 4)
            var records: [[UInt8]] = []
            for _ in 0..<n { records.append(try r.data() ?? []) }
            f = .commit(request: request, stream: s, lastSeq: last, nextSeq: next, records: records)
        case 3:
            f = .answer(request: request, error: String(decoding: try r.data() ?? [], as: UTF8.self))
        default:
            throw CatchupWireError(description: "unknown restore frame \(tag)")
        }
        guard r.at == bytes.count else { throw CatchupWireError(description: "trailing bytes in a restore frame") }
        return f
    }
}

/// The restoring node's side: one batch or commit outstanding at a time.
final class ClusteredRestoreFeed {
    static let batchBytes = 1 << 20
    static let answerTimeoutNanos: Int64 = 5_000_000_000
    static let giveUpNanos: Int64 = 60_000_000_000

    unowned let cluster: JetStreamCluster
    let session: StreamRestoreSession
    let reply: String
    private var reader: SnapshotArchive.FileReader?
    private var carry: [CatchupMessage] = []
    private var leaderServer: String?
    private var outstanding: (request: UInt64, frame: RestoreFrame, sentAt: Int64)?
    private var lastProgress = SourceSession.monoNanos()
    private var committing = false
    private var done = false
    let records: [[UInt8]]
    let lastSeq: UInt64
    let nextSeq: UInt64

    init(cluster: JetStreamCluster, session: StreamRestoreSession, reply: String, records: [[UInt8]], lastSeq: UInt64, nextSeq: UInt64) {
        self.cluster = cluster
        self.session = session
        self.reply = reply
        self.records = records
        self.lastSeq = lastSeq
        self.nextSeq = nextSeq
    }

    private var js: JetStreamService { cluster.js }

    func start(leader: String?) {
        leaderServer = leader
        do { reader = try session.openReader() } catch { return fail(error) }
        sendNext()
        tick()
    }

    /// The next batch of messages, or the commit once they are all sent.
    private func sendNext() {
        guard !done, let reader else { return }
        var batch: [CatchupMessage] = []
        var bytes = 0
        do {
            while bytes < Self.batchBytes {
                if carry.isEmpty {
                    guard let frame = try reader.next() else { break }
                    if case let .messages(m) = frame { carry = m } else { continue }
                }
                let m = carry.removeFirst()
                batch.append(m)
                bytes += m.encodedSize
            }
        } catch { return fail(error) }
        let request = cluster.catchup.newRequestID()
        if batch.isEmpty {
            committing = true
            send(.commit(request: request, stream: session.name, lastSeq: lastSeq, nextSeq: nextSeq, records: records), request)
        } else {
            send(.batch(request: request, stream: session.name, batch), request)
        }
    }

    private func send(_ frame: RestoreFrame, _ request: UInt64) {
        outstanding = (request, frame, SourceSession.monoNanos())
        if let leaderServer, leaderServer == cluster.myName {
            return cluster.receiveRestore(frame, from: nil)
        }
        guard let name = leaderServer, let id = js.server.routeManager?.peerServerIDs()[name] else { return findLeader() }
        let bytes = frame.encode()
        var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
        buf.writeBytes(bytes)
        _ = js.server.routeManager?.sendExtension(JetStreamCluster.routeNamespace(RestoreFrame.namespace, account: js.account),
                                                  payload: buf, to: id)
    }

    func answered(_ request: UInt64, error: String) {
        guard !done, let o = outstanding, o.request == request else { return }
        outstanding = nil
        if !error.isEmpty {
            // Not (or no longer) the leader, or busy: ask who leads and send the same again.
            js.server.logger.info("Restore of stream '\(session.name)': \(error); sending again")
            return retry(o.frame)
        }
        lastProgress = SourceSession.monoNanos()
        if committing { return finish() }
        sendNext()
    }

    private func retry(_ frame: RestoreFrame) {
        js.queue.asyncAfter(deadline: .now() + .milliseconds(200)) { [weak self] in
            guard let self, !self.done else { return }
            self.findLeader(then: frame)
        }
    }

    /// Asks the stream's info (its leader answers) for the leader's name, then sends `frame`.
    private func findLeader(then frame: RestoreFrame? = nil) {
        let frame = frame ?? outstanding?.frame
        outstanding = nil
        js.internalRequest("$JS.API.STREAM.INFO.\(session.name)", body: [], timeoutNanos: Self.answerTimeoutNanos) { [weak self] answer in
            guard let self, !self.done else { return }
            let o = answer.flatMap { try? JSONObject.parse($0, typeName: "StreamInfo") }
            self.leaderServer = (o?.fields["cluster"] as? [String: Any])?["leader"] as? String
            guard let frame else { return }
            let request = self.cluster.catchup.newRequestID()
            switch frame {
            case let .batch(_, s, m): self.send(.batch(request: request, stream: s, m), request)
            case let .commit(_, s, l, n, r): self.send(.commit(request: request, stream: s, lastSeq: l, nextSeq: n, records: r), request)
            case .answer: break
            }
        }
    }

    private func tick() {
        guard !done else { return }
        let now = SourceSession.monoNanos()
        if now - lastProgress > Self.giveUpNanos { return fail(JSAPIError(500, 10062, "the stream's leader took no restored messages for 60 s")) }
        if let o = outstanding, now - o.sentAt > Self.answerTimeoutNanos {
            outstanding = nil
            retry(o.frame)
        }
        js.queue.asyncAfter(deadline: .now() + .milliseconds(200)) { [weak self] in self?.tick() }
    }

    /// Puts the full config in place (its metadata without `restoringKey`) and answers.
    private func finish() {
        var cfg = session.config
        cfg["sealed"] = false
        js.internalRequest("$JS.API.STREAM.UPDATE.\(session.name)", body: JSJSON.encode(cfg), timeoutNanos: 30_000_000_000) { [weak self] answer in
            guard let self, !self.done else { return }
            guard var info = answer.flatMap({ try? JSONObject.parse($0, typeName: "StreamInfo") })?.fields, info["error"] == nil else {
                return self.fail(JSAPIError(500, 10062, "the restored stream's config could not be put in place"))
            }
            guard self.session.config["sealed"] as? Bool == true else { return self.answer(&info) }
            cfg["sealed"] = true
            self.js.internalRequest("$JS.API.STREAM.UPDATE.\(self.session.name)", body: JSJSON.encode(cfg), timeoutNanos: 30_000_000_000) { answer in
                guard var sealed = answer.flatMap({ try? JSONObject.parse($0, typeName: "StreamInfo") })?.fields, sealed["error"] == nil else {
                    return self.fail(JSAPIError(500, 10062, "the restored stream could not be sealed"))
                }
                self.answer(&sealed)
            }
        }
    }

    private func answer(_ info: inout [String: Any]) {
        done = true
        js.restoreFeeds[session.name] = nil
        info["type"] = JetStreamService.createResponseType
        info.removeValue(forKey: "did_create")
        js.reply(reply, info)
        js.server.logger.info("Restored stream '\(session.name)' from \(session.staged) bytes")
        session.finish()
    }

    func fail(_ error: Error) {
        guard !done else { return }
        done = true
        js.restoreFeeds[session.name] = nil
        js.fail(reply, JetStreamService.createResponseType, JetStreamService.restoreFailure(error))
        js.internalRequest("$JS.API.STREAM.DELETE.\(session.name)", body: [], timeoutNanos: 10_000_000_000) { _ in }
        session.finish()
    }
}

extension JetStreamCluster {
    /// Publishes are refused while a stream's config metadata holds this key.
    static let restoringKey = "_clusterd.restoring"

    func registerRestoreFrames() {
        js.server.routeManager?.registerExtension(Self.routeNamespace(RestoreFrame.namespace, account: js.account)) { [weak self] from, payload in
            guard let self else { return }
            guard let frame = try? RestoreFrame.decode(Array(payload.readableBytesView)) else {
                self.js.server.logger.warning("Dropping a malformed restore frame from \(from)")
                return
            }
            self.js.queue.async { self.receiveRestore(frame, from: from) }
        }
    }

    /// Either side: a batch or commit on the leader, an answer on the restoring node (`from`
    /// nil: this node is both).
    func receiveRestore(_ frame: RestoreFrame, from: String?) {
        func answer(_ request: UInt64, _ error: String) {
            if let from {
                let bytes = RestoreFrame.answer(request: request, error: error).encode()
                var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
                buf.writeBytes(bytes)
                _ = js.server.routeManager?.sendExtension(Self.routeNamespace(RestoreFrame.namespace, account: js.account), payload: buf, to: from)
            } else {
                js.queue.async { self.js.restoreFeeds.values.forEach { $0.answered(request, error: error) } }
            }
        }
        switch frame {
        case let .answer(request, error):
            js.restoreFeeds.values.forEach { $0.answered(request, error: error) }
        case let .batch(request, stream, msgs):
            guard let r = replicas[stream], r.isLeader, r.stream.restoring else {
                return answer(request, "not the leader of a stream being restored")
            }
            let applied = r.stream.store.state.lastSeq
            for m in msgs where m.seq > applied {
                guard r.proposeMirrored(seq: m.seq, subject: m.subject, headers: m.headers, payload: m.payload, time: m.time, ack: nil) else {
                    return answer(request, "the leader could not propose message \(m.seq)")
                }
            }
            // Answered once applied: at most one batch is in flight from each restoring node.
            awaitApplied(r, request: request, answer: answer) { $0.stream.store.state.lastSeq >= (msgs.last?.seq ?? 0) }
        case let .commit(request, stream, lastSeq, nextSeq, records):
            guard let r = replicas[stream], r.isLeader, r.stream.restoring else {
                return answer(request, "not the leader of a stream being restored")
            }
            let st = r.stream.store.state
            let reach = max(lastSeq, nextSeq > 0 ? nextSeq - 1 : 0)
            if st.messages == 0 && st.lastSeq < reach {
                // An archive of a stream whose messages were all removed: its next sequence.
                try? r.proposeOp(["op": "purge", "seq": reach + 1], answer: nil)
            }
            var names: [String] = []
            for record in records {
                guard let o = try? JSONObject.parse(record, typeName: "ConsumerMeta"), let name = try? Consumer.recordName(o) else {
                    return answer(request, "a consumer record without a valid name")
                }
                names.append(name)
                if r.stream.consumers[name] == nil {
                    // A client's archive does not make a consumer the server's own.
                    var fields = o.fields
                    fields.removeValue(forKey: "internal")
                    try? r.proposeOp(["op": "consumer", "name": name, "record": fields, "restored": true], answer: nil)
                }
            }
            awaitApplied(r, request: request, answer: answer) { r in
                r.stream.store.state.lastSeq >= reach && names.allSatisfy { r.stream.consumers[$0] != nil }
            }
        }
    }

    /// Answers once `done` holds on this leader (checked every 20 ms; an error if it stops leading).
    private func awaitApplied(_ r: StreamReplica, request: UInt64, answer: @escaping (UInt64, String) -> Void,
                              deadline: Int64 = SourceSession.monoNanos() + 4_000_000_000, _ done: @escaping (StreamReplica) -> Bool) {
        if done(r) { return answer(request, "") }
        guard r.isLeader, !r.closed else { return answer(request, "leadership moved") }
        guard SourceSession.monoNanos() < deadline else { return answer(request, "not applied in time") }
        js.queue.asyncAfter(deadline: .now() + .milliseconds(20)) { [weak self] in
            self?.awaitApplied(r, request: request, answer: answer, deadline: deadline, done)
        }
    }
}

extension JetStreamService {
    /// The restore of a stream in a cluster, once its archive is staged here and checked.
    func finishClusteredRestore(_ cluster: JetStreamCluster, _ session: StreamRestoreSession, reply: String) {
        var records: [[UInt8]] = []
        var lastSeq: UInt64 = 0, nextSeq: UInt64 = 0
        do {
            try session.readFrames { frame in
                switch frame {
                case let .meta(json):
                    nextSeq = try Self.archivedLastSeq(json) + 1
                case let .messages(m): lastSeq = m.last?.seq ?? lastSeq
                case let .consumer(r):
                    _ = try Consumer.recordName(JSONObject.parse(r, typeName: "ConsumerMeta"))
                    records.append(r)
                case .end: break
                }
            }
            let max = try restoredConfig(session.name, session.config).maxConsumers
            if max > 0 && records.count > max { throw JSAPIError.maxConsumers }
        } catch {
            fail(reply, Self.createResponseType, Self.restoreFailure(error))
            return session.finish()
        }
        internalRequest("$JS.API.STREAM.CREATE.\(session.name)", body: JSJSON.encode(Self.fillingConfig(session)), timeoutNanos: 30_000_000_000) { [weak self] answer in
            guard let self else { return }
            let o = answer.flatMap { try? JSONObject.parse($0, typeName: "StreamInfo") }
            if let e = o?.fields["error"] as? [String: Any] {
                self.fail(reply, Self.createResponseType, Self.restoreFailure(JSAPIError(e["code"] as? Int ?? 500, e["err_code"] as? Int ?? 10062,
                                                                                          e["description"] as? String ?? "create failed")))
                return session.finish()
            }
            guard o != nil else {
                self.fail(reply, Self.createResponseType, Self.restoreFailure(JSAPIError(500, 10062, "the stream was not created in time")))
                return session.finish()
            }
            let feed = ClusteredRestoreFeed(cluster: cluster, session: session, reply: reply, records: records, lastSeq: lastSeq, nextSeq: nextSeq)
            self.restoreFeeds[session.name] = feed
            feed.start(leader: (o?.fields["cluster"] as? [String: Any])?["leader"] as? String)
        }
    }

    /// Sends a request from inside the server and hands its answer (nil: none in time) to
    /// `done` on the JetStream queue.
    func internalRequest(_ subject: String, body: [UInt8], timeoutNanos: Int64, _ done: @escaping ([UInt8]?) -> Void) {
        let inbox = "_INBOX.clusterd.\(UInt64.random(in: 1...UInt64.max))"
        var finished = false
        var sub: Subscription?
        let complete: ([UInt8]?) -> Void = { [weak self] answer in
            guard let self, !finished else { return }
            finished = true
            if let s = sub { self.bus.unsubscribeInternal(s) }
            done(answer)
        }
        sub = bus.subscribeInternal(inbox, propagates: cluster != nil) { [weak self] msg in
            guard let self else { return }
            let payload = self.copy(msg).3
            self.queue.async { complete(payload) }
        }
        bus.publishInternal(subject: subject, reply: inbox, payload: ByteBuffer(bytes: body))
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(timeoutNanos))) { complete(nil) }
    }
}
