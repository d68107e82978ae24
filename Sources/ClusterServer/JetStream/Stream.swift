import Foundation
import NIOCore

/// One stream: its configuration, its message store, publish-time checks (dedup, expected-*
/// headers, rollups, limits) and its consumers. Used only on the JetStream queue.
final class Stream {
    /// The service owns its streams and closes them before it goes. Not reference-counted:
    /// the service has weak references (a side table), so a checked `unowned` access took the
    /// slow retain path on every publish (measured: about 6% of a stream leader's CPU, together
    /// with `JetStreamCluster.js` and `StreamReplica.cluster`).
    unowned(unsafe) let service: JetStreamService
    private(set) var config: StreamConfig {
        didSet {
            cacheFlags()
            noteTimedWork()
        }
    }
    /// From `config`, for the loops over every stream each tick (reading a flag through
    /// `config` copies the whole struct, which showed with 10,000 streams).
    private(set) var agesMessages = false
    private(set) var allowsDirect = false
    private(set) var storageKind = StreamConfig.Storage.file
    /// What this copy reserves of the node's storage limit: `max_bytes` (0 when unlimited).
    private(set) var reservedBytes: Int64 = 0
    /// `num_replicas` (the account limit's publish check counts a message once per copy).
    private(set) var replicaCount = 1
    /// What the stream keeps for its `sources` (`StreamSources.swift`).
    var sourceState = StreamSourcesState()
    /// `subject_transform` and `republish` (`Stream+RePublish.swift`).
    private(set) var ingestTransform: SubjectTransform?
    private(set) var republishTransform: SubjectTransform?
    let store: MessageStore
    let created: Int64
    /// `<store_dir>/jetstream/<name>` for file streams, nil for memory streams.
    let directory: String?
    var consumers: [String: Consumer] = [:] {
        didSet { noteTimedWork() }
    }
    var subscriptions: [Subscription] = []
    /// Nats-Msg-Id -> (sequence, dedup time) within the duplicate window. Dedup times come
    /// from `DedupClock` (the leader stamps them into each entry), not from message timestamps,
    /// so a wall-clock jump does not expire ids early.
    private var dedup: [String: (seq: UInt64, time: Int64)] = [:]
    private var dedupOrder: [(id: String, time: Int64)] = []
    private var dedupHead = 0
    /// The dedup time of stored messages as an offset from their timestamps (persisted).
    private(set) var dedupSkews = DedupSkews()
    /// Sequences this stream's leader found removable for interest or work-queue retention and
    /// has not proposed to its group yet (`JetStreamService.proposeRetentionRemovals`).
    var retentionRemoved = Set<UInt64>()
    /// Subject delete markers due and not yet written or proposed, with the time of the removal
    /// that made each due (`Stream+DeleteMarkers.swift`).
    var markersDue: [(subject: String, at: Int64)] = []
    /// `dedupSkews.removedLast` changed and is not written yet.
    private var removedLastUnwritten = false
    /// The newest dedup time applied, and the monotonic time it was applied at: where a new
    /// leader's (or a single node's) `DedupClock` resumes. Nil before any.
    private(set) var lastDedupTime: Int64?
    private(set) var lastDedupMono: UInt64 = Stream.monoNanos()
    /// Single node only: this stream stamps its own dedup times.
    private var localDedupClock: DedupClock?
    private(set) var lastMsgID: String?
    /// Sequences stored with `Nats-TTL: never`, which max_age leaves (as nats-server does); may
    /// still name removed ones (`removeAgedKeepingNever` prunes them).
    var neverExpires = AscendingSequences()
    /// With `neverExpires`: messages below this sequence were already judged by max_age (only
    /// never-expiring ones are left there), so the next pass starts here, not at the first.
    var ageScanFrom: UInt64 = 0
    /// Pending per-message TTL expiries, ordered by deadline (ns).
    var ttlQueue: [(at: Int64, seq: UInt64)] = [] {
        didSet { noteTimedWork() }
    }
    /// True when appended but not yet synced (the service's group commit flushes it).
    var dirty = false {
        didSet { if dirty { service.dirtyStreams.insert(self) } }
    }
    /// Clustered: a config the meta group committed that this replica has not applied yet. It
    /// applies where the stream's leader put it in the stream's log (`StreamReplica+Config`);
    /// stream info shows it meanwhile, as the update's answer did.
    var assignedConfig: StreamConfig? {
        didSet { restoringCommitted = assignedConfig.map(Stream.isRestoring) ?? restoring }
    }
    /// The newest committed config: what the stream listens on and shows.
    var committedConfig: StreamConfig { assignedConfig ?? config }
    /// The applied config carries `JetStreamCluster.restoringKey`: a restore is putting the
    /// archive's messages in (cached: publishes and the source tick read it).
    private(set) var restoring = false
    /// The same of the committed config (a clustered leader lets publishes in by it).
    private(set) var restoringCommitted = false
    /// Consumers a client sees and `max_consumers` counts (not the server's own, `Consumer.isInternal`).
    var publicConsumerCount: Int { consumers.values.reduce(0) { $0 + ($1.isInternal ? 0 : 1) } }
    /// Clustered streams: the Raft index of the entry being applied (recorded with the message).
    var applyingRaftIndex: UInt64 = 0
    /// Clustered: the entry being applied is followed by its leader's no-interest removal.
    var applyingRemovalProposed = false

