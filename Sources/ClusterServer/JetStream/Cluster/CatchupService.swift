import Foundation
import NIOCore
import Raft

/// Stream copies between replicas over the route (`CatchupWire`), both sides, on the JetStream
/// queue. A stream leader answers state and message-chunk requests from its own store; a
/// replica that needs a copy (offered a snapshot it cannot use, or a corrupt store) runs a
/// `CatchupSession`. The follower pulls one bounded chunk at a time: that is the flow control.
final class CatchupService {
    unowned let cluster: JetStreamCluster
    /// Bytes of messages per chunk the follower asks for (the leader caps what it is asked);
    /// `CLUSTERD_CATCHUP_CHUNK_BYTES` overrides it (tests use tiny chunks to interrupt a copy).
    static let chunkBytes: UInt32 = {
        if let v = ProcessInfo.processInfo.environment["CLUSTERD_CATCHUP_CHUNK_BYTES"], let n = UInt32(v), n > 0 { return n }
        return 1 << 20
    }()
    private static let maxChunkBytes = 8 << 20
    /// A stream with more interior deletions than this is not copied (the state would not fit
    /// a route frame); the replica stays out of the group and says so.
    static let maxDeleted = 4_000_000
    private var nextRequest: UInt64 = 1

    init(cluster: JetStreamCluster) {
        self.cluster = cluster
    }

    private var js: JetStreamService { cluster.js }
    /// This account's catch-up frames (streams of two accounts may share a name and group id).
    private var namespace: String { JetStreamCluster.routeNamespace(CatchupWire.namespace, account: cluster.js.account) }

    func start() {
        js.server.routeManager?.registerExtension(namespace) { [weak self] from, payload in
            guard let self else { return }
            let decoded = Result { try CatchupWire.decode(Array(payload.readableBytesView)) }
            self.js.queue.async { self.receive(decoded, from: from) }
        }
    }

    func newRequestID() -> UInt64 {
        defer { nextRequest &+= 1 }
        return nextRequest
    }

    private func receive(_ decoded: Result<CatchupFrame, Error>, from serverID: String) {
        let frame: CatchupFrame
        do { frame = try decoded.get() } catch {
            js.server.logger.warning("Dropping a malformed stream catch-up frame: \(error)")
            return
        }
        let replica = cluster.replicas.values.first { $0.group.rawValue == frame.group }
        switch frame {
        case .stateRequest, .messagesRequest:
            // Only a state carries a config (message chunks are asked for far more often).
            var readsConfig = false
            if case .stateRequest = frame { readsConfig = js.server.routeManager?.peer(serverID, announces: \.copyConfig) ?? false }
            send(serve(frame, replica, withConfig: readsConfig), toServer: serverID)
        case .state, .messages, .refused:
            // Request ids are unique on this node: only the session that asked takes it.
            replica?.catchup?.received(frame)
            replica?.rangeRepair?.received(frame)
        }
    }

    /// The answer to one request from this replica's store as applied now. A state comes only
    /// from the leader (the Raft leader, before it leads the stream too); messages from any replica whose store is not itself under repair
    /// (stored messages never change, so any holder's copy is the leader's; a range repair asks
    /// the others for what the leader lacks). `withConfig`: a state carries the config the
    /// leader's store applied (the asking node reads it).
    func serve(_ frame: CatchupFrame, _ replica: StreamReplica?, withConfig: Bool) -> CatchupFrame {
        let g = frame.group, req = frame.request
        guard let r = replica, let node = cluster.host.node(r.group) else {
            return .refused(group: g, request: req, reason: "no replica of the stream here")
        }
        if case .messagesRequest = frame {
            guard r.isLeader || (!r.needsRepair && r.catchup == nil) else {
                return .refused(group: g, request: req, reason: "this replica's store is being repaired")
            }
        } else if !r.isLeader && node.role != .leader {
            // The Raft leader serves a copy before it leads the stream: it leads the stream only
            // once an entry of its term commits, which may need the very follower asking (the
            // other one down). Its applied state is committed either way.
            return .refused(group: g, request: req, reason: "not the stream leader")
        }
        let store = r.stream.store
        switch frame {
        case let .stateRequest(_, _, minIndex):
            let applied = node.appliedIndex
            guard applied.rawValue >= minIndex else {
                return .refused(group: g, request: req, reason: "leader applied \(applied), behind \(minIndex)")
            }
            guard let term = node.term(at: applied) else {
                return .refused(group: g, request: req, reason: "no term for \(applied)")
            }
            guard let deleted = store.deletedSequences(limit: Self.maxDeleted) else {
                return .refused(group: g, request: req, reason: "more than \(Self.maxDeleted) deleted messages")
            }
            let conf = node.confState(atIndex: applied)
            let st = store.state
            var state = CatchupState(
                index: applied.rawValue, term: term.rawValue, voters: conf.voters.map(\.rawValue),
                learners: conf.learners.map(\.rawValue), firstSeq: st.firstSeq, lastSeq: st.lastSeq,
                deleted: deleted, consumers: consumerRecords(r), dedupSkews: r.stream.dedupSkews.marks)
            if st.lastSeq > 0, !state.isPresent(st.lastSeq) { state.removedLastMsgID = r.stream.lastMsgID }
            if withConfig { state.config = JSJSON.encode(r.stream.config.json) }
            return .state(group: g, request: req, state)
        case let .messagesRequest(_, _, from, to, maxBytes):
            guard from >= 1, from <= to else { return .refused(group: g, request: req, reason: "bad range") }
            let chunk = store.catchupMessages(from: from, through: to, budget: min(Int(maxBytes), Self.maxChunkBytes))
            return .messages(group: g, request: req, from: from, next: chunk.resume, chunk.messages)
        default:
            return .refused(group: g, request: req, reason: "not a request")
        }
    }

    /// The replicated consumer records on disk (what every replica holds at the applied index).
    private func consumerRecords(_ r: StreamReplica) -> [String: [UInt8]] {
        guard let dir = r.stream.directory,
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir + "/consumers") else { return [:] }
        var out: [String: [UInt8]] = [:]
        for f in names where f.hasSuffix(".json") {
            if let bytes = AtomicFile.read(dir + "/consumers/" + f) { out[String(f.dropLast(5))] = bytes }
        }
        return out
    }

    /// Sends to the node of a Raft id; false when it is not connected.
    @discardableResult
    func send(_ frame: CatchupFrame, to node: NodeID) -> Bool {
        guard let name = cluster.host.name(of: node), let id = js.server.routeManager?.peerServerIDs()[name] else { return false }
        return send(frame, toServer: id)
    }

    @discardableResult
    private func send(_ frame: CatchupFrame, toServer id: String) -> Bool {
        let bytes = CatchupWire.encode(frame)
        var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
        buf.writeBytes(bytes)
        return js.server.routeManager?.sendExtension(namespace, payload: buf, to: id) ?? false
    }
}
