import Foundation
import NIOCore

/// One of a stream's `sources`, or its `mirror`, at work on the node that acts for the stream
/// (one node; in a cluster the stream's leader once it applied every earlier term's entry): an
/// ephemeral push consumer on the source stream (flow control, 1 s heartbeats, ack none)
/// delivers to an internal subject; each message is stored (a cluster: proposed) with its
/// subject mapped by the source's transforms and then the stream's own `subject_transform`. A
/// source adds a `Nats-Stream-Source` header naming the source and its sequence; a mirror
/// stores the message as it is, at its origin's sequence and time. A consumer sequence out of
/// order, 5 s without a message or heartbeat, or an unanswered create starts a new consumer
/// from the last sequence taken. Runs on the JetStream queue.
final class SourceSession {
    let config: StreamSourceConfig
    let isMirror: Bool
    private let transforms: [SubjectTransform]
    private unowned(unsafe) let stream: Stream
    private var subscriptions: [Subscription] = []
    private var deliverSubject = ""
    /// The consumer create was sent at this time (mono ns); nil before it is sent.
    private var requestedAt: Int64?
    private var consumer: String?
    private var nextConsumerSeq: UInt64 = 1
    /// The source stream's sequence last taken (proposed, in a cluster).
    private(set) var lastSeq: UInt64 = 0
    private(set) var lag: UInt64 = 0
    private(set) var lastContact: Int64?
    private(set) var error: JSAPIError?
    /// The origin is a work-queue stream: its consumer acks explicitly, each message once its
    /// copy here is durable, and delivers whatever the origin still holds.
    private var acks = false
    private var retryAt: Int64 = 0
    /// Deliveries of an earlier consumer (already queued when it was replaced) are ignored.
    private var generation = 0
    /// A copy this node proposed was refused at apply: the next start takes the position from
    /// what applied, not from what was proposed.
    private var resyncPending = false

    static let heartbeatNanos: Int64 = 1_000_000_000
    static let stallNanos: Int64 = 5_000_000_000
    static let retryNanos: Int64 = 2_000_000_000
    /// The most sequences a mirror skips at once while it holds messages: each is kept as a
    /// deleted sequence (an origin purged far ahead would otherwise fill memory).
    static let maxMirrorGap: UInt64 = 1_000_000

    init(config: StreamSourceConfig, stream: Stream, isMirror: Bool = false) {
        self.config = config
        self.isMirror = isMirror
        self.stream = stream
        transforms = config.transforms.compactMap { try? SubjectTransform(source: $0.source, destination: $0.destination) ?? nil }
    }

    /// `Stream.monoNanos` as a signed count (these times are subtracted).
    static func monoNanos() -> Int64 { Int64(clamping: Stream.monoNanos()) }

    func tick(now: Int64) {
        if subscriptions.isEmpty {
            if now >= retryAt { start() }
            return
        }
        if requestedAt == nil { return sendCreate(now: now) }
        let since = lastContact ?? requestedAt!
        if now - since > Self.stallNanos { restart(now: now) }
    }

    /// Subscribes the deliveries and the create's answer; the create goes out on the next tick,
    /// once the subscriptions' interest has crossed the routes.
    private func start() {
        generation += 1
        let gen = generation
        let js = stream.service
        acks = js.streamConfig(named: config.name)?.retention == .workqueue
        if resyncPending {
            resyncPending = false
            lastSeq = 0
        }
        let taken: UInt64
        if isMirror {
            // A mirror's own last sequence is its origin's (its newest, even if since removed).
            taken = stream.store.state.lastSeq
        } else {
            stream.scanSourceSeqs()
            taken = stream.sourceState.seqs[config.headerKey] ?? 0
        }
        lastSeq = max(lastSeq, taken, config.optStartSeq > 0 ? config.optStartSeq - 1 : 0)
        nextConsumerSeq = 1
        consumer = nil
        requestedAt = nil
        lastContact = nil
        deliverSubject = "$JS.S.\(UInt64.random(in: 1...UInt64.max))"
        let clustered = js.cluster != nil
        subscriptions = [
            js.bus.subscribeInternal(deliverSubject, propagates: clustered) { [weak self, weak js] msg in
                guard let js, let session = self else { return }
                let (subject, reply, headers, payload) = js.copy(msg)
                js.queue.async { session.receive(gen, subject: subject, reply: reply, headers: headers, payload: payload) }
            },
            js.bus.subscribeInternal(deliverSubject + ".created", propagates: clustered) { [weak self, weak js] msg in
                guard let js, let session = self else { return }
                let payload = js.copy(msg).3
                js.queue.async { session.created(gen, payload) }
            },
        ]
    }