    init(service: JetStreamService, config: StreamConfig, store: MessageStore, created: Int64, directory: String?) {
        self.service = service
        self.config = config
        self.store = store
        self.created = created
        self.directory = directory
        cacheFlags()
    }

    private func cacheFlags() {
        agesMessages = config.maxAgeNanos > 0
        allowsDirect = config.allowDirect
        storageKind = config.storage
        reservedBytes = max(config.maxBytes, 0)
        replicaCount = config.numReplicas
        (ingestTransform, republishTransform) = Stream.transforms(of: config)
        if !config.copiedFrom.isEmpty { service.streamsWithSources.insert(config.name) }
        restoring = Stream.isRestoring(config)
        restoringCommitted = assignedConfig.map(Stream.isRestoring) ?? restoring
    }

    static func isRestoring(_ c: StreamConfig) -> Bool { c.metadata?[JetStreamCluster.restoringKey] != nil }

    /// Nothing timed to do this tick: no max age, no message TTLs pending, no consumers.
    var isIdleForTick: Bool { !agesMessages && ttlQueue.isEmpty && consumers.isEmpty }

    /// Puts a clustered stream with timed work on the service's list of streams a tick visits
    /// (called whenever `isIdleForTick` may have turned false, and when the stream is
    /// registered). A single node's tick visits every stream: no list to keep there.
    func noteTimedWork() {
        if !isIdleForTick && service.cluster != nil { service.timedStreams.insert(self) }
    }

    var name: String { config.name }

    /// `now`: the clock max_age is enforced by (clustered: the leader's, from the log).
    func updateConfig(_ new: StreamConfig, now: Int64 = JSTime.nowNanos()) {
        config = new
        try? store.configure(new)
        enforceLimits(now: now)
        consumersPurged()
    }

    // MARK: - publish

    /// What a publish produced: the PubAck (or error) body, and whether it must wait for sync.
    struct PublishOutcome {
        /// The PubAck body, byte-for-byte as nats-server writes it (field order, the space in
        /// `"duplicate": true`).
        var response: [UInt8]
        var stored: Bool
        var seq: UInt64 = 0
        /// Not stored because this node's storage failed (`StoreError.isLocal`), not by a
        /// decision every replica makes alike; set only then. A replicated stream must not
        /// apply past it (`StreamReplica.storeFailed`).
        var localFailure: StoreError?

        /// Refused with an error PubAck (not stored, not a duplicate, not a mirror's message
        /// it already held).
        var refused: Bool { response.starts(with: Stream.errorAckPrefix) }
    }

