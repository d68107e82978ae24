import Dispatch
import NIOCore
import Raft

/// A group's log storage as the driver needs it: Raft's storage plus calls that make every
/// append and hard-state change so far durable (so many appends share one fsync).
protocol DurableRaftStorage: RaftStorage {
    func sync() throws
    /// Something written is not durable yet (entries, or a term/vote change).
    var needsSync: Bool { get }
    /// Term or vote changed and is not durable yet (always synced before a message speaks for it).
    var hardStateNeedsSync: Bool { get }
    /// Starts making everything written so far durable: a term/vote change (rare) is made
    /// durable now; the rest is returned as a job that may run on any thread (nil: nothing left).
    func beginSync() throws -> (() throws -> Void)?
    /// Flushes and releases the files (errors are logged by the caller's next open).
    func closeLog()
    /// File work to run off the JetStream queue (the log's next step of zeros, the removal of
    /// segments a compaction dropped); nil when none is due.
    func backgroundJob() -> (() -> Void)?
    /// The removal of spare log segments left untaken since the last call; nil when none.
    func idleSparesJob() -> (() -> Void)?
}

/// What a Raft group's owner (the meta layer, a stream replica) hears from the driver.
protocol RaftGroupDelegate: AnyObject {
    /// A committed `normal` entry, in log order, after it is durable on a quorum.
    func raftApply(_ entry: Entry)
    /// A snapshot from the leader replaced the log.
    func raftApplySnapshot(_ snapshot: Snapshot)
    /// The leader offered a snapshot this node needs, in a group whose owner copies the state
    /// itself (`externalSnapshots`); Raft did not acknowledge it.
    func raftSnapshotOffered(_ metadata: SnapshotMetadata)
    /// This node became leader and has applied everything committed before its term, or it
    /// stopped being leader. `leader` is the current leader as far as this node knows.
    func raftLeadershipChanged(isLeader: Bool, leader: NodeID?)
    /// Called after each round's committed entries were handed to `raftApply` (and before
    /// anything else of the round runs): an owner that defers work across a round's entries
    /// (a batched store write) finishes it here.
    func raftAppliedBatch()
    /// The group stopped here after a storage error (its Raft log's, or one its owner reported
    /// through `stopGroup`).
    func raftGroupStopped(_ error: Error)
    /// The leader's log disagrees with the entry at `index` that this node had committed (see
    /// `RaftNode.divergedAt`): the node no longer follows until its owner rebuilt it.
    func raftDiverged(at index: LogIndex)
}

extension RaftGroupDelegate {
    func raftSnapshotOffered(_ metadata: SnapshotMetadata) {}
    func raftAppliedBatch() {}
    func raftGroupStopped(_ error: Error) {}
    func raftDiverged(at index: LogIndex) {}
}

/// The driver of every Raft group on this node: ticks, persistence with group commit, the
/// route transport, and apply. Runs on JetStream's serial queue; only fsyncs and the Raft logs'
/// file work (zero-fills, removing dropped segments: `backgroundJob`) run elsewhere.
///
/// Per round, for every ready group (see `Ready`): write its entries and hard state, send the
/// leader's appends at once (Raft dissertation §10.2.1: the followers write in parallel with the
/// leader), apply what is committed *and* durable here, and hand the write to the group's
/// background sync (`RaftHost+Sync.swift`). Messages that speak for what this node persisted
/// (append and vote responses) wait for a sync that started after their write; the leader's own
/// copy counts toward commit only when its sync finished. So a PubAck (sent on apply) follows
/// fsync on a quorum and on the leader. While a sync runs, the queue keeps taking publishes;
/// everything written meanwhile shares the next fsync (group commit).
final class RaftHost {
    /// The `XMSG` namespace of this host's frames: one per account's JetStream, so two
    /// accounts' groups with the same id never see each other's messages.
    let namespace: String