    private func sendCreate(now: Int64) {
        requestedAt = now
        var cfg: [String: Any] = ["deliver_subject": deliverSubject, "ack_policy": acks ? "explicit" : "none", "flow_control": true,
                                  "idle_heartbeat": Self.heartbeatNanos, "inactive_threshold": 2 * Self.stallNanos]
        if acks {
            // A work queue holds only what nobody took: all of it (what was copied but not
            // acknowledged yet comes again and is acknowledged then).
            cfg["deliver_policy"] = "all"
        } else if lastSeq > 0 {
            cfg["deliver_policy"] = "by_start_sequence"
            cfg["opt_start_seq"] = lastSeq + 1
        } else if let t = config.optStartTime {
            cfg["deliver_policy"] = "by_start_time"
            cfg["opt_start_time"] = JSTime.format(t)
        } else {
            cfg["deliver_policy"] = "all"
        }
        let filters = config.filters
        if filters.count == 1 { cfg["filter_subject"] = filters[0] } else if filters.count > 1 { cfg["filter_subjects"] = filters }
        let body = JSJSON.encode(["stream_name": config.name, "config": cfg])
        // The server's own consumer on the origin (`InternalConsumers.swift`).
        stream.service.requestInternalConsumer(origin: config.name, reply: deliverSubject + ".created", body: body)
    }

    private func created(_ gen: Int, _ payload: [UInt8]) {
        guard gen == generation, consumer == nil else { return }
        let now = Self.monoNanos()
        let answer = try? JSONObject.parse(payload, typeName: "JSApiConsumerCreateResponse")
        if let e = answer?.fields["error"] as? [String: Any] {
            error = JSAPIError(e["code"] as? Int ?? 500, e["err_code"] as? Int ?? 0, e["description"] as? String ?? "error")
            stop()
            retryAt = now + Self.retryNanos
            return
        }
        guard let name = answer?.fields["name"] as? String else { return }
        consumer = name
        error = nil
        lastContact = now
    }

