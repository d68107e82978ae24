import Foundation
import Raft

/// This node's replica of one stream: the local `Stream` (store, consumers) fed by the
/// stream's Raft group. Every replica applies the same committed entries in the same order; only
/// the leader listens on the stream's subjects, runs consumers and answers publishers.
final class StreamReplica: RaftGroupDelegate {
    /// The cluster owns its replicas and closes them before it goes (unchecked: see `Stream.service`).
    unowned(unsafe) let cluster: JetStreamCluster
    let name: String
    let group: GroupID
    let stream: Stream
    private(set) var isLeader = false
    /// `cluster.ticks` when this node last became leader (rebalancing waits a while).
    private(set) var leaderSinceTick = 0
    /// The wall-clock time (ns since 1970) this node last became leader: info's `leader_since`.
    private(set) var leaderSinceNanos: Int64 = 0
    /// `cluster.ticks` when this replica opened, and when it last reported a lost quorum
    /// (`StreamReplica+QuorumLoss.swift`).
    let openedAtTick: Int
    var quorumLossReportedAtTick: Int?
    /// Leader only: API callers waiting for their entry (index, and the term it was proposed
    /// in) to apply. An entry of another term at that index is not theirs: the proposal was
    /// replaced by a newer leader's entry, which a deposed leader may apply before it hears
    /// that it no longer leads.
    private var pendingOps: [LogIndex: (term: Term, answer: PendingReply)] = [:]
    /// This replica as a direct-get responder (`StreamReplica+Reads.swift`).
    var direct = DirectAccess()
    /// Set once the replica closed (shutdown, stream deleted, left its group).
    private(set) var closed = false
    /// Publishes waiting out a leadership change (`StreamReplica+Handover.swift`).
    var held: [HeldPublish] = [] {
        didSet { if !held.isEmpty { cluster.handoverWork.insert(self) } }
    }
    /// Publishes proposed here that did not apply yet, in log order. This node answers them
    /// when they apply, leader or not (`StreamReplica+Handover.swift`), without decoding their
    /// entries again (`ProposalQueue`).
    var proposals = ProposalQueue()
    /// After losing the leadership: the cluster tick until which the ingest subscriptions
    /// stay and forward what reaches them (`StreamReplica+Handover.swift`).
    var ingestLingerUntil: Int? {
        didSet { if ingestLingerUntil != nil { cluster.handoverWork.insert(self) } }
    }

