import Dispatch
import NIOCore

/// One consumer of a stream: its cursor, pending acks, redeliveries, and the pull requests or
/// push target it delivers to. Used only on the JetStream queue.
final class Consumer {
    unowned let stream: Stream
    let name: String
    var config: ConsumerConfig {
        didSet {
            configJSON = nil
            if config.rateLimitBps != oldValue.rateLimitBps { rateLimiter = makeRateLimiter() }
        }
    }
    /// `rate_limit_bps` of a push consumer (`PushDelivery.swift`).
    var rateLimiter: ByteRateLimiter?
    let created: Int64
    /// The config's JSON as the consumer's record carries it (encoded once per config).
    private var configJSON: [UInt8]?

    /// Next stream sequence to consider for a first delivery.
    var cursor: UInt64 = 1
    /// Last consumer sequence issued and the stream sequence it carried.
    var deliveredConsumerSeq: UInt64 = 0
    var deliveredStreamSeq: UInt64 = 0
    var ackFloorConsumerSeq: UInt64 = 0
    var ackFloorStreamSeq: UInt64 = 0
    /// Outstanding deliveries: stream seq -> (consumer seq, redelivery deadline ns on the
    /// `ackClockNanos` clock), with the ack floor kept incrementally.
    var pending = PendingDeliveries()
    /// Delivery counts of messages delivered more than never (stream seq -> count).
    var deliveries: [UInt64: Int] = [:]
    /// Stream sequences due for redelivery, ascending.
    var redeliverQueue: [UInt64] = []
    /// Not yet delivered by this state (at or past `cursor`), acknowledged anyway: another
    /// leader delivered them (`Consumer+AckAhead.swift`). Skipped when the cursor reaches them.
    var ackedAhead = Set<UInt64>()
    var waiting: [PullRequest] = []
    var lastActive: Int64
    var lastDeliveryTime: Int64 = 0
    /// A source's or mirror's consumer, created by the server (`InternalConsumers.swift`):
    /// not listed, not counted against `max_consumers`.
    var isInternal = false
    /// Unsynced ack state (persisted by the service's flush).
    var dirty = false
    var deleted = false
    private var cachedPending: UInt64?
    // Push flow control.
    var fcOutstanding: [String] = []
    var bytesSinceFC = 0
    var msgsSinceFC = 0
    var fcCounter: UInt64 = 0
    /// replay original: (stored time, wall time) of the last message sent.
    var lastReplay: (msgTime: Int64, wall: Int64)?
    /// When the last idle heartbeat went out; starts at the consumer's start (here: creation or
    /// load on a new leader), so the first one comes one idle period later, as nats-server sends it.
    var lastHeartbeat: Int64

    init(stream: Stream, name: String, config: ConsumerConfig, created: Int64) {
        self.stream = stream
        self.name = name
        self.config = config
        self.created = created
        self.lastActive = created
        // Not `created`: a consumer loaded by a new stream leader may be old.
        self.lastHeartbeat = JSTime.nowNanos()
        rateLimiter = makeRateLimiter()
    }

    /// The burst is the largest message the stream takes: its `max_msg_size`, else the
    /// account's `max_payload`, else the server's (as nats-server sizes it).
    private func makeRateLimiter() -> ByteRateLimiter? {
        guard config.rateLimitBps > 0 else { return nil }
        let account = stream.service.account.maxPayload
        let burst = stream.config.maxMsgSize > 0 ? Int(stream.config.maxMsgSize)
            : account >= 0 ? account : stream.service.server.options.maxPayload
        return ByteRateLimiter(bitsPerSecond: config.rateLimitBps, burst: burst)
    }

    var filters: [String] { config.filters }

    /// The record of config and ack state that makes the consumer durable (`ConsumerRecord`).
    var record: [UInt8] {
        if configJSON == nil { configJSON = JSJSON.encode(config.json) }
        return ConsumerRecord.encode(self, config: configJSON!)
    }

    /// Replicated with its stream (R>1 in a cluster), as nats-server replicates a consumer that
    /// does not ask for memory storage or one replica.
    var isReplicated: Bool {
        stream.service.cluster != nil && stream.config.numReplicas > 1 && !config.memStorage && config.numReplicas != 1
    }

    func matches(_ subject: String) -> Bool {
        let f = filters
        return f.isEmpty || f.contains { Subject.matches(pattern: $0, subject: subject) }
    }

