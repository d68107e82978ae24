/// A heartbeat stripped to what a follower needs, so thousands of groups fit in one batch.
public struct CoalescedHeartbeat: Equatable, Sendable {
    public var group: GroupID
    public var term: Term
    public var commit: LogIndex
    public var round: UInt64
    public var quiesce: Bool
}

/// Everything one node sends to one peer in one flush: a single transport message.
public struct MessageBatch: Equatable, Sendable {
    public var from: NodeID
    public var to: NodeID
    /// Messages that are not plain heartbeats (appends, votes, snapshots, reads...).
    public var messages: [Message] = []
    /// Heartbeats without a read context, one triple per group.
    public var heartbeats: [CoalescedHeartbeat] = []
    /// Heartbeat responses without a read context.
    public var heartbeatResponses: [CoalescedHeartbeat] = []

    public init(from: NodeID, to: NodeID) {
        self.from = from
        self.to = to
    }

    public var isEmpty: Bool { messages.isEmpty && heartbeats.isEmpty && heartbeatResponses.isEmpty }

    /// The individual messages again, in a fixed order (heartbeats first).
    public func expanded() -> [Message] {
        var out: [Message] = []
        out.reserveCapacity(messages.count + heartbeats.count + heartbeatResponses.count)
        for h in heartbeats {
            out.append(Message(group: h.group, from: from, to: to, term: h.term,
                               body: .heartbeat(Heartbeat(commit: h.commit, context: nil, round: h.round, quiesce: h.quiesce))))
        }
        for h in heartbeatResponses {
            out.append(Message(group: h.group, from: from, to: to, term: h.term,
                               body: .heartbeatResponse(HeartbeatResponse(context: nil, round: h.round))))
        }
        out.append(contentsOf: messages)
        return out
    }
}

/// Collects the messages of many groups and coalesces them into one batch per peer.
public struct HeartbeatCoalescer {
    private var batches: [NodeID: MessageBatch] = [:]
    public let from: NodeID

    public init(from: NodeID) { self.from = from }

    public mutating func add(_ messages: [Message]) {
        for m in messages { add(m) }
    }

    public mutating func add(_ m: Message) {
        precondition(m.from == from, "message from \(m.from) queued on \(from)")
        // Mutated in place through the dictionary: a copy taken out and written back would
        // share its arrays with the stored one, so every append would copy the whole batch.
        let fresh = MessageBatch(from: from, to: m.to)
        switch m.body {
        case .heartbeat(let h) where h.context == nil:
            batches[m.to, default: fresh].heartbeats.append(
                CoalescedHeartbeat(group: m.group, term: m.term, commit: h.commit, round: h.round, quiesce: h.quiesce))
        case .heartbeatResponse(let r) where r.context == nil:
            batches[m.to, default: fresh].heartbeatResponses.append(
                CoalescedHeartbeat(group: m.group, term: m.term, commit: .zero, round: r.round, quiesce: false))
        default:
            batches[m.to, default: fresh].messages.append(m)
        }
    }

    /// The batches collected so far, one per peer, sorted by peer.
    public mutating func drain() -> [MessageBatch] {
        let out = batches.values.filter { !$0.isEmpty }.sorted { $0.to < $1.to }
        batches.removeAll(keepingCapacity: true)
        return out
    }
}

/// The tick count of one `MultiRaft`, shared with its groups: a quiesced group is not ticked,
/// it reads the ticks it slept through from here when it wakes, and enqueues itself on
/// `woken` so the next tick visits it again.
final class HostTicks {
    var now: UInt64 = 0
    var woken: [RaftNode] = []
}

/// Hosts many groups on one node: one `tick()` for all of them, incoming batches routed to their
/// groups, and a list of the groups that have work. Idle groups quiesce (see
/// `RaftConfig.quiesceAfterIdleTicks`) and then cost nothing per tick: a tick visits only the
/// groups that are not quiesced (`ticking`); a group that wakes (any input, `wakeQuiesced`) puts
/// itself back on that list, and counts the ticks it slept through (`HostTicks`).
///
/// Not thread-safe: one owner drives it, like a `RaftNode`.
public final class MultiRaft {
    public let nodeID: NodeID
    private var groups: [GroupID: RaftNode] = [:]
    /// Groups in insertion order, for deterministic iteration.
    private var order: [RaftNode] = []
    private var dirty: [GroupID] = []
    private var isDirty: Set<GroupID> = []
    private let ticks = HostTicks()
    /// The groups the next tick visits: those not quiesced (and ones that quiesced since the
    /// last tick, dropped then). Each is on it once (`RaftNode.onTickList`).
    private var ticking: [RaftNode] = []