    /// Who hears back when a replicated operation applies.
    enum PendingReply {
        /// An API response: computed at apply, or `precomputed` (consumer info) unless apply failed.
        case api(reply: String, type: String, precomputed: [String: Any]?)
        /// An empty message (a double ack's confirmation).
        case empty(reply: String)
    }
    var js: JetStreamService { cluster.js }
    private var cachedNode: (generation: Int, node: RaftNode?) = (-1, nil)
    /// This replica's Raft node, looked up again only when the host's groups changed (the hot
    /// paths ask several times per message).
    var raftNode: RaftNode? {
        let generation = cluster.host.membersGeneration
        if cachedNode.generation != generation { cachedNode = (generation, cluster.host.node(group)) }
        return cachedNode.node
    }
    /// The `DeliveryStamp` key of this stream's consumer deliveries (built once: it goes with
    /// every delivery). Group ids are never handed out twice, so a re-created stream differs.
    private(set) lazy var deliveryKey = "\(js.account.name)/\(name)/\(group)"
    /// The stream-create request, answered by whichever replica leads first.
    var createReply: (reply: String, type: String)?
    /// No `expire` op is proposed before this monotonic time (one in flight, or the last one
    /// removed nothing): see `StreamReplica+Expiry.swift`.
    var expiryHold: UInt64?
    /// No `config` op is proposed before this monotonic time (one in flight): see
    /// `StreamReplica+Config.swift`, with the meta entries of the newest config committed and
    /// of the newest one applied from the log.
    var configHold: UInt64?
    var configIndexes: (assigned: UInt64, applied: UInt64) = (0, 0)
    /// The stream-log index of the last `config` op applied (the same on every replica).
    var configAppliedAt: LogIndex?
    /// The last message stored here: its entry's index and its stream sequence.
    var lastStored: (index: LogIndex, seq: UInt64)?
    /// A copy of the stream from its leader in progress (see `CatchupSession`).
    var catchup: CatchupSession? {
        didSet { if catchup != nil { cluster.needsTick(self) } }
    }
    /// A compaction waits for its store sync on a sync queue (`+Compaction`); a later one waits
    /// for it.
    var compaction: (syncing: Bool, next: LogIndex?) = (false, nil)
    /// The store failed to take a committed entry for a reason of this node's own (a full
    /// disk): nothing more is applied, and the group stops at the end of the round
    /// (`StreamReplica+StoreFailure.swift`).
    var storeFailure: StoreFailed?
    /// The store found corrupt blocks on open: re-copy the stream from the leader.
    var needsRepair = false {
        didSet { if needsRepair { cluster.needsTick(self) } }
    }
    /// The leader's log disagrees with an entry this replica had committed (`raftDiverged`).
    var diverged = false
    /// The store was found corrupt (on open, by the scrub or by a read): repaired by one copy.
    var corruptionFound = false
    /// Sealed segments of the store with damaged blocks, to re-fetch by range (`+RangeRepair`).
    var damagedSegments: [UInt64] = []
    /// The range re-fetch in progress (`RangeRepairSession`).
    var rangeRepair: RangeRepairSession? {
        didSet { if rangeRepair != nil { cluster.needsTick(self) } }
    }
    /// A scrub of the sealed segments is running (`+Scrub`).
    var scrubbing = false
    /// A corrupt leader already tried to hand leadership off once (`+Scrub`).
    var handOffTried = false
    /// Leader only: stamps the dedup time of each proposed publish (`DedupClock`); set when
    /// this node becomes leader, after every dedup time in its log.
    var dedupClock: DedupClock?
    /// Which entry forms every other member reads, as of a cluster tick (`+DedupClock`).
    var entryFormsChecked: (tick: Int, forms: EntryForms)?
    /// Leader only: `Nats-Msg-Id`s of its publishes proposed and not applied yet, with the
    /// index of the last proposal of each (`StreamReplica+LeaderDedup`).
    var pendingMsgIDs: [String: LogIndex] = [:]
    /// The term in which this leader has applied every earlier term's entry (so its duplicate
    /// window holds every id the log committed before its own proposals).
    var dedupDecidingTerm: Term?
    /// Committed publishes of the current round waiting for one shared store write.
    var applyBatch: [(item: Stream.BatchItem, reply: String?)] = []
    /// At most this many publishes share a store block.
    static let maxApplyBatch = 256
    /// Consumer records committed in the current round, the last one per consumer with its
    /// entry's index, written once before the round's publishes are stored (`flushRecords`):
    /// each write is a file write, fsync, rename and directory fsync, and a consumer whose client
    /// acks a fetch's messages together commits one record per double ack, each superseding the
    /// one before.
    var recordBatch: [String: (index: LogIndex, record: [UInt8])] = [:]
    /// The answers of those records' proposals, sent once the records are written.
    var recordAnswers: [(index: LogIndex, answer: PendingReply)] = []

    /// Only `install` (`+Files`) makes one, from opened files.
    init(cluster: JetStreamCluster, name: String, group: GroupID, stream: Stream) {
        self.cluster = cluster
        self.name = name
        self.group = group
        self.stream = stream
        openedAtTick = cluster.ticks
    }

    // MARK: - leader inputs