    final class Member {
        let node: RaftNode
        let storage: DurableRaftStorage
        /// A stream replica is held strongly: it removes its group when it closes, and a weak
        /// reference would cost a side-table load on every apply. The meta group's delegate owns
        /// this host, so it is held weakly (no cycle).
        private let held: RaftGroupDelegate?
        private weak var weakDelegate: RaftGroupDelegate?
        var delegate: RaftGroupDelegate? { held ?? weakDelegate }
        var sync = GroupSyncState()
        /// Opt-in (`jetstream { sync_interval }`): its writes count as persisted when written;
        /// the periodic sync makes them durable (`RaftHost.ackOnWriteSyncTicks`).
        let ackOnWrite: Bool
        var wasLeader = false
        /// Leader only: the index of the first entry of its term; leadership is announced once
        /// everything up to it is applied (earlier terms' entries are in the state machine).
        var leaderReadyAt: LogIndex?
        /// `tickCount` when the node was created: its tick t happened at host tick offset + t.
        let tickOffset: UInt64
        init(node: RaftNode, storage: DurableRaftStorage, delegate: RaftGroupDelegate, ownsHost: Bool, tickOffset: UInt64,
             ackOnWrite: Bool) {
            self.node = node
            self.ackOnWrite = ackOnWrite
            self.storage = storage
            if ownsHost { weakDelegate = delegate; held = nil } else { held = delegate }
            self.tickOffset = tickOffset
        }
    }

    let me: NodeID
    let myName: String
    let multi: MultiRaft
    let queue: DispatchQueue
    unowned let server: NATSServer
    private(set) var members: [GroupID: Member] = [:]
    /// Moves whenever a group is added or removed: a node looked up while it holds is still the
    /// group's node (`StreamReplica.raftNode` keeps it instead of a lookup per message).
    private(set) var membersGeneration = 0
    /// Where fsyncs run: a group always uses the same serial queue, so at most one sync per log
    /// runs at a time; different groups' logs sync in parallel.
    let syncQueues = (0..<4).map { DispatchQueue(label: "clusterd.raft-sync.\($0)") }
    /// Groups whose next sync should start at the end of this round.
    var syncsToStart: [Member] = []
    /// Sync jobs running on the sync queues.
    var backgroundSyncs = 0
    /// Whether a sole sync runs on the JetStream queue (`startSyncs`).
    var inlineSoleSync = true
    /// The largest Raft frame sent so far (bytes), for tests.
    private(set) var largestFrameSent = 0
    /// Opt-in (`jetstream { sync_interval }`): groups added with `ackOnWrite` count their
    /// writes as persisted at once and are fsync'd every this many ticks. nil: every message
    /// that speaks for a write waits for its fsync.
    var ackOnWriteSyncTicks: UInt64?
    private var names: [NodeID: String] = [:]
    var coalescer: HeartbeatCoalescer
    /// Connections that got replies (PubAcks) while applying this round: flushed once at the end
    /// of `process()`, so the acks of a round leave in one write per connection.
    let replyFlush = FlushBatch()
    private var processScheduled = false
    /// Raft frames decoded on route event loops, waiting for the queue (`drainInbox`).
    private let inbox = Mailbox<(Result<MessageBatch, Error>, Int)>()
    private var seed: UInt64
    /// The route peers (server names) connected at the last `peersChanged`.
    private(set) var knownPeers = Set<String>()
    var config: RaftConfig
    /// ReadIndex reads waiting for their confirmation or for apply (see `readIndex`).
    private var reads = PendingReads<(Bool) -> Void>()
    /// Driver ticks so far: the clock of read deadlines.
    private var tickCount: UInt64 = 0
    /// A read not confirmed and applied within this many ticks fails (lost message, deposed
    /// or partitioned leader): two election timeouts.
    var readTimeoutTicks: UInt64 { UInt64(2 * config.electionTimeoutTicks) }
    /// How long a leader's lease lasts after a quorum acknowledged a heartbeat, in wall-clock
    /// nanoseconds: less than the followers' election timeout (they refuse votes that long after
    /// hearing from the leader), so no other leader can exist meanwhile. 0 disables the check.
    var leaseNanos: UInt64 = 0
    /// The monotonic time of the last `tickHistory` host ticks (`tickCount`): maps a group's
    /// tick (its lease start) to when it happened, also across a SIGSTOP or a stall.
    private static let tickHistory = 64
    private var tickWall = [UInt64](repeating: 0, count: RaftHost.tickHistory)

