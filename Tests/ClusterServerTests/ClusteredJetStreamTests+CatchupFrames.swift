import Foundation
import Logging
import Raft
import XCTest
@testable import ClusterServer

/// A follower far behind catches up through its route: the leader's appends to it are bounded
/// in bytes (`RaftConfig.maxInflightBytes`) and every Raft frame stays under the route's
/// 64 MiB payload limit. Before, a leader sent a lagging follower up to 256 appends of 1 MiB
/// in one frame: the follower's route refused it (`maxPayloadExceeded`), the route closed, and
/// the same frame was built again after each reconnect, so the follower never caught up.
extension ClusteredJetStreamTests {
    func test_followerBehindByMoreThanARouteFrame_catchesUp() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "BIG")
        _ = try await publish(c1, "big.0", "first", id: "b0")
        try await leaderOffNode3(c1, "BIG")
        XCTAssertTrue(waitUntil(seconds: 10) { self.replicaState(2, "BIG") == [1, 1] })
        let o = nodes[2].server.options
        nodes[2].server.shutdown()
        nodes[2].server.waitUntilShutdown()
        nodes[2].running = false
        // About 76 MiB of entries while n3 is down (below the compaction threshold: n3 needs
        // them from the log, not from a copy).
        let body = String(repeating: "b", count: 950_000)
        for i in 1...80 { _ = try await publish(c1, "big.\(i)", body, id: "b\(i)") }
        var logger = Logger(label: "n3")
        logger.logLevel = .critical
        let (server, js) = try startNode(o, logger)
        nodes[2] = Node(name: "n3", server: server, js: js, dir: nodes[2].dir)
        XCTAssertTrue(waitUntil(seconds: 60) { self.replicaState(2, "BIG") == [81, 81] },
                      "n3 did not catch up: \(replicaState(2, "BIG"))")
        for n in nodes {
            let largest = n.js.queue.sync { n.js.cluster?.host.largestFrameSent ?? 0 }
            XCTAssertLessThanOrEqual(largest, RaftHost.maxFrameBytes, "\(n.name) sent a Raft frame of \(largest) bytes")
        }
    }
}

final class RaftFrameSplitTests: XCTestCase {
    /// A batch past `maxFrameBytes` goes out as frames under it, its messages in order; a small
    /// one stays one frame.
    func test_frames_splitALargeBatchInOrder_underTheLimit() throws {
        var batch = MessageBatch(from: NodeID(1), to: NodeID(2))
        let payload = [UInt8](repeating: 7, count: 900_000)
        for i in 1...40 {
            let e = Entry(term: Term(3), index: LogIndex(UInt64(i)), data: payload)
            batch.messages.append(Message(group: GroupID(UInt64(i % 3 + 10)), from: NodeID(1), to: NodeID(2), term: Term(3),
                                          body: .appendEntries(AppendEntries(prevLogIndex: LogIndex(UInt64(i - 1)), prevLogTerm: Term(3),
                                                                             entries: [e], commit: LogIndex(0)))))
        }
        let frames = RaftHost.frames(batch)
        XCTAssertGreaterThan(frames.count, 4)
        XCTAssertTrue(frames.allSatisfy { $0.count <= RaftHost.maxFrameBytes }, "\(frames.map(\.count))")
        let decoded = try frames.map { try RaftWireCodec.decode($0) }
        XCTAssertEqual(decoded.flatMap(\.messages), batch.messages)
        XCTAssertTrue(decoded.allSatisfy { $0.from == NodeID(1) && $0.to == NodeID(2) })
        var small = batch
        small.messages = Array(batch.messages.prefix(2))
        XCTAssertEqual(RaftHost.frames(small).count, 1)
    }
}