    /// A publish on the stream's subjects: replicate, answer on apply. One that meets a
    /// leadership change (a transfer in progress, or this replica just stepped down) is held
    /// and proposed or forwarded to the new leader (`StreamReplica+Handover.swift`) instead
    /// of being refused. `forwarded`: it came from the former leader (never forwarded again).
    /// `arrived`: the subject it was published on; it is stored under the stream's
    /// `subject_transform` of it, mapped here once (held and forwarded publishes keep theirs).
    func propose(subject arrived: String, reply: String?, headers: [UInt8]?, payload: [UInt8], forwarded: Bool = false) {
        let publish = ForwardedPublish(stream: name, subject: arrived, reply: reply, headers: headers, payload: payload)
        guard acceptsPublishes, held.isEmpty else {
            if closed { return refuse(publish) }
            hold(publish, forwarded: forwarded)
            return releaseHeld()
        }
        guard let subject = stream.storedSubject(arrived) else { return refuse(publish, Stream.invalidMappedSubject(arrived)) }
        // A publish now would take a sequence the archive being restored holds. (The committed
        // config: the restore is over once the meta group has the config without the key.)
        if stream.restoringCommitted { return refuse(publish, .beingRestored) }
        let now = JSTime.nowNanos()
        let stamped = stampDedupTime(now)
        let dedupTime = writesDedupTimes() ? stamped : nil
        let parsed = PublishHeaders(headers)
        let decided: Bool
        switch leaderDedup(parsed.msgID, now: dedupTime) {
        case .duplicate(let prior):
            if let reply, !stream.config.noAck {
                js.bus.publishInternal(subject: reply, payload: .init(bytes: stream.pubAck(prior, duplicate: true)))
            }
            return
        case .new: decided = true
        case .undecided: decided = false
        }
        // The account's and the server's storage limits, here and not at apply (see
        // `Stream.ingest`): the leader's view of the stored bytes decides once for every replica.
        if let e = js.storageRefusal(for: stream, adding: stream.store.size(subject: subject, headers: headers, payload: payload)) {
            return refuse(publish, e)
        }
        var proposed = ProposedPublish(subject: subject, reply: stream.config.noAck ? nil : reply, headers: headers,
                                       payload: payload, timestamp: now, dedupTime: dedupTime, dedupDecided: decided,
                                       parsed: parsed, noInterest: nobodyInterested(in: subject))
        let data = StreamEntry.encodeMessage(subject: subject, reply: proposed.reply, headers: headers, payload: payload,
                                             timestamp: proposed.timestamp, dedupTime: dedupTime, dedupDecided: decided)
        do {
            let index = try cluster.host.propose(group, data)
            if proposed.noInterest { proposed.noInterest = proposeNoInterestRemoval(of: index) }
            notePublishProposed(at: index, proposed)
            if let msgID = parsed.msgID { pendingMsgIDs[msgID] = index }
        } catch RaftError.transferInProgress, RaftError.notLeader {
            // Handing over, or Raft already stepped down and this replica hears of it next.
            hold(publish, forwarded: forwarded)
        } catch {
            refuse(publish)
        }
    }

    /// A message one of the stream's sources delivered (`StreamSources.swift`): proposed as it
    /// is (no transform, no dedup decision), marked sourced. False when this replica cannot
    /// propose it now (the source starts again from what it took).
    func proposeSourced(subject: String, headers: [UInt8], payload: [UInt8], ack: String?) -> Bool {
        guard acceptsPublishes, held.isEmpty else { return false }
        let now = JSTime.nowNanos()
        // The same dedup clock as publishes (a sourced message may carry a `Nats-Msg-Id`).
        let dedupTime = stampDedupTime(now)
        let parsed = PublishHeaders(headers)
        let data = StreamEntry.encodeMessage(subject: subject, reply: nil, headers: headers, payload: payload, timestamp: now,
                                             dedupTime: dedupTime, sourced: true)
        guard let index = try? cluster.host.propose(group, data) else { return false }
        notePublishProposed(at: index, ProposedPublish(subject: subject, reply: nil, headers: headers, payload: payload,
                                                       timestamp: now, dedupTime: dedupTime, parsed: parsed, sourced: true,
                                                       sourceAck: ack))
        return true
    }

    /// A message the stream's mirror delivered, proposed to be stored at its origin's sequence
    /// `seq` and time (`time`) on every replica. False when this replica cannot propose it now.
    func proposeMirrored(seq: UInt64, subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, ack: String?) -> Bool {
        guard acceptsPublishes, held.isEmpty else { return false }
        // What apply would refuse is not proposed: the mirror waits (the store may lag the
        // proposals in flight, which only makes this check late, never wrong at apply).
        if stream.config.sealed || stream.discardNewRefusal(subject: subject, headers: headers, payload: payload, stream.store.state) != nil {
            return false
        }
        let dedupTime = stampDedupTime(JSTime.nowNanos())
        let data = StreamEntry.encodeMessage(subject: subject, reply: nil, headers: headers, payload: payload, timestamp: time,
                                             dedupTime: dedupTime, mirrorSeq: seq)
        guard let index = try? cluster.host.propose(group, data) else { return false }
        notePublishProposed(at: index, ProposedPublish(subject: subject, reply: nil, headers: headers, payload: payload, timestamp: time,
                                                       dedupTime: dedupTime, parsed: PublishHeaders(headers), mirrorSeq: seq,
                                                       sourceAck: ack))
        return true
    }

