import Foundation
import Raft
import StreamLog

/// Repairing one damaged sealed segment of a replica's store by re-fetching only the messages
/// it lost: the store names them (`StreamLog.damage(inSegment:)`), the other replicas supply
/// them (the leader first, then each other replica for what the previous one lacked) in
/// bounded chunks over the catch-up route frames, and the store rebuilds the segment from its
/// readable blocks plus those messages (`repairSegment`). The survey and the rebuild read or
/// write one segment under the log's lock, so they run off the JetStream queue. When a message
/// cannot be had from anyone (removed everywhere since, or every copy damaged), the replica
/// falls back to copying the whole stream (`StreamReplica+Catchup`).
final class RangeRepairSession {
    unowned let replica: StreamReplica
    let store: StreamLogStore
    let segment: UInt64
    private var fetch: RangeFetch?
    private var damage: SegmentDamage?
    private var peers: [NodeID] = []
    private var peer = 0
    private var askedOf: [String] = []
    private var outstanding: UInt64?
    private var sentAtTick = 0
    /// Surveying or rebuilding on a background thread.
    private var working = false
    private var finished = false

    init(replica: StreamReplica, store: StreamLogStore, segment: UInt64) {
        self.replica = replica
        self.store = store
        self.segment = segment
    }

    private var cluster: JetStreamCluster { replica.cluster }

    /// Surveys the segment off the queue, then starts asking.
    func start() {
        working = true
        let store = store, segment = segment, queue = cluster.js.queue
        DispatchQueue.global(qos: .utility).async {
            let result = Result { try store.damage(inSegment: segment) }
            queue.async { [weak self] in self?.surveyed(result) }
        }
    }

    private func surveyed(_ result: Result<SegmentDamage?, Error>) {
        working = false
        guard !finished else { return }
        switch result {
        case .failure(let e):
            return fail("cannot read the damaged segment: \(e)")
        case .success(nil):
            // Compacted away, or rewritten sound meanwhile: nothing left to repair.
            return done(fetched: 0, from: [])
        case .success(let d?):
            damage = d
            fetch = RangeFetch(missing: d.missing)
            guard let node = cluster.host.node(replica.group) else { return fail("the stream's group is gone") }
            let me = cluster.host.me
            let others = node.conf.allMembers.filter { $0 != me }.sorted { $0.rawValue < $1.rawValue }
            peers = (node.leader.map { [$0] } ?? []) + others.filter { $0 != node.leader }
            if d.missing.isEmpty { return rebuild() }
            sendNext()
        }
    }

    /// Every cluster tick: an answer that does not come within `CatchupSession.timeoutTicks`
    /// counts as this peer lacking the rest; the next peer is asked.
    func tick() {
        guard !working, !finished, outstanding != nil, cluster.ticks - sentAtTick >= CatchupSession.timeoutTicks else { return }
        nextPeer()
    }

    private func sendNext() {
        outstanding = nil
        guard var f = fetch else { return }
        if f.next == nil {
            if f.isComplete { return rebuild() }
            f.nextPeer()
            fetch = f
            return nextPeer(restarted: true)
        }
        guard peer < peers.count else {
            return fail("no replica holds \(f.lacking.map { "\($0)" }.joined(separator: ", "))")
        }
        let (from, to) = f.next!
        let id = cluster.catchup.newRequestID()
        if cluster.catchup.send(.messagesRequest(group: replica.group.rawValue, request: id, from: from, to: to,
                                                 maxBytes: CatchupService.chunkBytes), to: peers[peer]) {
            outstanding = id
            sentAtTick = cluster.ticks
            if let name = cluster.host.name(of: peers[peer]), !askedOf.contains(name) { askedOf.append(name) }
        } else {
            nextPeer()
        }
    }

    /// The current peer failed or lacked something: ask the next one for what is still lacking.
    private func nextPeer(restarted: Bool = false) {
        outstanding = nil
        peer += 1
        if !restarted, var f = fetch {
            f.nextPeer()
            fetch = f
        }
        guard peer < peers.count else {
            return fail("no replica holds \((fetch?.lacking ?? []).map { "\($0)" }.joined(separator: ", "))")
        }
        sendNext()
    }

    /// An answer from a peer; answers to an earlier request are ignored.
    func received(_ frame: CatchupFrame) {
        guard !finished, frame.request == outstanding else { return }
        outstanding = nil
        switch frame {
        case let .messages(_, _, from, next, msgs):
            do {
                try fetch?.received(from: from, next: next, msgs)
                sendNext()
            } catch {
                nextPeer()
            }
        default:
            nextPeer()
        }
    }

    /// Everything lost is fetched: rebuild the segment off the queue.
    private func rebuild() {
        guard let f = fetch else { return }
        working = true
        let msgs = f.got.values.sorted { $0.seq < $1.seq }.map {
            StoredMessage(sequence: StreamSequence($0.seq), term: 0, raftIndex: 0, timestamp: $0.time,
                          subject: $0.subject, headers: $0.headers ?? [], payload: $0.payload)
        }
        let store = store, segment = segment, queue = cluster.js.queue
        DispatchQueue.global(qos: .utility).async {
            let result = Result { try store.repairSegment(base: segment, with: msgs) }
            queue.async { [weak self] in
                guard let self else { return }
                self.working = false
                switch result {
                case .success(let n): self.done(fetched: n, from: self.askedOf)
                case .failure(let e): self.fail("rebuilding the segment failed: \(e)")
                }
            }
        }
    }

    private func done(fetched: Int, from: [String]) {
        guard !finished else { return }
        finished = true
        let seqs = damage?.missing.map { "\($0)" }.joined(separator: ", ") ?? "none"
        replica.rangeRepairFinished(self, message: "re-fetched \(fetched) messages (sequences \(seqs)) of damaged segment \(segment)"
            + (from.isEmpty ? "" : " from \(from.joined(separator: ", "))") + "; kept the rest of its store")
    }

    private func fail(_ why: String) {
        guard !finished else { return }
        finished = true
        replica.rangeRepairFailed(self, why)
    }

    /// The replica closed: drop the session (a rebuild in flight completes on its own).
    func abandon() {
        finished = true
        outstanding = nil
    }
}

extension StreamReplica {
    /// Starts re-fetching the lost messages of a damaged sealed segment; false when the store
    /// cannot do that (not a StreamLog store).
    func startRangeRepair(segment: UInt64) -> Bool {
        guard let store = stream.store as? StreamLogStore else { return false }
        let s = RangeRepairSession(replica: self, store: store, segment: segment)
        rangeRepair = s
        s.start()
        return true
    }

    func rangeRepairFinished(_ s: RangeRepairSession, message: String) {
        guard rangeRepair === s else { return }
        rangeRepair = nil
        js.server.logger.info("Stream '\(name)': \(message)")
        damagedSegments.removeAll { $0 == s.segment }
        s.store.clearReadCorruption()
        if damagedSegments.isEmpty {
            needsRepair = false
            handOffTried = false
            updateDirectAccess()
            // The scrub stops at the first damage it finds: look for more.
            startScrub()
        }
    }

    func rangeRepairFailed(_ s: RangeRepairSession, _ why: String) {
        guard rangeRepair === s else { return }
        rangeRepair = nil
        js.server.logger.error("Stream '\(name)': cannot re-fetch the damaged range of segment \(s.segment) (\(why)); copying the whole stream from its leader")
        damagedSegments = []
        corruptionFound = true
        needsRepair = true
    }
}