    /// Sets the start position from the deliver policy (new consumers only).
    func setStartPosition() {
        let store = stream.store
        let st = store.state
        switch config.deliverPolicy {
        case .all, .lastPerSubject:
            cursor = st.firstSeq
        case .last:
            if filters.isEmpty {
                cursor = st.messages == 0 ? st.lastSeq + 1 : st.lastSeq
            } else {
                cursor = filters.compactMap { store.last(matching: $0)?.seq }.max() ?? st.lastSeq + 1
            }
        case .new:
            cursor = st.lastSeq + 1
        case .byStartSequence:
            cursor = max(config.optStartSeq, 1)
        case .byStartTime:
            cursor = store.firstSequence(atOrAfter: config.optStartTime ?? 0)
        }
        if cursor == 0 { cursor = 1 }
        // nats-server reports the ack floor / delivered just below the start.
        deliveredStreamSeq = cursor > 0 ? cursor - 1 : 0
        ackFloorStreamSeq = deliveredStreamSeq
        cachedPending = nil
    }

    // MARK: - selection

    /// The next message to send: a due redelivery first, else the next new matching message.
    func nextMessage() -> (StreamMessage, isRedelivery: Bool)? {
        while let s = redeliverQueue.first {
            redeliverQueue.removeFirst()
            guard pending[s] != nil else { continue }
            if let m = stream.store.load(s) { return (m, true) }
            removePending(s)
        }
        // Each pass that does not return removes one acked-ahead sequence: bounded.
        while true {
            let next = config.deliverPolicy == .lastPerSubject ? nextLastPerSubject() : stream.store.next(from: cursor, filters: filters)
            guard let m = next else { return nil }
            if !skipAckedAhead(m.seq) { return (m, false) }
        }
    }

    /// last_per_subject: only the newest message of each subject that existed at creation,
    /// then everything new.
    var lastPerSubjectBoundary: UInt64?
    private func nextLastPerSubject() -> StreamMessage? {
        let store = stream.store
        if lastPerSubjectBoundary == nil { lastPerSubjectBoundary = store.state.lastSeq }
        var s = cursor
        while let m = store.next(from: s, filters: filters) {
            if m.seq > lastPerSubjectBoundary! { return m }
            if store.lastSequence(forSubject: m.subject) == m.seq { return m }
            s = m.seq + 1
            cursor = s
            cachedPending = nil
        }
        return nil
    }

    /// Messages not yet delivered (the `num_pending` of info and of ack subjects).
    var numPending: UInt64 {
        if let c = cachedPending { return c }
        var n: UInt64
        if config.deliverPolicy == .lastPerSubject, let boundary = lastPerSubjectBoundary ?? Optional(stream.store.state.lastSeq), cursor <= boundary {
            var counted: UInt64 = 0
            var subjects = Set<String>()
            var s = cursor
            while let m = stream.store.next(from: s, filters: filters), m.seq <= boundary {
                if stream.store.lastSequence(forSubject: m.subject) == m.seq, subjects.insert(m.subject).inserted { counted += 1 }
                s = m.seq + 1
            }
            n = counted + stream.store.count(from: boundary + 1, filters: filters)
        } else {
            n = stream.store.count(from: cursor, filters: filters)
        }
        n -= min(n, UInt64(ackedAhead.count)) // never to be delivered, though past the cursor
        cachedPending = n
        return n
    }

    func invalidatePending() { cachedPending = nil }
    func newMessageStored(subject: String) {
        if let c = cachedPending, matches(subject) { cachedPending = c + 1 }
    }

    // MARK: - delivery bookkeeping

    /// Records a delivery of `m` and returns its ack reply subject.
    func recordDelivery(_ m: StreamMessage, isRedelivery: Bool, now: Int64) -> String {
        deliveredConsumerSeq += 1
        let cseq = deliveredConsumerSeq
        let count = (deliveries[m.seq] ?? 0) + 1
        deliveries[m.seq] = count
        if !isRedelivery {
            cursor = m.seq + 1
            if let c = cachedPending { cachedPending = c > 0 ? c - 1 : 0 }
            if config.deliverPolicy == .lastPerSubject { cachedPending = nil }
        }
        deliveredStreamSeq = max(deliveredStreamSeq, m.seq)
        lastDeliveryTime = now
        lastActive = now
        if config.ackPolicy == .none {
            ackFloorConsumerSeq = cseq
            ackFloorStreamSeq = deliveredStreamSeq
            deliveries[m.seq] = nil
            if stream.config.retention == .interest { stream.checkAckedEverywhere(m.seq) }
        } else {
            pending.deliver(m.seq, cseq: cseq, deadline: saturatingAdd(Self.ackClockNanos(), ackWait(forDelivery: count)))
        }
        dirty = true
        return "$JS.ACK.\(stream.name).\(name).\(count).\(m.seq).\(cseq).\(m.time).\(numPending)"
    }