    /// Answers a publish with an error PubAck (by default 503/10008: the stream has no leader).
    func refuse(_ p: ForwardedPublish, _ e: JSAPIError? = nil) {
        guard let reply = p.reply, !stream.config.noAck else { return }
        js.bus.publishInternal(subject: reply, payload: .init(bytes: Stream.errorAck(e ?? .unavailable(.streamLeader(name)), stream: name)))
    }

    /// A mutating API request (purge, message delete, consumer record): replicate, then apply
    /// on every replica; `reply` (if any) is answered when it applies here.
    func proposeOp(_ body: [String: Any], reply: String?, type: String) throws {
        try proposeOp(body, answer: reply.map { .api(reply: $0, type: type, precomputed: nil) })
    }

    func proposeOp(_ body: [String: Any], answer: PendingReply?) throws {
        try proposeEntry(StreamEntry.encodeOp(body), answer: answer)
    }

    /// Proposes an encoded `StreamEntry`; `answer` hears back when it applies here.
    func proposeEntry(_ data: [UInt8], answer: PendingReply?) throws {
        guard isLeader else { throw JSAPIError.unavailable(.streamLeader(name)) }
        do {
            let index = try cluster.host.propose(group, data)
            if let answer, let term = cluster.host.node(group)?.term { pendingOps[index] = (term, answer) }
        } catch {
            throw JSAPIError.unavailable(.streamLeader(name))
        }
    }

    // MARK: - apply (every replica)

    func raftApply(_ entry: Entry) {
        // Past an entry the store could not take, nothing is applied (the group stops).
        guard storeFailure == nil else { return }
        createReply = nil // some replica leads and has answered
        let proposal = proposals.take(index: entry.index)
        if let proposal, proposal.term == entry.term {
            // Our own proposal (same index and term: the same entry): no second decode.
            let p = proposal.publish
            return applyMessage(entry, subject: p.subject, entryReply: p.reply, headers: p.headers, payload: p.payload,
                                timestamp: p.timestamp, dedupTime: p.dedupTime ?? p.timestamp, dedupDecided: p.dedupDecided,
                                proposedTerm: proposal.term, parsed: p.parsed, noInterestProposed: p.noInterest, sourced: p.sourced,
                                mirrorSeq: p.mirrorSeq, sourceAck: p.sourceAck)
        }
        let decoded: StreamEntry
        do { decoded = try StreamEntry.decode(entry.data) } catch {
            js.server.logger.error("Stream '\(name)': undecodable entry \(entry.index): \(error)")
            return
        }
        switch decoded {
        case let .message(subject, entryReply, headers, payload, timestamp, dedupTime):
            applyMessage(entry, subject: subject, entryReply: entryReply, headers: headers, payload: payload,
                         timestamp: timestamp, dedupTime: dedupTime, dedupDecided: StreamEntry.isDedupDecided(entry.data),
                         proposedTerm: proposal?.term, sourced: StreamEntry.isSourced(entry.data),
                         mirrorSeq: StreamEntry.mirroredSeq(entry.data))
        case let .consumerRecord(name, record):
            // The consumer's config and ack state, as the leader last saw it: written with the
            // round's other records of it (`flushRecords`), answered after that write.
            let waiting = pendingOps.removeValue(forKey: entry.index)
            recordBatch[name] = (entry.index, record)
            if let waiting, waiting.term == entry.term { recordAnswers.append((entry.index, waiting.answer)) }
        case let .retentionRemoved(runs):
            // Let go by the leader's retention (`Stream.removeForRetention`): every replica, the
            // leader included, removes them here, at the same point of the log (a publish
            // nobody was interested in is already gone on the leader). The messages precede
            // this entry, so the batch goes first.
            flushApplyBatch()
            guard storeFailure == nil else { return }
            var removed = false
            defer { if removed { stream.dirty = true } }
            for run in runs {
                for seq in run {
                    do {
                        if try stream.remove(seq) { removed = true }
                    } catch let e as StoreError where e.isLocal {
                        // Replayed from here after the reopen (a removal of what is gone is a no-op).
                        return storeFailed(e, at: entry.index)
                    } catch {}
                }
            }
        case let .marker(subject, timestamp):
            // A subject delete marker the leader found due: stored here if the subject is still
            // empty at this point of the log (`Stream+DeleteMarkers.swift`).
            flushApplyBatch()
            guard storeFailure == nil else { return }
            stream.applyingRaftIndex = entry.index.rawValue
            let outcome = stream.storeMarker(subject: subject, now: timestamp)
            stream.applyingRaftIndex = 0
            guard let outcome else { return }
            if let failure = outcome.localFailure { return storeFailed(failure, at: entry.index) }
            applied(subject: subject, raftIndex: entry.index, reply: nil, outcome)
        case let .op(o):
            flushApplyBatch() // and the records: an op may delete or replace a consumer's record
            guard storeFailure == nil else { return }
            var response: [String: Any]
            do {
                response = try applyOp(JSONObject(o, typeName: "StreamOp"), at: entry.index)
            } catch let e as JSAPIError {
                response = e.responseBody
            } catch let e as StoreError where e.isLocal {
                // A purge or delete this node's storage refused: the others made it.
                return storeFailed(e, at: entry.index)
            } catch {
                response = JSAPIError(500, 10110, "\(error)").responseBody
            }
            let waiting = pendingOps.removeValue(forKey: entry.index)
            if let waiting, waiting.term == entry.term { answer(waiting.answer, response) }
        }
    }