    /// - Parameter me: this node's Raft id (`NodeIdentity`: server name plus storage id).
    init(server: NATSServer, queue: DispatchQueue, config: RaftConfig, me: NodeID, namespace: String = "raft") {
        self.server = server
        self.namespace = namespace
        self.queue = queue
        self.myName = server.serverName
        self.me = me
        self.multi = MultiRaft(nodeID: me)
        self.coalescer = HeartbeatCoalescer(from: me)
        self.config = config
        var s: UInt64 = 0
        for b in server.serverID.utf8 { s = s &* 31 &+ UInt64(b) }
        self.seed = s
        names[me] = myName
    }

    /// Registers the route transport. Frames are decoded off the queue, applied on it.
    func start() {
        server.routeManager?.registerExtension(namespace) { [weak self] _, payload in
            guard let self else { return }
            // Decoded on the route's event loop, straight from the frame, off the JetStream queue.
            let decoded = Result { try payload.withUnsafeReadableBytes { try RaftWireCodec.decode($0) } }
            // Unbounded: Raft traffic is bounded by its senders (in-flight windows, batch sizes).
            if self.inbox.add((decoded, payload.readableBytes)) == .scheduleDrain { self.queue.async { self.drainInbox() } }
        }
    }

    /// Every frame that arrived since the last drain, then one round for all of them: frames
    /// that queued up while the queue was busy (an inline fsync, an apply) share one write and
    /// one sync per group instead of a round each.
    private func drainInbox() {
        for (decoded, size) in inbox.take() { receive(decoded, size: size) }
        process()
    }

    /// The server name behind a Raft id (from hellos and the meta group's member names): where
    /// its messages go. Several ids may name one server (its stores over time); only the one
    /// its current store has accepts them.
    func name(of id: NodeID) -> String? { names[id] }

    /// Records that `id` is (or was) a store of server `name`.
    func learn(name: String, id: NodeID) {
        guard id != me else { return }
        names[id] = name
    }

    func node(_ group: GroupID) -> RaftNode? { members[group]?.node }
    var groupCount: Int { members.count }

    /// Hosts a group whose members are the named servers.
    /// `delegateOwnsHost`: the delegate keeps this host alive (the meta group's), so the host
    /// must not keep it alive in turn.
    func addGroup(_ group: GroupID, storage: DurableRaftStorage, delegate: RaftGroupDelegate, delegateOwnsHost: Bool = false,
                  applied: LogIndex?, quiesce: Bool, campaign: Bool = false, externalSnapshots: Bool = false,
                  ackOnWrite: Bool = false) {
        guard members[group] == nil else {
            server.logger.error("Raft group \(group) is already hosted here; not adding it twice")
            storage.closeLog()
            return
        }
        var cfg = config
        cfg.quiesceAfterIdleTicks = quiesce ? 20 : nil
        cfg.applicationInstallsSnapshots = externalSnapshots
        seed = seed &+ 0x9e37_79b9_7f4a_7c15
        let node = RaftNode(id: me, group: group, storage: storage, config: cfg,
                            random: Raft.SplitMix64(seed: seed ^ group.rawValue), applied: applied)
        members[group] = Member(node: node, storage: storage, delegate: delegate, ownsHost: delegateOwnsHost,
                                tickOffset: tickCount, ackOnWrite: ackOnWrite && ackOnWriteSyncTicks != nil)
        membersGeneration &+= 1
        multi.addGroup(node)
        if campaign { node.startElection() }
        deliverEarly(group, to: node)
        schedule()
    }

    /// The log storage of a hosted group.
    func storage(of group: GroupID) -> DurableRaftStorage? { members[group]?.storage }

    /// Stops hosting a group (stream deleted or moved away) and closes its storage.
    func removeGroup(_ group: GroupID) {
        guard let m = members.removeValue(forKey: group) else { return }
        membersGeneration &+= 1
        multi.removeGroup(group)
        m.storage.closeLog()
        for done in reads.drop(group: group) { done(false) }
    }

    /// A linearizable read of `group` (Raft ReadIndex, dissertation §6.4): `done(true)` once the
    /// group's leader confirmed with a quorum that it still leads and this node applied
    /// everything committed when the read was asked, so local state is at least that new;
    /// `done(false)` when no leader is known or no confirmation came in time. Works on the
    /// leader and on followers (they ask the leader). Runs `done` on the JetStream queue.
    func readIndex(_ group: GroupID, _ done: @escaping (Bool) -> Void) {
        guard let m = members[group] else { return done(false) }
        let context = reads.register(group: group, waiter: done, deadline: tickCount + readTimeoutTicks)
        do {
            try m.node.readIndex(context: context)
        } catch {
            reads.cancel(context: context)?(false)
            return
        }
        multi.markDirty(group)
        schedule()
    }