    private func receive(_ gen: Int, subject: String, reply: String?, headers: [UInt8]?, payload: [UInt8]) {
        guard gen == generation else { return }
        let now = Self.monoNanos()
        let bus = stream.service.bus
        if let headers, headers.starts(with: Array("NATS/1.0 100".utf8)) {
            // A flow-control request (its reply) or a heartbeat, maybe naming a stalled request.
            lastContact = now
            if let reply { _ = bus.publishInternal(subject: reply, payload: ByteBuffer()) }
            if let stalled = NATSHeaderBlock.value("Nats-Consumer-Stalled", in: headers) {
                _ = bus.publishInternal(subject: stalled, payload: ByteBuffer())
            }
            return
        }
        guard let reply, let d = SourcedDelivery(reply: reply) else { return }
        lastContact = now
        // A message missing in between: a new consumer from the last one taken.
        guard d.consumerSeq == nextConsumerSeq else { return restart(now: now) }
        nextConsumerSeq += 1
        // As nats-server 2.15.1 counts it (probed: one less than the reply's pending count).
        lag = d.pending > 0 ? d.pending - 1 : 0
        guard d.streamSeq > lastSeq else {
            // Copied before: acknowledged once its copy applied here (a proposal in flight acks itself).
            if acks && d.streamSeq <= appliedSeq() { stream.service.ackCopied(reply, into: stream) }
            return
        }
        var stored = subject
        for t in transforms {
            if let mapped = t.apply(subject) {
                stored = mapped
                break
            }
        }
        // Then the stream's own `subject_transform`, as nats-server 2.15.1 applies it (probed).
        guard Subject.isValidLiteral(stored), let mapped = stream.storedSubject(stored) else {
            // Not a subject to store under: left out (a work queue lets it go, else it came back).
            lastSeq = d.streamSeq
            if acks { stream.service.ackCopied(reply, into: stream) }
            return
        }
        stored = mapped
        let taken: Bool
        if isMirror {
            let st = stream.store.state, base = max(st.lastSeq, lastSeq)
            if st.messages > 0, d.streamSeq > base, d.streamSeq - base > Self.maxMirrorGap {
                error = JSAPIError(500, 10029, "mirror skips \(d.streamSeq - base - 1) sequences at once, more than \(Self.maxMirrorGap)")
                return restart(now: now, after: Self.retryNanos)
            }
            taken = stream.service.ingestMirrored(stream, seq: d.streamSeq, subject: stored, headers: headers, payload: payload,
                                                  time: d.timestamp, ack: acks ? reply : nil)
        } else {
            let header = SourceHeader.value(stream: config.name, seq: d.streamSeq, filter: config.headerFilter,
                                            destination: config.headerDestination, subject: subject)
            let block = NATSHeaderBlock.appending([(SourceHeader.name, header)], to: NATSHeaderBlock.removing([SourceHeader.name], from: headers))
            taken = stream.service.ingestSourced(stream, subject: stored, headers: block, payload: payload, ack: acks ? reply : nil)
        }
        if taken {
            lastSeq = d.streamSeq
        } else {
            // Refused (a discard-new limit, a sealed stream, no quorum): not again at once.
            restart(now: now, after: Self.retryNanos)
        }
    }

    /// A proposed copy was refused where it applied (a limit reached meanwhile): start again,
    /// after a pause, from what applied.
    func resync(now: Int64) {
        resyncPending = true
        restart(now: now, after: Self.retryNanos)
    }

    /// The origin's newest sequence whose copy applied here (proposals in flight not counted).
    private func appliedSeq() -> UInt64 {
        isMirror ? stream.store.state.lastSeq : stream.sourceState.seqs[config.headerKey] ?? 0
    }

    /// A new consumer from the last sequence taken, on the first tick `after` ns from `now`.
    private func restart(now: Int64, after: Int64 = 0) {
        stop()
        retryAt = now + after
    }

    /// Unsubscribes and deletes the consumer (its inactivity threshold removes it too, should
    /// the delete be lost).
    func stop() {
        generation += 1
        let bus = stream.service.bus
        for s in subscriptions { bus.unsubscribeInternal(s) }
        subscriptions = []
        if let consumer {
            // The API serves only requests with a reply subject; nobody listens on this one.
            _ = bus.publishInternal(subject: "$JS.API.CONSUMER.DELETE.\(config.name).\(consumer)", reply: deliverSubject + ".deleted",
                                    payload: ByteBuffer())
        }
        consumer = nil
        requestedAt = nil
    }

    /// This source in stream info (`sources`, `mirror`), as nats-server shows it.
    func info(now: Int64) -> [String: Any] {
        var o: [String: Any] = ["name": config.name, "lag": lag, "active": lastContact.map { now - $0 } ?? -1]
        if lastSeq > 0 && !isMirror { o["seq"] = lastSeq }
        if let f = config.filterSubject { o["filter_subject"] = f }
        if !config.transforms.isEmpty { o["subject_transforms"] = config.transforms.map { ["src": $0.source, "dest": $0.destination] } }
        if let error { o["error"] = error.json }
        return o
    }
}