    public init(nodeID: NodeID) { self.nodeID = nodeID }

    public var groupCount: Int { order.count }
    /// Groups that are not quiesced.
    public var activeGroupCount: Int { order.reduce(0) { $0 + ($1.isQuiesced ? 0 : 1) } }
    /// Groups the next tick visits (woken ones included): the idle cost of this host.
    public var tickingGroupCount: Int { ticking.count + ticks.woken.count }

    public func group(_ id: GroupID) -> RaftNode? { groups[id] }

    public func addGroup(_ node: RaftNode) {
        precondition(node.id == nodeID, "group member \(node.id) hosted on \(nodeID)")
        precondition(groups[node.group] == nil, "group \(node.group) added twice")
        precondition(node.hostTicks == nil, "group \(node.group) hosted twice")
        groups[node.group] = node
        order.append(node)
        node.hostTicks = ticks
        if node.isQuiesced {
            node.quiescedAtHostTick = ticks.now
        } else {
            node.onTickList = true
            ticking.append(node)
        }
        markDirty(node.group)
    }

    @discardableResult
    public func removeGroup(_ id: GroupID) -> RaftNode? {
        guard let node = groups.removeValue(forKey: id) else { return nil }
        order.removeAll { $0 === node }
        node.hostTicks = nil // the next tick drops it from `ticking`
        return node
    }

    /// Ticks every group that is not quiesced; quiesced groups count the tick when they wake.
    public func tick() {
        ticks.now &+= 1
        for node in ticks.woken where !node.onTickList {
            node.onTickList = true
            ticking.append(node)
        }
        ticks.woken.removeAll(keepingCapacity: true)
        var kept = 0
        for i in ticking.indices {
            let node = ticking[i]
            // Removed, or quiesced since the last tick (a follower told so by its leader).
            guard !node.isQuiesced, groups[node.group] === node else {
                node.onTickList = false
                continue
            }
            node.tick()
            // Also when it just quiesced: its quiesce heartbeats must go out.
            if node.hasReady { markDirty(node.group) }
            if node.isQuiesced {
                node.onTickList = false
            } else {
                ticking[kept] = node
                kept += 1
            }
        }
        ticking.removeLast(ticking.count - kept)
    }

    /// Calls `body` for every hosted group that is not quiesced (those the next tick visits).
    public func forEachTickingGroup(_ body: (RaftNode) -> Void) {
        for node in ticking where !node.isQuiesced && groups[node.group] === node { body(node) }
        for node in ticks.woken where !node.onTickList && !node.isQuiesced && groups[node.group] === node { body(node) }
    }

    /// Delivers a batch from a peer. Returns the messages for groups this node does not host
    /// (the driver may create the group, e.g. after a placement decision, and deliver them again).
    @discardableResult
    public func receive(_ batch: MessageBatch) -> [Message] {
        var unknown: [Message] = []
        for m in batch.expanded() {
            guard let node = groups[m.group] else {
                unknown.append(m)
                continue
            }
            node.step(m)
            markDirty(m.group)
        }
        return unknown
    }

    /// Wakes every quiesced group for which `shouldWake` holds. A driver wakes those whose leader
    /// is gone (the route to it dropped, gossip declared it dead), so their followers time out
    /// and elect a new leader, and those it leads that kept no reachable majority: a quiesced
    /// leader does not tick, so it would not notice before its next write; ticking again, its
    /// check-quorum steps it down and says why (`RaftNode.lostQuorum`).
    public func wakeQuiesced(where shouldWake: (RaftNode) -> Bool) {
        for node in order where node.isQuiesced && shouldWake(node) {
            node.wake()
            markDirty(node.group)
        }
    }

    /// The driver called an input (propose, readIndex...) on a group directly.
    public func markDirty(_ id: GroupID) {
        if isDirty.insert(id).inserted { dirty.append(id) }
    }

    /// Some group was marked since the last `takeReadyGroups` (every input that can give a
    /// group a `Ready` marks it): the driver's "more to do" check, without a scan of every group.
    public var hasDirtyGroups: Bool { !dirty.isEmpty }

    /// Groups that may have a `Ready`, in the order they became dirty; clears the list.
    public func takeReadyGroups() -> [RaftNode] {
        let ids = dirty
        dirty.removeAll(keepingCapacity: true)
        isDirty.removeAll(keepingCapacity: true)
        return ids.compactMap { groups[$0] }.filter { $0.hasReady }
    }
}
