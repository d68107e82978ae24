import Foundation
import Raft

/// One replica's stream copy in progress (`StreamCatchup` decides, `StagedStreamCopy` stores):
/// requests go to the group's current leader one at a time; an answer that does not come
/// within `timeoutTicks` (or a refusal) is asked again, possibly of a new leader. When the
/// copy is complete its marker is written and the replica is reopened, which switches it in.
final class CatchupSession {
    unowned let replica: StreamReplica
    private var plan: StreamCatchup
    let copy: StagedCopy
    private var next: StreamCatchup.Next = .state
    private var outstanding: UInt64?
    private var sentAtTick = 0
    private var retryAtTick = 0
    private var refusalLogged = false
    private(set) var messagesCopied = 0
    /// 5 s without an answer: ask again (the frame or the route was lost).
    static let timeoutTicks = 50
    /// 1 s after a refusal (no leader, leader behind): ask again.
    static let retryTicks = 10

    /// `streamDirectory` nil: a memory stream, copied into a fresh memory store.
    init(replica: StreamReplica, minimumIndex: UInt64, streamDirectory: String?) throws {
        self.replica = replica
        plan = StreamCatchup(minimumIndex: minimumIndex)
        let compress = StreamLogStore.compresses(replica.stream.config)
        copy = try streamDirectory.map { try StagedStreamCopy(streamDirectory: $0, compress: compress) } ?? StagedMemoryCopy()
    }

    private var cluster: JetStreamCluster { replica.cluster }
    private var now: Int { cluster.ticks }

    /// Called every cluster tick: sends the next request when one is due.
    func tick() {
        if let _ = outstanding {
            if now - sentAtTick >= Self.timeoutTicks { sendNext() }
        } else if now >= retryAtTick {
            sendNext()
        }
    }

    func sendNext() {
        outstanding = nil
        guard let leader = cluster.host.node(replica.group)?.leader, leader != cluster.host.me else {
            retryAtTick = now + Self.retryTicks
            return
        }
        let id = cluster.catchup.newRequestID()
        let g = replica.group.rawValue
        let frame: CatchupFrame
        switch next {
        case .state:
            frame = .stateRequest(group: g, request: id, minIndex: plan.minimumIndex)
        case let .messages(from, to):
            frame = .messagesRequest(group: g, request: id, from: from, to: to, maxBytes: CatchupService.chunkBytes)
        case .done:
            return
        }
        if cluster.catchup.send(frame, to: leader) {
            outstanding = id
            sentAtTick = now
        } else {
            retryAtTick = now + Self.retryTicks
        }
    }

    /// An answer from the leader; stale answers (an earlier request) are ignored.
    func received(_ frame: CatchupFrame) {
        guard frame.request == outstanding else { return }
        outstanding = nil
        do {
            switch frame {
            case let .refused(_, _, reason):
                if !refusalLogged {
                    refusalLogged = true
                    replica.cluster.js.server.logger.warning("Stream '\(replica.name)': catch-up request refused (\(reason)); retrying")
                }
                retryAtTick = now + Self.retryTicks
                return
            case let .state(_, _, s):
                let (ops, n) = try plan.received(state: s)
                try apply(ops)
                try advance(n)
            case let .messages(_, _, from, nextSeq, msgs):
                let (ops, n) = try plan.received(messages: msgs, from: from, next: nextSeq)
                try apply(ops)
                try advance(n)
            default:
                return
            }
        } catch {
            replica.catchupFailed(error)
        }
    }

    private func apply(_ ops: [StreamCatchup.Op]) throws {
        for op in ops {
            if case .append = op { messagesCopied += 1 }
            try copy.apply(op)
        }
    }

    private func advance(_ n: StreamCatchup.Next) throws {
        next = n
        if case let .done(state) = n {
            try copy.commit(state)
            replica.catchupFinished(state, messages: messagesCopied)
            return
        }
        // A state that is below what we applied (a leader still applying) is asked again later.
        if case .state = n, plan.target == nil {
            retryAtTick = now + Self.retryTicks
            return
        }
        sendNext()
    }

    /// Stops (replica closed or failed); the staged files are discarded by the next open.
    func abandon() {
        outstanding = nil
        copy.abandon()
    }
}