/// What a stream keeps for its `sources`.
struct StreamSourcesState {
    /// Per source (`SourceHeader.key`), the highest sequence of its stream stored here, from
    /// the `Nats-Stream-Source` headers applied (every replica alike) or, after a restart,
    /// found by `scanSourceSeqs` on the node that runs the sources.
    var seqs: [String: UInt64] = [:]
    var scanned = false
    /// `seqs` changed since it was last written to `sources.json` (at `writtenAt`, mono ns),
    /// which keeps positions whose copies were all removed across a restart.
    var dirty = false
    var writtenAt: Int64 = 0
    /// The sources running here: only where this node acts for the stream.
    var sessions: [SourceSession] = []
    /// A copy this node proposed was refused at apply (`SourceSession.resync`).
    var refusedAtApply = false
}

extension Stream {
    /// Starts, adjusts and watches the sources or the mirror (the service's tick, while this
    /// node acts for the stream).
    func tickSources(now: Int64) {
        let mirrors = config.mirror != nil
        if sourceState.sessions.map(\.config) != config.copiedFrom || sourceState.sessions.contains(where: { $0.isMirror != mirrors }) {
            stopSources()
            sourceState.sessions = config.copiedFrom.map { SourceSession(config: $0, stream: self, isMirror: mirrors) }
        }
        if sourceState.refusedAtApply {
            sourceState.refusedAtApply = false
            for s in sourceState.sessions { s.resync(now: now) }
        }
        for s in sourceState.sessions { s.tick(now: now) }
    }

    func stopSources() {
        for s in sourceState.sessions { s.stop() }
        sourceState.sessions = []
    }

    /// A stored message with a `Nats-Stream-Source` header (every replica, in log order).
    func noteSourced(_ value: String) {
        guard let (key, seq) = SourceHeader.parse(value) else { return }
        if seq > sourceState.seqs[key] ?? 0 {
            sourceState.seqs[key] = seq
            sourceState.dirty = true
        }
    }

    static let sourcesFileName = "sources.json"

    /// Writes `sourceState.seqs` to `<stream>/sources.json` (every replica of a file stream, at most
    /// once a second: the service's tick), so a position survives a restart after its copies
    /// were purged or aged out (nats-server 2.15.1 keeps it too, probed).
    func persistSourceSeqs(now: Int64) {
        guard sourceState.dirty, let directory else { return }
        sourceState.dirty = false
        sourceState.writtenAt = now
        do {
            try AtomicFile.write(JSJSON.encode(sourceState.seqs.mapValues { $0 as Any }), to: directory + "/" + Self.sourcesFileName)
        } catch {
            service.server.logger.error("Stream '\(name)': could not write its sources' positions: \(error)")
        }
    }

    /// Once per node that runs the sources: the newest stored message of each source not seen
    /// applied since this process started, by a backward scan, and at least what
    /// `sources.json` remembers (the scan finds nothing of a source whose copies were removed;
    /// the file may be up to a second old, the scan is not).
    func scanSourceSeqs() {
        guard !sourceState.scanned else { return }
        sourceState.scanned = true
        var missing = Set(config.sources.map(\.headerKey)).subtracting(sourceState.seqs.keys)
        var found: [String: UInt64] = [:]
        if let directory, let bytes = FileManager.default.contents(atPath: directory + "/" + Self.sourcesFileName),
           let o = try? JSONObject.parse(Array(bytes), typeName: "sources") {
            for key in missing { if let v = try? o.uint64(key) { found[key] = v } }
        }
        let st = store.state
        var seq = st.lastSeq
        while !missing.isEmpty && seq >= st.firstSeq && seq > 0 {
            if let h = store.load(seq)?.headers, let v = NATSHeaderBlock.value(SourceHeader.name, in: h), let (key, s) = SourceHeader.parse(v),
               missing.remove(key) != nil {
                found[key] = max(found[key] ?? 0, s)
            }
            seq -= 1
        }
        for (key, s) in found where s > sourceState.seqs[key] ?? 0 { sourceState.seqs[key] = s }
    }