    func answer(_ pending: PendingReply, _ computed: [String: Any]) {
        var response = computed
        switch pending {
        case let .api(reply, type, precomputed):
            if let precomputed, response["error"] == nil { response = precomputed }
            if response["error"] != nil { JetStreamService.addErrorFields(&response, type: type) }
            response["type"] = type
            js.reply(reply, response)
        case let .empty(reply):
            js.bus.publishInternal(subject: reply, payload: .init())
        }
    }

    /// A committed publish: batched with the round's others when it can be, else ingested alone.
    private func applyMessage(_ entry: Entry, subject: String, entryReply: String?, headers: [UInt8]?, payload: [UInt8],
                              timestamp: Int64, dedupTime: Int64, dedupDecided: Bool, proposedTerm: Term?,
                              parsed: PublishHeaders? = nil, noInterestProposed: Bool = false, sourced: Bool = false,
                              mirrorSeq: UInt64? = nil, sourceAck: String? = nil) {
        let parsed = parsed ?? PublishHeaders(headers)
        if !pendingMsgIDs.isEmpty { notePendingApplied(parsed.msgID, at: entry.index) }
        let node = raftNode
        let answers = Self.answersPublish(isRaftLeader: node?.role == .leader, handedOverTerm: node?.handedOverTerm,
                                          proposedTerm: proposedTerm, entryTerm: entry.term)
        let reply = answers ? entryReply : nil
        let item = Stream.BatchItem(subject: subject, headers: headers, payload: payload, now: timestamp,
                                    raftIndex: entry.index.rawValue, dedupTime: dedupTime, dedupDecided: dedupDecided,
                                    parsed: parsed)
        if mirrorSeq == nil && sourceAck == nil && stream.canBatch(parsed) {
            // Stored with the rest of this round's publishes (`raftAppliedBatch`).
            applyBatch.append((item, reply))
            if applyBatch.count >= Self.maxApplyBatch { flushApplyBatch() }
            return
        }
        flushApplyBatch()
        // A batch the store could not take: this entry must not be stored without it.
        guard storeFailure == nil else { return }
        // The entry's dedup time is "now" for dedup on every replica, so dedup windows agree.
        stream.expireDedup(now: dedupTime)
        stream.applyingRaftIndex = entry.index.rawValue
        stream.applyingRemovalProposed = noInterestProposed
        let outcome = stream.ingest(subject: subject, headers: headers, payload: payload, now: timestamp, dedupNow: dedupTime,
                                    dedupDecided: dedupDecided, parsed: parsed, sourced: sourced, mirrorSeq: mirrorSeq)
        stream.applyingRaftIndex = 0
        stream.applyingRemovalProposed = false
        if let failure = outcome.localFailure { return storeFailed(failure, at: entry.index) }
        // Committed (durable on a quorum): the work-queue origin may let the message go.
        if let sourceAck, !outcome.refused { js.bus.publishInternal(subject: sourceAck, payload: .init()) }
        // A copy this node proposed and the stream refused (a limit reached by the copies in
        // flight): its sources or mirror go back to what applied, so none is left out.
        if (sourced || mirrorSeq != nil) && outcome.refused && proposedTerm != nil { stream.sourceState.refusedAtApply = true }
        applied(subject: item.subject, raftIndex: LogIndex(item.raftIndex), reply: reply, outcome)
    }