    /// Proposes `data` to a group this node leads; returns its log index.
    func propose(_ group: GroupID, _ data: [UInt8]) throws -> LogIndex {
        guard let m = members[group] else { throw RaftError.notMember }
        let index = try m.node.propose(data)
        multi.markDirty(group)
        schedule()
        return index
    }

    /// Drops the group's log up to `index` (applied here, and held by every member: see
    /// `StreamReplica.proposeCompaction`), recording a snapshot marker that covers it.
    func compact(_ group: GroupID, upTo index: LogIndex) throws {
        guard let m = members[group], index > m.storage.firstIndex, index <= m.node.appliedIndex else { return }
        try m.storage.createSnapshot(index: index, conf: m.node.confState(atIndex: index), data: [])
        try m.storage.compact(upTo: index)
        // The dropped segments' unlinks: about 5 ms each, several per compaction of a busy log.
        if let job = m.storage.backgroundJob() { syncQueue(group).async(execute: job) }
    }

    /// Every group's spare log segments that stayed untaken since the last call are removed, on
    /// the groups' sync queues (`StreamLog.releaseIdleSpares`).
    func releaseIdleSpares() {
        for (group, m) in members {
            if let job = m.storage.idleSparesJob() { syncQueue(group).async(execute: job) }
        }
    }

    /// Calls `body` with the delegate of every group that is not quiesced.
    func forEachActiveDelegate(_ body: (RaftGroupDelegate) -> Void) {
        multi.forEachTickingGroup { node in
            if let d = members[node.group]?.delegate { body(d) }
        }
    }

    /// Groups whose leader is this node.
    func ledGroups() -> [GroupID] {
        members.values.filter { $0.node.role == .leader }.map { $0.node.group }.sorted()
    }

    /// Proposes a single-server membership change to a group this node leads.
    func proposeConfChange(_ group: GroupID, _ change: ConfChange) throws {
        guard let m = members[group] else { throw RaftError.notMember }
        try m.node.proposeConfChange(change)
        multi.markDirty(group)
        schedule()
    }

    func transferLeadership(_ group: GroupID, to target: NodeID) throws {
        guard let m = members[group] else { throw RaftError.notMember }
        try m.node.transferLeadership(to: target)
        multi.markDirty(group)
        schedule()
    }

    func tick() {
        tickCount += 1
        tickWall[Int(tickCount % UInt64(Self.tickHistory))] = DispatchTime.now().uptimeNanoseconds
        if let every = ackOnWriteSyncTicks, tickCount % every == 0 { startPeriodicSyncs() }
        multi.tick()
        process()
        for done in reads.expire(now: tickCount) { done(false) }
    }

    /// True while this node surely leads `group`: a quorum acknowledged a heartbeat this node
    /// sent less than `leaseNanos` ago by the wall clock. A leader that was frozen (SIGSTOP, a
    /// stall) or cut off fails this at once, although its Raft state still says leader until
    /// it hears of the newer term.
    func holdsLease(_ group: GroupID) -> Bool {
        guard let m = members[group], let round = m.node.leaseStartTick else { return false }
        let sent = round &+ m.tickOffset
        guard tickCount &- sent < UInt64(Self.tickHistory), sent <= tickCount, sent > 0 else { return false }
        return DispatchTime.now().uptimeNanoseconds &- tickWall[Int(sent % UInt64(Self.tickHistory))] < leaseNanos
    }

    /// Leader: a heartbeat round now, so that the lease is renewed within a round trip.
    func renewLease(_ group: GroupID) {
        guard let m = members[group] else { return }
        m.node.renewLease()
        multi.markDirty(group)
        schedule()
    }

    /// Routes changed: wake the quiesced groups led by peers that are gone, so their followers
    /// elect anew, and those led here that kept no reachable majority, so they step down and
    /// report it (a stream's quorum-lost warning and advisory) now, not at their next write.
    func peersChanged(_ connected: Set<String>) {
        let lost = knownPeers.subtracting(connected)
        if !lost.isEmpty {
            var reachable: Set<NodeID> = [me], gone = Set<NodeID>()
            for (id, name) in names {
                if connected.contains(name) { reachable.insert(id) } else if lost.contains(name) { gone.insert(id) }
            }
            multi.wakeQuiesced { node in
                if let l = node.leader, gone.contains(l) { return true }
                return node.role == .leader && !node.conf.isMajority(reachable.contains)
            }
        }
        knownPeers = connected
        schedule()
    }