    /// Stream info's `sources` (or `mirror`: the one element), from the sessions here (none
    /// run: not started yet, or another node runs them).
    func sourcesInfo() -> [[String: Any]] {
        let now = SourceSession.monoNanos()
        let mirrors = committedConfig.mirror != nil
        return committedConfig.copiedFrom.map { cfg in
            if let s = sourceState.sessions.first(where: { $0.config == cfg && $0.isMirror == mirrors }) { return s.info(now: now) }
            var o: [String: Any] = ["name": cfg.name, "lag": 0, "active": -1]
            if let f = cfg.filterSubject { o["filter_subject"] = f }
            return o
        }
    }
}

extension JetStreamService {
    /// Each tick: runs the sources of the streams this node acts for, stops the others.
    func tickSources() {
        let now = SourceSession.monoNanos()
        for (name, s) in sourcing where streams[name] !== s || s.config.copiedFrom.isEmpty || !runsSources(s) {
            s.stopSources()
            sourcing[name] = nil
        }
        for name in streamsWithSources {
            guard let s = streams[name], !s.config.copiedFrom.isEmpty else {
                streamsWithSources.remove(name)
                continue
            }
            if now - s.sourceState.writtenAt >= 1_000_000_000 && s.config.mirror == nil { s.persistSourceSeqs(now: now) }
            guard runsSources(s) else { continue }
            sourcing[name] = s
            s.tickSources(now: now)
        }
    }

    /// One node: always. A cluster: the stream's leader, once it applied every earlier term's
    /// entry (so what its sources took before is known).
    private func runsSources(_ s: Stream) -> Bool {
        // A stream being restored: its copies would race the archive's messages (a mirror's at
        // the same sequences; `StreamRestore.swift`).
        if s.restoring { return false }
        guard let cluster else { return true }
        guard let r = cluster.replicas[s.name] else { return false }
        return r.acceptsPublishes && r.decidesDedup() && (s.config.mirror == nil ? r.writesSourced() : r.writesMirrored())
    }

    /// Stores (a cluster: proposes) a message a source delivered; false when it could not be
    /// taken (the source starts again from its last message taken). `ack`: the message's ack
    /// subject on a work-queue origin, acked once the copy is durable.
    func ingestSourced(_ s: Stream, subject: String, headers: [UInt8], payload: [UInt8], ack: String?) -> Bool {
        // Not into a stream of the same name created since (the tick stops this one).
        guard streams[s.name] === s else { return false }
        if let cluster {
            guard let r = cluster.replicas[s.name], r.stream === s else { return false }
            return r.proposeSourced(subject: subject, headers: headers, payload: payload, ack: ack)
        }
        return ingest(stream: s.name, subject: subject, reply: nil, headers: headers, payload: payload, sourced: true, sourceAck: ack)
    }

    /// Stores (a cluster: proposes) a message of a stream's mirror at its origin's sequence
    /// `seq` and time; false when it could not be taken. `ack` as for `ingestSourced`.
    func ingestMirrored(_ s: Stream, seq: UInt64, subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64,
                        ack: String?) -> Bool {
        guard streams[s.name] === s else { return false }
        if let cluster {
            guard let r = cluster.replicas[s.name], r.stream === s else { return false }
            return r.proposeMirrored(seq: seq, subject: subject, headers: headers, payload: payload, time: time, ack: ack)
        }
        return ingest(stream: s.name, subject: subject, reply: nil, headers: headers, payload: payload,
                      mirrored: (seq, time), sourceAck: ack)
    }

    /// Acks a work-queue message whose copy `s` holds already (or left out on purpose): in a
    /// cluster at once (applied is committed), on one node after the next sync.
    func ackCopied(_ ack: String, into s: Stream) {
        if cluster != nil {
            bus.publishInternal(subject: ack, payload: ByteBuffer())
        } else {
            pendingSourceAcks.append((ack, s.name))
            scheduleFlush()
        }
    }

    /// The config of a stream of this account (in a cluster: as assigned), nil when there is none.
    func streamConfig(named name: String) -> StreamConfig? {
        cluster.map { $0.assignments[name]?.config } ?? streams[name]?.config
    }
}