    /// The end of a round's committed entries: the round's consumer records are written and
    /// the batched publishes stored now, before anything else reads the stream.
    func raftAppliedBatch() {
        flushApplyBatch()
        if storeFailure != nil { stopAfterStoreFailure() }
    }

    /// Writes the round's consumer records (`flushRecords`), then stores the pending publishes
    /// in one store write and answers them. Records first: one this node cannot write stops the
    /// replica at its entry, and no publish after that entry may be stored (the reopen replays
    /// the log from the store's last entry on, the record included).
    func flushApplyBatch() {
        flushRecords()
        guard !applyBatch.isEmpty else { return }
        var pending = applyBatch
        applyBatch.removeAll(keepingCapacity: true)
        if storeFailure != nil {
            pending.removeAll { !precedesStoreFailure(LogIndex($0.item.raftIndex)) }
            if pending.isEmpty { return }
        }
        let outcomes = stream.ingestBatch(pending.map(\.item))
        for (p, outcome) in zip(pending, outcomes) {
            if let failure = outcome.localFailure { return storeFailed(failure, at: LogIndex(p.item.raftIndex)) }
            applied(subject: p.item.subject, raftIndex: LogIndex(p.item.raftIndex), reply: p.reply, outcome)
        }
    }

    /// After a publish was decided: wake the consumers, send the PubAck (`reply` is nil when
    /// another node answers it: see `answersPublish`).
    private func applied(subject: String, raftIndex: LogIndex, reply: String?, _ outcome: Stream.PublishOutcome) {
        if outcome.stored { lastStored = (raftIndex, outcome.seq) }
        if outcome.stored && isLeader {
            for c in stream.consumers.values {
                c.newMessageStored(subject: subject)
                js.schedulePump(c)
            }
        }
        if let reply {
            js.bus.publishInternal(subject: reply, payload: .init(bytes: outcome.response), flushBatch: cluster.host.replyFlush)
        }
    }

    /// Compaction never drops what a member holds, so a snapshot arrives only at a replica that
    /// lost its data (a wiped volume) or never had it. Without a stream snapshot transfer it
    /// cannot be repaired here, and it must not pass for a current replica: it leaves the group
    /// (the others keep serving) and says so.
    func raftApplySnapshot(_ snapshot: Snapshot) {
        js.server.logger.error("Stream '\(name)': this replica lacks entries up to \(snapshot.metadata.index) that the others compacted (its data was lost?); it stops taking part in the stream's group until repaired")
        stepDownLocally()
        isLeader = false
        closed = true
        stopDirectAccess()
        cluster.host.removeGroup(group)
    }