    private func receive(_ decoded: Result<MessageBatch, Error>, size: Int) {
        let batch: MessageBatch
        do {
            batch = try decoded.get()
        } catch {
            server.logger.warning("Dropping malformed Raft frame (\(size) bytes): \(error)")
            return
        }
        guard batch.to == me else { return }
        stash(multi.receive(batch))
        for m in batch.messages {
            guard let member = members[m.group] else { continue }
            switch m.body {
            case .installSnapshot:
                if let offer = member.node.takeSnapshotOffer() { member.delegate?.raftSnapshotOffered(offer) }
            case .appendEntries:
                guard let at = member.node.takeDivergence() else { continue }
                server.logger.error("Raft group \(m.group): the leader's log contradicts entry \(at.rawValue) this node had committed; it stops following until its state is rebuilt")
                member.delegate?.raftDiverged(at: at)
            default:
                continue
            }
        }
    }

    /// Messages for groups this node does not host yet: a new stream's first votes usually
    /// arrive before this node applied the meta entry that creates its replica. Kept briefly
    /// (bounded) and delivered when the group is added, instead of losing an election round.
    private var early: [GroupID: [Message]] = [:]
    private var earlyOrder: [GroupID] = []
    private static let earlyGroups = 1024
    private static let earlyPerGroup = 64

    private func stash(_ unknown: [Message]) {
        for m in unknown {
            if early[m.group] == nil {
                if earlyOrder.count >= Self.earlyGroups { early[earlyOrder.removeFirst()] = nil }
                earlyOrder.append(m.group)
            }
            if early[m.group, default: []].count < Self.earlyPerGroup { early[m.group, default: []].append(m) }
        }
    }

    private func deliverEarly(_ group: GroupID, to node: RaftNode) {
        guard let msgs = early.removeValue(forKey: group) else { return }
        earlyOrder.removeAll { $0 == group }
        for m in msgs { node.step(m) }
        multi.markDirty(group)
    }

    func schedule() {
        guard !processScheduled else { return }
        processScheduled = true
        queue.async { self.process() }
    }

    /// Drains every ready group: write, send early, apply, hand the write to its sync.
    func process() {
        processScheduled = false
        for _ in 0..<16 {
            let ready = multi.takeReadyGroups()
            if ready.isEmpty { break }
            for node in ready {
                guard let m = members[node.group] else { continue }
                let rd = node.ready()
                if let s = rd.snapshot, !s.isEmpty {
                    processSnapshot(m, rd, s)
                    continue
                }
                do {
                    if !rd.entries.isEmpty { try m.storage.append(rd.entries) }
                    if let hs = rd.hardState { m.storage.setHardState(hs) }
                } catch {
                    failGroup(m, error)
                    continue
                }
                let (early, afterPersist) = rd.splitMessages()
                coalescer.add(early)
                // Only entries durable here are handed out (`Ready.committedEntries`).
                for e in rd.committedEntries where e.type == .normal { m.delegate?.raftApply(e) }
                m.delegate?.raftAppliedBatch()
                guard members[node.group] === m else { continue }
                let write = node.advanceWritten(rd)
                afterWrite(m, write: write, messages: afterPersist)
                serveReads(m, rd)
                updateLeadership(m)
                if node.hasReady { multi.markDirty(node.group) }
            }
            // The round's early messages (the leader's appends) leave before a sync that may
            // run right here.
            send()
            startSyncs()
        }
        replyFlush.run()
        send()
        // Every path that gives a group a Ready marks it dirty (inputs, ticks, released syncs,
        // and the loop above): checking the dirty list is O(1), a scan of every group was O(n)
        // on each incoming frame.
        if multi.hasDirtyGroups { schedule() }
    }