    /// The clock of ack deadlines: monotonic, so a wall-clock jump neither expires every
    /// outstanding delivery at once (forward) nor holds redeliveries back by the jump (back).
    /// Deadlines live only in the leader's memory (a loaded consumer starts them anew).
    static func ackClockNanos() -> Int64 { Int64(clamping: DispatchTime.now().uptimeNanoseconds) }

    func ackWait(forDelivery count: Int) -> Int64 {
        let b = config.backoffNanos
        if !b.isEmpty { return b[min(count - 1, b.count - 1)] }
        return config.ackWaitNanos
    }

    var canDeliverMore: Bool {
        guard config.ackPolicy != .none, config.maxAckPending > 0 else { return true }
        return pending.count < config.maxAckPending
    }

    // MARK: - acks

    /// Acknowledges one stream sequence (or, for ack all, everything up to its consumer seq).
    /// False when the ack was not taken into account (see `noteAckedAhead`): it must not be
    /// confirmed.
    @discardableResult
    func ack(streamSeq: UInt64, consumerSeq: UInt64) -> Bool {
        if config.ackPolicy == .all {
            if streamSeq >= cursor && !ackAllAhead(streamSeq, consumerSeq: consumerSeq) { return false }
            let done = pending.entries.filter { $0.value.cseq <= consumerSeq || $0.key <= streamSeq }.map { $0.key }
            for s in done { removePending(s) }
        } else {
            guard pending[streamSeq] != nil else { return noteAckedAhead(streamSeq, consumerSeq: consumerSeq) }
            removePending(streamSeq)
        }
        updateAckFloor()
        dirty = true
        if stream.config.retention != .limits {
            if config.ackPolicy == .all {
                var s = stream.store.state.firstSeq
                while s <= streamSeq, let m = stream.store.next(from: s, filters: filters), m.seq <= streamSeq {
                    stream.checkAckedEverywhere(m.seq)
                    s = m.seq + 1
                }
            } else {
                stream.checkAckedEverywhere(streamSeq)
            }
        }
        return true
    }

    func nak(streamSeq: UInt64, delayNanos: Int64?, now: Int64) {
        guard pending[streamSeq] != nil else { return }
        if let d = delayNanos, d > 0 {
            pending.setDeadline(streamSeq, saturatingAdd(Self.ackClockNanos(), d))
        } else {
            pending.setDeadline(streamSeq, Int64.max)
            insertRedelivery(streamSeq)
        }
        dirty = true
    }

    func inProgress(streamSeq: UInt64, now: Int64) {
        guard pending[streamSeq] != nil else { return }
        pending.setDeadline(streamSeq, saturatingAdd(Self.ackClockNanos(), ackWait(forDelivery: deliveries[streamSeq] ?? 1)))
    }

    /// Like an ack, the message is never delivered again; false as for `ack`.
    @discardableResult
    func terminate(streamSeq: UInt64, consumerSeq: UInt64) -> Bool {
        guard pending[streamSeq] != nil else {
            return config.ackPolicy == .explicit ? noteAckedAhead(streamSeq, consumerSeq: consumerSeq) : true
        }
        removePending(streamSeq)
        updateAckFloor()
        dirty = true
        if stream.config.retention != .limits { stream.checkAckedEverywhere(streamSeq) }
        return true
    }

    private func removePending(_ s: UInt64) {
        pending.remove(s)
        deliveries[s] = nil
    }

    private func insertRedelivery(_ s: UInt64) {
        if redeliverQueue.contains(s) { return }
        let i = redeliverQueue.firstIndex { $0 > s } ?? redeliverQueue.count
        redeliverQueue.insert(s, at: i)
    }

    func updateAckFloor() {
        if let (minS, minC) = pending.floors() {
            ackFloorStreamSeq = minS - 1
            ackFloorConsumerSeq = minC > 0 ? minC - 1 : 0
        } else {
            ackFloorConsumerSeq = deliveredConsumerSeq
            ackFloorStreamSeq = deliveredStreamSeq
        }
    }