    /// `{"stream":<name>,"seq":`, built once: every stored message is answered with it.
    private lazy var pubAckPrefix: [UInt8] = Array("{\"stream\":\(JSJSON.string(name)),\"seq\":".utf8)

    func pubAck(_ seq: UInt64, duplicate: Bool = false) -> [UInt8] {
        var out = pubAckPrefix
        out.reserveCapacity(out.count + 40)
        out.append(contentsOf: String(seq).utf8)
        if duplicate { out.append(contentsOf: ",\"duplicate\": true".utf8) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The sequence a `Nats-Msg-Id` was stored at, while inside the duplicate window at dedup
    /// time `now`. The window is checked here, not only by `expireDedup`'s cleanup, so the
    /// answer depends on nothing but the recorded time and `now`.
    func dedupSequence(_ msgID: String, now: Int64) -> UInt64? {
        guard let e = dedup[msgID], e.time > saturatingAdd(now, -config.duplicateWindowNanos) else { return nil }
        return e.seq
    }

    /// Every id inside the duplicate window at dedup time `now`, with its sequence and dedup
    /// time (what a replica would answer duplicates with; compared across replicas by tests).
    func dedupWindow(now: Int64) -> [String: [Int64]] {
        var out: [String: [Int64]] = [:]
        for (id, e) in dedup where e.time > saturatingAdd(now, -config.duplicateWindowNanos) { out[id] = [Int64(e.seq), e.time] }
        return out
    }

    /// Records a stored message's `Nats-Msg-Id` for the duplicate window.
    func recordDedup(_ msgID: String, seq: UInt64, now: Int64) {
        dedup[msgID] = (seq, now)
        dedupOrder.append((msgID, now))
    }

    /// Monotonic nanoseconds (never shifted by a wall-clock jump, nor by the test clock).
    static func monoNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// A message entry with dedup time `dedupTime` is being applied.
    func observeDedupTime(_ dedupTime: Int64) {
        if dedupTime > lastDedupTime ?? .min { lastDedupTime = dedupTime }
        lastDedupMono = Stream.monoNanos()
    }

    /// A clock for a new leader of this stream: after the newest dedup time applied here or
    /// `logged` (one in the leader's log not applied yet), with the offset last used.
    func resumeDedupClock(logged: Int64? = nil) -> DedupClock {
        let known = [lastDedupTime, logged].compactMap { $0 }.max()
        return DedupClock(resumingAt: known, skew: dedupSkews.current, mono: lastDedupMono)
    }

    /// Single node: the dedup time of a publish received now (wall clock `wall`).
    func stampDedupTime(wall: Int64) -> Int64 {
        var clock = localDedupClock ?? resumeDedupClock()
        let d = clock.stamp(wall: wall, mono: Stream.monoNanos())
        localDedupClock = clock
        return d
    }

    /// The message about to be stored at `seq` with timestamp `time` has dedup time
    /// `dedupTime`: a changed offset is recorded, durably before the store append (so a store
    /// record never exists without its mark; a mark past the store is dropped at open).
    func noteDedupSkew(seq: UInt64, time: Int64, dedupTime: Int64) {
        let (skew, overflow) = dedupTime.subtractingReportingOverflow(time)
        guard dedupSkews.note(seq: seq, skew: overflow ? 0 : skew) else { return }
        _ = dedupSkews.dropBelow(store.state.firstSeq)
        persistDedupSkews()
    }

    private func persistDedupSkews() {
        guard let directory else { return }
        do {
            try AtomicFile.write(dedupSkews.encode(), to: directory + "/" + DedupSkews.fileName)
        } catch {
            service.server.logger.error("Stream '\(name)': could not write its dedup clock marks: \(error)")
        }
    }

    /// The id of the last stored message (nil when it had none), as `ingest` keeps it.
    func setLastMsgID(_ msgID: String?) { lastMsgID = msgID }

    /// Removes one message; false if it was not there. Every removal goes through this or
    /// `purge`, so a removed last message's id is written down (`DedupSkews.removedLast`).
    @discardableResult
    func remove(_ seq: UInt64) throws -> Bool {
        let removed = try store.remove(seq)
        if removed, seq == store.state.lastSeq { keepRemovedLastID() }
        return removed
    }

    /// Purges as `MessageStore.purge` does (see `remove`); returns how many went.
    @discardableResult
    func purge(subject: String?, upTo: UInt64?, keep: UInt64?) throws -> UInt64 {
        let n = try store.purge(subject: subject, upTo: upTo, keep: keep)
        if n > 0 {
            let st = store.state
            if st.messages == 0 || store.load(st.lastSeq) == nil { keepRemovedLastID() }
        }
        return n
    }

    /// The message at the last sequence just went: `Nats-Expected-Last-Msg-Id` still compares
    /// with its id (as on the running peers), and a restart finds it only in this record. It is
    /// written by the next housekeeping tick (or a store sync, or the stop), not here: a work
    /// queue whose consumer keeps up removes its newest message on almost every ack, on every
    /// replica, and most of these records are stale before the tick (a newer message came).
    private func keepRemovedLastID() {
        let seq = store.state.lastSeq
        guard let id = lastMsgID, dedupSkews.removedLast?.seq != seq else { return }
        dedupSkews.removedLast = .init(seq: seq, id: id)
        guard directory != nil else { return }
        removedLastUnwritten = true
        service.removedLastPending.insert(self)
    }

    /// Writes a removed last message's id kept since the last write (see `keepRemovedLastID`),
    /// unless a later message made it stale.
    func persistRemovedLastID() {
        guard removedLastUnwritten else { return }
        removedLastUnwritten = false
        guard let r = dedupSkews.removedLast, r.seq == store.state.lastSeq else { return }
        persistDedupSkews()
    }

    /// `store.sync()`, with a removed last message's id written first: once the store's
    /// removal is durable (and, clustered, the Raft log compacted past it), nothing replays it.
    func syncStore() throws {
        persistRemovedLastID()
        try store.sync()
    }

    /// An error PubAck body, as nats-server writes it: one builder for every path that refuses
    /// a publish (a failed check, a failed store sync, a stream group without quorum).
    static let errorAckPrefix = Array("{\"error\":".utf8)

    static func errorAck(_ e: JSAPIError, stream name: String) -> [UInt8] {
        Array("{\"error\":\(e.jsonText),\"stream\":\(JSJSON.string(name)),\"seq\":0}".utf8)
    }

    /// Stores one published message after nats-server's checks, in its order.
    /// `now` is the message's timestamp; `dedupNow` the dedup time (`DedupClock`), `now` when nil.
    /// `dedupDecided`: the stream's leader found its `Nats-Msg-Id` new when proposing it
    /// (`StreamEntry.messageDecidedTag`): the id is recorded, not looked up. `parsed`: `headers`
    /// already read (`PublishHeaders`), when the caller has them.
    /// `sourced`: copied in by one of the stream's sources (its `Nats-Stream-Source` header is
    /// the server's, refused from clients). `mirrorSeq`: copied in by the stream's mirror, to be
    /// stored at that sequence (above the last) as it is: none of a publisher's checks or
    /// requests (expected-*, dedup, rollup, TTL) apply to it, the stream's limits do.
    func ingest(subject: String, headers: [UInt8]?, payload: [UInt8], now: Int64, dedupNow: Int64? = nil,
                dedupDecided: Bool = false, parsed: PublishHeaders? = nil, sourced: Bool = false,
                mirrorSeq: UInt64? = nil) -> PublishOutcome {
        let dedupNow = dedupNow ?? now
        observeDedupTime(dedupNow)
        func fail(_ e: JSAPIError) -> PublishOutcome {
            PublishOutcome(response: Stream.errorAck(e, stream: name), stored: false)
        }
        if config.sealed { return fail(.sealed) }
        let size = payload.count + (headers?.count ?? 0)
        if config.maxMsgSize >= 0 && Int64(size) > config.maxMsgSize { return fail(.messageTooLarge) }
        if (headers?.count ?? 0) > 65_536 { return fail(JSAPIError(400, 10097, "message header exceeds maximum allowed")) }
        let h = parsed ?? PublishHeaders(headers)
        let msgID = h.msgID
        let st: StoreState
        var rollup: String?
        var ttlNanos: Int64?
        var headers = headers
        if let mirrorSeq {
            // The origin checked it when it stored it; only the mirror's limits apply here. Its
            // id is not recorded for dedup: its time is the origin's, and a mirror takes no
            // publishes (the dedup marks would change with every message).
            st = store.state
            if mirrorSeq <= st.lastSeq { return PublishOutcome(response: [], stored: false) }
            if config.allowMsgTTL, let ttl = h.ttl, let v = Stream.parseTTL(ttl) { ttlNanos = v }
        } else {
            if let level = h.requiredAPILevel {
                if Int(level) ?? Int.max > JetStreamService.apiLevel { return fail(.apiLevel(JetStreamService.apiLevel)) }
            }
            if h.streamSource != nil && !sourced { return fail(.streamSourceHeader) }
            if let expected = h.expectedStream, expected != name {
                return fail(.expectedStream)
            }
            if let msgID {
                expireDedup(now: dedupNow)
                if !dedupDecided, let prior = dedupSequence(msgID, now: dedupNow) {
                    return PublishOutcome(response: pubAck(prior, duplicate: true), stored: false)
                }
            }
            st = store.state
            if let expectedID = h.expectedLastMsgID, expectedID != (lastMsgID ?? "") {
                return fail(.wrongLastMsgID(lastMsgID ?? ""))
            }
            if let s = h.expectedLastSequence {
                guard let v = UInt64(s) else { return fail(.wrongLastSequence(st.lastSeq)) }
                if v != st.lastSeq { return fail(.wrongLastSequence(st.lastSeq)) }
            }
            let subjSeqHeader = h.expectedLastSubjectSequence
            let subjSeqSubject = h.expectedLastSubjectSequenceSubject
            if subjSeqSubject != nil && subjSeqHeader == nil { return fail(.lastSubjectSeqSubjectWithoutSeq) }
            if let s = subjSeqHeader {
                let checkSubject = subjSeqSubject ?? subject
                let last = store.lastSequence(forSubject: checkSubject) ?? 0
                guard let v = UInt64(s), v == last else { return fail(.wrongLastSequence(last)) }
            }
            if let r = h.rollup {
                guard config.allowRollup, !config.denyPurge else { return fail(.rollupFailed("rollup not permitted")) }
                guard r == "sub" || r == "all" else { return fail(.rollupFailed("rollup value invalid: \(r)")) }
                rollup = r
            }
            if let ttl = h.ttl {
                guard config.allowMsgTTL else { return fail(.msgTTLDisabled) }
                guard var v = Stream.parseTTL(ttl) else { return fail(.invalidTTL) }
                headers = raisingTTL(headers, ttlNanos: &v)
                ttlNanos = v
            }
        }
        if let refusal = discardNewRefusal(subject: subject, headers: headers, payload: payload, st, rollup: rollup != nil) {
            return fail(refusal)
        }
        // The account's own storage limit (per-account JetStream) and the server's, checked on
        // bytes stored. In a cluster the stream leader checks them before proposing
        // (`StreamReplica.propose`): each node holds other streams, so a check at apply could
        // differ by replica.
        if service.cluster == nil, let refusal = service.storageRefusal(for: self, adding: store.size(subject: subject, headers: headers, payload: payload)) {
            return fail(refusal)
        }
        let seq: UInt64
        var republishLast = lastSequencesForRepublish(CollectionOfOne(subject))
        if mirrorSeq == nil { noteDedupSkew(seq: st.lastSeq + 1, time: now, dedupTime: dedupNow) }
        do {
            if let mirrorSeq {
                try store.append(subject: subject, headers: headers, payload: payload, time: now, raftIndex: applyingRaftIndex, at: mirrorSeq)
                seq = mirrorSeq
            } else {
                seq = try store.append(subject: subject, headers: headers, payload: payload, time: now, raftIndex: applyingRaftIndex)
            }
        } catch let e as StoreError {
            var outcome = fail(e.apiError)
            if e.isLocal { outcome.localFailure = e }
            return outcome
        } catch {
            var outcome = fail(.storageResources("\(error)"))
            outcome.localFailure = .io("\(error)")
            return outcome
        }
        dirty = true
        if republishLast != nil { republish(subject: subject, headers: headers, payload: payload, seq: seq, time: now, last: &republishLast!) }
        if mirrorSeq == nil {
            if let source = h.streamSource { noteSourced(source) }
            if seq != st.lastSeq + 1 { noteDedupSkew(seq: seq, time: now, dedupTime: dedupNow) }
        }
        if let rollup { applyRollup(rollup, subject: subject, keeping: seq) }
        if let msgID, mirrorSeq == nil { recordDedup(msgID, seq: seq, now: dedupNow) }
        lastMsgID = msgID
        if store.state.messages != st.messages + 1 || rollup != nil {
            // Limits (or a rollup) removed older messages: consumers re-check what they hold.
            consumersPurged()
        }
        if let ttlNanos { if ttlNanos > 0 { scheduleExpiry(seq: seq, at: saturatingAdd(now, ttlNanos)) } else { neverExpires.insert(seq) } }
        enforceLimits(now: now)
        if config.retention == .interest && decidesRetention && !applyingRemovalProposed && !restoring && !hasInterest(in: subject) {
            // (A stream being restored gets its consumers after its messages.)
            // Interest-based streams keep nothing nobody is interested in: on one node gone
            // before the PubAck, as on nats-server. A clustered leader judged that already when
            // it proposed the message (`StreamReplica+NoInterest.swift`); this is a consumer
            // that went away since, or an entry of an earlier leader: a replicated removal.
            removeForRetention(seq)
        }
        return PublishOutcome(response: pubAck(seq), stored: true, seq: seq)
    }

    /// A discard-new limit the message would break (a rollup breaks none but the per-subject one).
    func discardNewRefusal(subject: String, headers: [UInt8]?, payload: [UInt8], _ st: StoreState, rollup: Bool = false) -> JSAPIError? {
        guard config.discard == .new else { return nil }
        if config.maxMsgs > 0 && st.messages >= UInt64(config.maxMsgs) && !rollup {
            return StoreError.maxMessages.apiError
        }
        let newBytes = store.size(subject: subject, headers: headers, payload: payload)
        if config.maxBytes > 0 && st.bytes + newBytes > UInt64(config.maxBytes) && !rollup {
            return StoreError.maxBytes.apiError
        }
        if config.discardNewPerSubject && config.maxMsgsPerSubject > 0 {
            let count = store.subjectCounts(matching: subject)[subject] ?? 0
            if count >= UInt64(config.maxMsgsPerSubject) { return StoreError.maxMessagesPerSubject.apiError }
        }
        return nil
    }

    private func applyRollup(_ kind: String, subject: String, keeping seq: UInt64) {
        if kind == "all" {
            _ = try? purge(subject: nil, upTo: seq, keep: nil)
        } else {
            _ = try? purge(subject: subject, upTo: seq, keep: nil)
        }
        consumersPurged()
    }

    /// Applies max_msgs / max_bytes / max_msgs_per_subject / max_age by discarding the oldest.
    func enforceLimits(now: Int64) {
        var removed = false
        if store.enforcesLimits {
            if config.maxAgeNanos > 0 { removed = expireAged(now: now) }
            if removed { dirty = true }
            return
        }
        if config.maxMsgsPerSubject > 0, let m = store.load(store.state.lastSeq) {
            while let c = store.subjectCounts(matching: m.subject)[m.subject], c > UInt64(config.maxMsgsPerSubject),
                  let first = store.firstSequence(forSubject: m.subject) {
                _ = try? remove(first)
                removed = true
            }
        }
        do {
            // discard:new refused these before storing; what is left to trim is discard:old.
            while config.maxMsgs > 0 && store.state.messages > UInt64(config.maxMsgs) {
                guard (try? remove(store.state.firstSeq)) == true else { break }
                removed = true
            }
            while config.maxBytes > 0 && store.state.bytes > UInt64(config.maxBytes) && store.state.messages > 0 {
                guard (try? remove(store.state.firstSeq)) == true else { break }
                removed = true
            }
        }
        if config.maxAgeNanos > 0 { removed = expireAged(now: now) || removed }
        if removed { dirty = true }
    }

    func expireDedup(now: Int64) {
        let cutoff = saturatingAdd(now, -config.duplicateWindowNanos)
        while dedupHead < dedupOrder.count && dedupOrder[dedupHead].time <= cutoff {
            let e = dedupOrder[dedupHead]
            if let cur = dedup[e.id], cur.time == e.time { dedup[e.id] = nil }
            dedupHead += 1
        }
        if dedupHead > 1024 && dedupHead * 2 > dedupOrder.count {
            dedupOrder.removeFirst(dedupHead)
            dedupHead = 0
        }
    }

    /// Rebuilds the dedup table (ids inside the window) and TTL deadlines after a restart or a
    /// stream copy. The dedup times come from the message timestamps and the offset marks
    /// (`skews`, else `<stream>/dedup-skews`); the window is taken back from the newest one.
    func rebuildDedup(skews: DedupSkews? = nil) {
        let st = store.state
        if let skews {
            dedupSkews = skews
        } else if let directory, let bytes = AtomicFile.read(directory + "/" + DedupSkews.fileName) {
            if let loaded = DedupSkews.decode(bytes) {
                dedupSkews = loaded
            } else {
                service.server.logger.error("Stream '\(name)': unreadable dedup clock marks; dedup times taken from message times")
            }
        }
        let loaded = dedupSkews
        dedupSkews.dropAbove(st.lastSeq)
        // Marks dropped here must not come back at the next open (the replay may store the
        // same sequences without changing the offset, which writes no mark).
        if skews != nil || dedupSkews != loaded { persistDedupSkews() }
        if st.lastSeq > 0 {
            lastDedupTime = saturatingAdd(st.lastTime, dedupSkews.skew(at: st.lastSeq))
            lastDedupMono = Stream.monoNanos()
        }
        if config.allowMsgTTL {
            var s = store.state.firstSeq
            while let m = store.next(from: s, filters: []) {
                if let t = NATSHeaderBlock.value("Nats-TTL", in: m.headers), let ttl = Stream.parseTTL(t) {
                    if ttl > 0 { scheduleExpiry(seq: m.seq, at: m.time + ttl) } else { neverExpires.insert(m.seq) }
                }
                s = m.seq + 1
            }
        }
        // Dedup times grow with sequences; timestamps may not (a clock that went back), but a
        // message inside the window has a timestamp above the cutoff less the largest offset.
        let cutoff = saturatingAdd(lastDedupTime ?? .min, -config.duplicateWindowNanos)
        var s = store.firstSequence(atOrAfter: saturatingAdd(cutoff, -dedupSkews.maxSkew))
        while let m = store.next(from: s, filters: []) {
            if let id = NATSHeaderBlock.value("Nats-Msg-Id", in: m.headers), !id.isEmpty {
                let t = saturatingAdd(m.time, dedupSkews.skew(at: m.seq))
                if t > cutoff {
                    dedup[id] = (m.seq, t)
                    dedupOrder.append((id, t))
                }
            }
            s = m.seq + 1
        }
        // `Nats-Expected-Last-Msg-Id` compares with the last stored message's id (none when it
        // had none), as while running; a removed one's id was written down when it went.
        if st.lastSeq > 0, let last = store.load(st.lastSeq) {
            lastMsgID = NATSHeaderBlock.value("Nats-Msg-Id", in: last.headers).flatMap { $0.isEmpty ? nil : $0 }
        } else {
            lastMsgID = dedupSkews.removedLastID(at: st.lastSeq)
        }
    }
}