    /// A snapshot from the leader replaces the log: rare, so handled in one go on the queue
    /// (applySnapshot is durable on return; `sync()` covers every write before it too).
    private func processSnapshot(_ m: Member, _ rd: Ready, _ snapshot: Snapshot) {
        do {
            try m.storage.applySnapshot(snapshot)
            if !rd.entries.isEmpty { try m.storage.append(rd.entries) }
            if let hs = rd.hardState { m.storage.setHardState(hs) }
            try m.storage.sync()
        } catch {
            failGroup(m, error)
            return
        }
        coalescer.add(rd.messages)
        m.delegate?.raftApplySnapshot(snapshot)
        // The owner may have left the group (a replica that cannot use snapshots).
        guard members[m.node.group] === m else { return }
        for e in rd.committedEntries where e.type == .normal { m.delegate?.raftApply(e) }
        m.delegate?.raftAppliedBatch()
        m.node.advance(rd)
        serveReads(m, rd)
        updateLeadership(m)
        if m.node.hasReady { multi.markDirty(m.node.group) }
    }

    /// Reads confirmed in this round, and earlier ones whose index this round applied.
    private func serveReads(_ m: Member, _ rd: Ready) {
        let group = m.node.group
        var ready = rd.readStates.isEmpty ? [] : reads.confirm(rd.readStates, group: group, applied: m.node.appliedIndex)
        if !rd.committedEntries.isEmpty { ready += reads.applied(group: group, upTo: m.node.appliedIndex) }
        for done in ready { done(true) }
    }

    private func updateLeadership(_ m: Member) {
        let node = m.node
        if node.role == .leader {
            if !m.wasLeader && m.leaderReadyAt == nil {
                // The empty entry a new leader appends marks the start of its term.
                m.leaderReadyAt = node.lastIndex
            }
            if let at = m.leaderReadyAt, node.appliedIndex >= at, !m.wasLeader {
                m.wasLeader = true
                m.leaderReadyAt = nil
                m.delegate?.raftLeadershipChanged(isLeader: true, leader: me)
            }
        } else {
            m.leaderReadyAt = nil
            if m.wasLeader {
                m.wasLeader = false
                m.delegate?.raftLeadershipChanged(isLeader: false, leader: node.leader)
            }
        }
    }

    /// Stops `group` here as a storage error would (its owner's store failed).
    func stopGroup(_ group: GroupID, because error: Error) {
        guard let m = members[group] else { return }
        failGroup(m, error)
    }

    func failGroup(_ m: Member, _ error: Error) {
        server.logger.error("Raft group \(m.node.group) stopped after a storage error: \(error)")
        if m.wasLeader { m.delegate?.raftLeadershipChanged(isLeader: false, leader: nil) }
        members[m.node.group] = nil
        membersGeneration &+= 1
        multi.removeGroup(m.node.group)
        m.storage.closeLog()
        for done in reads.drop(group: m.node.group) { done(false) }
        m.delegate?.raftGroupStopped(error)
    }

    func send() {
        let batches = coalescer.drain()
        guard !batches.isEmpty, let routes = server.routeManager else { return }
        let ids = routes.peerServerIDs()
        for b in batches {
            guard let name = name(of: b.to), let id = ids[name] else { continue }
            for bytes in Self.frames(b) {
                largestFrameSent = max(largestFrameSent, bytes.count)
                var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
                buf.writeBytes(bytes)
                routes.sendExtension(namespace, payload: buf, to: id)
            }
        }
    }

    /// The largest Raft frame this host should send: far below the route's 64 MiB payload limit
    /// (a peer refuses a larger frame and closes the route).
    static let maxFrameBytes = 8 << 20

    /// `batch` encoded as one frame, or split (messages in order, heartbeats in the first) into
    /// frames of at most `maxFrameBytes` each, unless a single message is larger. A leader
    /// catching a follower up sends it up to `maxInflightMsgs` appends of up to 1 MiB in one
    /// round: as one frame, that could pass the route's limit again after every reconnect.
    static func frames(_ batch: MessageBatch) -> [[UInt8]] {
        let bytes = RaftWireCodec.encode(batch)
        guard bytes.count > maxFrameBytes, batch.messages.count > 1 else { return [bytes] }
        let mid = batch.messages.count / 2
        var first = batch
        first.messages = Array(batch.messages[..<mid])
        var second = MessageBatch(from: batch.from, to: batch.to)
        second.messages = Array(batch.messages[mid...])
        return frames(first) + frames(second)
    }
}