    /// True when `seq` needs nothing more from this consumer (interest retention).
    func hasAcked(_ seq: UInt64) -> Bool {
        if ackedAhead.contains(seq) { return true }
        if seq >= cursor && config.deliverPolicy != .lastPerSubject { return false }
        if seq >= cursor { return false }
        return pending[seq] == nil
    }

    /// Moves expired ack deadlines to the redelivery queue; drops messages past max_deliver.
    func checkAckDeadlines() -> Bool {
        guard config.ackPolicy != .none else { return false }
        let now = Self.ackClockNanos()
        var due = false
        for (s, p) in pending.entries where p.deadline <= now {
            let count = deliveries[s] ?? 1
            if config.maxDeliver > 0 && count >= config.maxDeliver {
                removePending(s)
                stream.service.advisory("CONSUMER.MAX_DELIVERIES.\(stream.name).\(name)",
                                        ["type": "io.nats.jetstream.advisory.v1.max_deliver", "stream": stream.name,
                                         "consumer": name, "stream_seq": s, "deliveries": count])
                updateAckFloor()
                dirty = true
                continue
            }
            pending.setDeadline(s, Int64.max)
            insertRedelivery(s)
            due = true
        }
        return due
    }

    /// After a purge: forget pending entries whose messages are gone, move the cursor up.
    func streamPurged() {
        let first = stream.store.state.firstSeq
        for s in Array(pending.keys) where stream.store.load(s) == nil { removePending(s) }
        redeliverQueue.removeAll { pending[$0] == nil }
        if cursor < first { cursor = first }
        // `first > 0` first: an empty store reports first 0, and `first - 1` would trap
        // (a replica crash-looped on it, applying a batch that limits emptied).
        if first > 0 && deliveredStreamSeq < first - 1 { deliveredStreamSeq = first - 1 }
        pruneAckedAhead()
        updateAckFloor()
        cachedPending = nil
        dirty = true
    }

    /// replay_policy original: how long to wait before sending `m` so gaps match the
    /// original publish times (nil = send now).
    func replayWait(_ m: StreamMessage, isRedelivery: Bool, now: Int64) -> Int64? {
        guard config.replayPolicy == .original, !isRedelivery else { return nil }
        defer { if lastReplay == nil { lastReplay = (m.time, now) } }
        guard let last = lastReplay else { return nil }
        let due = last.wall + (m.time - last.msgTime)
        return due > now ? due - now : nil
    }

    func noteReplayed(_ m: StreamMessage, now: Int64) {
        if config.replayPolicy == .original { lastReplay = (m.time, now) }
    }

    /// True while `pause_until` lies ahead (2.11 consumer pause).
    func isPaused(now: Int64) -> Bool { (config.pauseUntil ?? 0) > now }

    var numRedelivered: Int { pending.keys.filter { (deliveries[$0] ?? 0) > 1 }.count }

    /// `listed`: as an entry of `CONSUMER.LIST`, whose configs nats-server shows with only the
    /// required API level among its `_nats.` metadata.
    func infoJSON(now: Int64, listed: Bool = false) -> [String: Any] {
        var delivered: [String: Any] = ["consumer_seq": deliveredConsumerSeq, "stream_seq": deliveredStreamSeq]
        if lastDeliveryTime > 0 { delivered["last_active"] = JSTime.format(lastDeliveryTime) }
        var shown = config.json
        // The API level a client needs for this consumer as configured: pausing is level 1.
        shown["metadata"] = JetStreamService.serverMetadata(config.metadata, requiredLevel: config.pauseUntil == nil ? 0 : 1,
                                                            levelOnly: listed)
        var o: [String: Any] = [
            "stream_name": stream.name, "name": name, "created": JSTime.format(created), "config": shown,
            "delivered": delivered,
            "ack_floor": ["consumer_seq": ackFloorConsumerSeq, "stream_seq": ackFloorStreamSeq],
            "num_ack_pending": pending.count, "num_redelivered": numRedelivered, "num_waiting": waiting.count,
            "num_pending": numPending, "ts": JSTime.format(now),
        ]
        if config.isPush && stream.service.bus.hasInterest(config.deliverSubject!) { o["push_bound"] = true }
        // A consumer runs on its stream's leader, so its cluster block is the stream's
        // (clients such as natsbench find the consumer leader here, as with nats-server).
        if let cluster = stream.service.cluster, let a = cluster.assignments[stream.name] {
            o["cluster"] = cluster.clusterInfo(a)
        }
        if let until = config.pauseUntil, until > now {
            o["paused"] = true
            o["pause_remaining"] = until - now
        }
        return o
    }
}
