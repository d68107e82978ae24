import XCTest
import Raft
@testable import ClusterServer

/// How many PubAcks one publish gets across a leadership change: three Raft nodes driven
/// message by message in order (as routes deliver them), each applying committed entries and
/// answering the way `StreamReplica.raftApply` does (the proposer remembers its proposals'
/// terms, `StreamReplica.answersPublish` decides). Deterministic: no clock, no threads.
final class PubAckAnswerTests: XCTestCase {
    /// The three nodes, their storage, what each proposed and who answered which entry.
    private final class Replicas {
        var nodes: [NodeID: RaftNode] = [:]
        var storages: [NodeID: MemoryStorage] = [:]
        /// `StreamReplica.proposals` of each node.
        var proposed: [NodeID: ProposalQueue] = [:]
        /// Publish entry index -> the nodes that sent its PubAck, in order.
        var answers: [LogIndex: [NodeID]] = [:]
        var queue: [Message] = []
        var cut: Set<NodeID> = []

        init() {
            let ids = (1...3).map { NodeID(UInt64($0)) }
            var cfg = RaftConfig()
            cfg.electionTimeoutTicks = 10
            cfg.heartbeatTicks = 1
            for id in ids {
                let s = MemoryStorage(conf: ConfState(voters: ids))
                storages[id] = s
                nodes[id] = RaftNode(id: id, storage: s, config: cfg, random: SplitMix64(seed: id.rawValue))
                proposed[id] = ProposalQueue()
            }
        }

        func node(_ i: UInt64) -> RaftNode { nodes[NodeID(i)]! }

        /// Every node's Ready: persisted at once, messages queued, committed entries applied.
        func process() {
            for id in nodes.keys.sorted() {
                let n = nodes[id]!
                while n.hasReady {
                    let rd = n.ready()
                    try! storages[id]!.append(rd.entries)
                    if let hs = rd.hardState { storages[id]!.setHardState(hs) }
                    queue += rd.messages
                    for e in rd.committedEntries where e.type == .normal && e.data == Replicas.publish {
                        let proposedTerm = proposed[id]!.take(index: e.index)?.term
                        if StreamReplica.answersPublish(isRaftLeader: n.role == .leader, handedOverTerm: n.handedOverTerm,
                                                        proposedTerm: proposedTerm, entryTerm: e.term) {
                            answers[e.index, default: []].append(id)
                        }
                    }
                    n.advance(rd)
                }
            }
        }

        /// Delivers queued messages in order until none are left (bounded); a cut node
        /// neither sends nor receives.
        func deliverAll() {
            process()
            for _ in 0..<1_000 where !queue.isEmpty { deliverQueued() }
        }

        /// Delivers the messages queued now (one hop), then processes every node.
        func deliverQueued() {
            let batch = queue
            queue = []
            for m in batch where !cut.contains(m.from) && !cut.contains(m.to) { nodes[m.to]!.step(m) }
            process()
        }

        /// Ticks every node that is not cut until `done` (bounded).
        func tick(until done: () -> Bool) {
            for _ in 0..<200 where !done() {
                for (id, n) in nodes where !cut.contains(id) { n.tick() }
                deliverAll()
            }
        }

        /// Node `i` (the leader) proposes a publish and remembers it, as `StreamReplica.propose`.
        func propose(at i: UInt64) throws -> LogIndex {
            let index = try node(i).propose(Replicas.publish)
            proposed[NodeID(i)]!.append(index: index, term: node(i).term,
                                        ProposedPublish(subject: "s", reply: "r", headers: nil, payload: [], timestamp: 0))
            return index
        }

        static let publish: [UInt8] = Array("publish".utf8)
    }

    private func electedNode1() -> Replicas {
        let r = Replicas()
        r.node(1).startElection()
        r.deliverAll()
        XCTAssertEqual(r.node(1).role, .leader)
        return r
    }

    /// A graceful handover (TimeoutNow) while a publish is in flight: the target's reply that
    /// completes its catch-up also commits the publish on the old leader, which applies it as
    /// leader and answers; the TimeoutNow goes out in the same step, before the new commit
    /// index, so the new leader applies the entry only after its election.
    func test_handover_publishInFlight_answeredOnce() throws {
        let r = electedNode1()
        let index = try r.propose(at: 1)
        try r.node(1).transferLeadership(to: NodeID(2))
        r.deliverAll()
        XCTAssertEqual(r.node(2).role, .leader, "the transfer completed")
        XCTAssertEqual(r.answers[index]?.first, NodeID(1), "the old leader answers when it applies as leader")
        XCTAssertEqual(r.answers[index]?.count, 1, "answered by \(r.answers[index] ?? [])")
    }

    /// A leader cut off right after it applied (and answered) a publish, before the followers
    /// heard the commit: they elect a new leader, which cannot know the old one answered and
    /// answers too (the same PubAck: every replica decides an entry alike). A crashed leader
    /// looks the same to them, and then this answer is the only one.
    func test_electionAfterLeaderCutOff_leaderAppliedIt_answeredTwice() throws {
        let r = electedNode1()
        let index = try r.propose(at: 1)
        r.process()
        r.deliverQueued() // the appends reach both followers
        r.deliverQueued() // their replies: node 1 commits and applies the publish as leader
        XCTAssertEqual(r.answers[index], [NodeID(1)])
        r.cut = [NodeID(1)]
        r.queue = []
        r.tick { r.node(2).role == .leader || r.node(3).role == .leader }
        let newLeader = r.node(2).role == .leader ? NodeID(2) : NodeID(3)
        XCTAssertEqual(r.answers[index], [NodeID(1), newLeader])
    }

    /// A leader cut off right after proposing: the others elect a new leader, which answers as
    /// it applies the entry; the old leader, back, applies it as a follower and answers its
    /// own proposal too.
    func test_electionAfterLeaderCutOff_beforeCommit_answeredTwice() throws {
        let r = electedNode1()
        let index = try r.propose(at: 1)
        r.process()
        r.deliverQueued() // the appends reach both followers
        r.cut = [NodeID(1)]
        r.queue = []
        r.tick { r.node(2).role == .leader || r.node(3).role == .leader }
        let newLeader = r.node(2).role == .leader ? NodeID(2) : NodeID(3)
        XCTAssertEqual(r.answers[index], [newLeader])
        r.cut = []
        r.tick { r.answers[index]?.count == 2 }
        XCTAssertEqual(r.answers[index], [newLeader, NodeID(1)])
    }
}