    func raftLeadershipChanged(isLeader: Bool, leader: NodeID?) {
        self.isLeader = isLeader
        expiryHold = nil
        configHold = nil
        pendingMsgIDs = [:]
        dedupDecidingTerm = nil
        cluster.needsTick(self)
        if isLeader { cluster.membershipWork.insert(self) }
        dedupClock = isLeader ? resumeDedupClock() : nil
        if isLeader {
            leaderSinceTick = cluster.ticks
            leaderSinceNanos = JSTime.nowNanos()
            ingestLingerUntil = nil
            js.subscribeIngest(stream)
            js.loadConsumers(stream)
            for c in stream.consumers.values { js.schedulePump(c) }
            cluster.announceLeadership(self)
            if let p = createReply, let a = cluster.assignments[name] {
                var info = cluster.info(for: a)
                info["did_create"] = true
                info["type"] = p.type
                js.reply(p.reply, info)
            }
            createReply = nil
            js.server.logger.info("JetStream cluster: leading stream '\(name)'")
            // Before any publish: a replica replaying the log from its start (which opens with
            // the newest config) then judges no publish before this op by it.
            proposeConfigIfBehind(firstLeadership: configAppliedAt == nil)
            releaseHeld()
        } else {
            createReply = nil
            stepDownLocally(keepIngest: true)
            ingestLingerUntil = cluster.ticks + Self.ingestLingerTicks
            js.server.logger.info("JetStream cluster: no longer leading stream '\(name)'")
            if raftNode?.lostQuorum == true { reportQuorumLoss() }
            releaseHeld()
        }
        updateDirectAccess()
    }

    /// `keepIngest`: the stream's subjects stay subscribed for a while (see `ingestLingerTicks`).
    private func stepDownLocally(keepIngest: Bool = false) {
        if !keepIngest { unsubscribeIngest() }
        for c in stream.consumers.values {
            c.cancelPulls("409 Leadership Change")
            c.deleted = true
        }
        stream.consumers = [:]
        pendingOps.removeAll()
    }

    /// Stops serving and closes the store (server shutdown).
    func close() {
        refuseHeld()
        proposals.removeAll()
        catchup?.abandon()
        catchup = nil
        rangeRepair?.abandon()
        rangeRepair = nil
        stepDownLocally()
        isLeader = false
        closed = true
        stopDirectAccess()
        cluster.tickWork.remove(self)
        cluster.handoverWork.remove(self)
        cluster.membershipWork.remove(self)
        cluster.host.removeGroup(group)
        stream.store.close()
    }

    /// The stream was deleted: close and remove its files.
    func destroy() {
        close()
        stream.store.destroy()
        js.streams[name] = nil
        js.reservationsChanged = true
        if let dir = stream.directory { AtomicFile.removeTree(dir) }
    }

    /// Leader, now and then: when the log holds more than `threshold` entries, proposes to
    /// compact it (see `compactionPoint`). How far a lagging member holds compaction back is
    /// bounded by `maxLag`; such a member catches up by copying the stream (`CatchupSession`,
    /// memory streams too).
    func proposeCompaction(threshold: Int, maxLag: Int) {
        guard isLeader, let node = cluster.host.node(group), node.lastIndex - node.firstIndex > threshold else { return }
        var matches: [LogIndex] = []
        for peer in node.conf.allMembers where peer != cluster.host.me {
            guard let p = node.progress(of: peer) else { return }
            matches.append(p.match)
        }
        guard let upTo = Self.compactionPoint(applied: node.appliedIndex, firstIndex: node.firstIndex, matches: matches,
                                              maxLag: maxLag) else { return }
        try? proposeOp(["op": "compact", "up_to": upTo.rawValue], answer: nil)
    }

    /// Where to compact: up to what every member holds (the lowest match index, never past our
    /// applied index), but a member more than `maxLag` entries behind `applied` does not hold
    /// the point back further than that. Nil when the point would not advance.
    static func compactionPoint(applied: LogIndex, firstIndex: LogIndex, matches: [LogIndex], maxLag: Int?) -> LogIndex? {
        var upTo = matches.reduce(applied) { min($0, $1) }
        if let maxLag, applied.rawValue > UInt64(maxLag) {
            upTo = max(upTo, LogIndex(applied.rawValue - UInt64(maxLag)))
        }
        return upTo > firstIndex ? upTo : nil
    }

    /// `$JS.API.STREAM.LEADER.STEPDOWN.<stream>`; `body` may carry a placement
    /// (`StepdownPlacement`).
    func stepDown(body: [UInt8] = []) throws {
        guard let node = cluster.host.node(group) else { throw JSAPIError(400, 10118, "no replicas available for leader election") }
        try cluster.host.transferLeadership(group, to: try cluster.stepdownTarget(node, body: body))
    }
}
