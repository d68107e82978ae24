import Foundation
import NATSClient
import XCTest
@testable import ClusterServer

/// Publishes that reach a node before the stream leader's interest does
/// (`JetStreamService+Unrouted.swift`). The leader's ingest interest is withdrawn from the
/// other nodes on purpose (`Sublist.withdrawInterest`), which leaves them where a node is while
/// a new leader's subscription still crosses the route: the leader listens, the node does not
/// know it.
extension ClusteredJetStreamTests {
    /// The name of `stream`'s leader, once one is known.
    func streamLeader(_ c: NATSConnection, _ stream: String) async throws -> Int {
        let name = try await eventually { () async throws -> String in
            let o = try await api(c, "STREAM.INFO.\(stream)")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            return l
        }
        return try XCTUnwrap(nodes.firstIndex { $0.name == name })
    }

    /// Withdraws the ingest interest in `stream` of nodes `holders` from their peers and waits
    /// until node `j` no longer routes `subject` anywhere.
    func hideIngest(of stream: String, on holders: Int..., from j: Int, subject: String) {
        for i in holders {
            let js = nodes[i].js
            js.queue.sync {
                for sub in js.cluster?.replicas[stream]?.stream.subscriptions ?? [] { js.account.sublist.withdrawInterest(sub) }
            }
        }
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes[j].js.account.sublist.match(subject).isEmpty },
                      "node \(j) still routes \(subject)")
    }

    /// Node B (a follower of an R3 stream) does not know the leader's interest: a JetStream
    /// publish through it is forwarded to the leader and acknowledged, and a core publish
    /// without a reply is stored too. Before, the first got "no responders" and the second was
    /// dropped.
    func test_publishBeforeTheLeadersInterest_isForwardedToTheLeader() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "LATE")
        _ = try await publish(c1, "late.0", "m0", id: "l0")
        let li = try await streamLeader(c1, "LATE")
        let bi = (li + 1) % 3
        hideIngest(of: "LATE", on: li, from: bi, subject: "late.1")

        let cb = try await connect(bi)
        let ack = try await cb.jsPublish("late.1", payload: "m1", msgId: "l1", timeout: .seconds(5), noResponderRetries: 0)
        XCTAssertEqual(ack.seq, 2)
        XCTAssertEqual(ack.stream, "LATE")
        try await cb.publish("late.2", payload: "m2")
        // The forwarded publish keeps its Nats-Msg-Id: a retry is a duplicate.
        let again = try await cb.jsPublish("late.1", payload: "m1", msgId: "l1", timeout: .seconds(5), noResponderRetries: 0)
        XCTAssertEqual(again.seq, 2)
        XCTAssertEqual(again.duplicate, true)
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "LATE") == [3, 3] } },
                      "replicas \(nodes.indices.map { replicaState($0, "LATE") })")

        try await createDurable(c1, "LATE", "proc")
        let got = try await pullAcking(c1, "LATE", "proc", count: 3)
        XCTAssertEqual(got.map(\.0), ["late.0", "late.1", "late.2"])
        // A subject no stream captures still gets the no-responders status.
        do {
            _ = try await cb.request("nobody.here", payload: "x", timeout: .seconds(5))
            XCTFail("answered")
        } catch NATSError.noResponders {}
    }

    /// An R1 stream on another node: the node that does not hold it forwards to the one that does.
    func test_publishBeforeTheLeadersInterest_reachesAnR1StreamOnAnotherNode() async throws {
        let c1 = try await connect(0)
        _ = try await eventually {
            try await api(c1, "STREAM.CREATE.ONE", #"{"name":"ONE","subjects":["one.>"],"num_replicas":1}"#)
        }
        _ = try await publish(c1, "one.0", "m0", id: "o0")
        let li = try await streamLeader(c1, "ONE")
        let bi = (li + 1) % 3
        XCTAssertEqual(replicaState(bi, "ONE"), [], "node \(bi) holds no replica")
        hideIngest(of: "ONE", on: li, from: bi, subject: "one.1")

        let cb = try await connect(bi)
        let ack = try await cb.jsPublish("one.1", payload: "m1", timeout: .seconds(5), noResponderRetries: 0)
        XCTAssertEqual(ack.seq, 2)
        XCTAssertEqual(replicaState(li, "ONE"), [2, 2])
    }

    /// An R2 stream: the third node holds no replica and does not know the stream's leader. It
    /// forwards the publish to the stream's first replica, which proposes it as leader, or, as
    /// follower, relays it to its leader (one more hop). Both are acknowledged in order. Before,
    /// the publisher got "no responders".
    func test_publishBeforeTheLeadersInterest_reachesAnR2StreamOnOtherNodes_directOrRelayed() async throws {
        let c1 = try await connect(0)
        _ = try await eventually {
            try await api(c1, "STREAM.CREATE.TWO", #"{"name":"TWO","subjects":["two.>"],"num_replicas":2}"#)
        }
        _ = try await publish(c1, "two.0", "m0", id: "t0")
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.filter { self.replicaState($0, "TWO") == [1, 1] }.count == 2 })
        let holders = nodes.indices.filter { replicaState($0, "TWO") == [1, 1] }
        let bi = try XCTUnwrap(nodes.indices.first { !holders.contains($0) })
        let firstName = nodes[bi].js.queue.sync { nodes[bi].js.cluster?.assignments["TWO"]?.peers.first }
        let first = try XCTUnwrap(nodes.firstIndex { $0.name == firstName })
        let second = try XCTUnwrap(holders.first { $0 != first })
        let cb = try await connect(bi)
        for (n, leader) in [(1, first), (2, second)] {
            try await moveLeader(of: "TWO", to: leader, c1)
            let subject = "two.\(n)"
            XCTAssertTrue(waitUntil(seconds: 10) { !self.nodes[bi].js.account.sublist.match(subject).isEmpty })
            // Both: a former leader's ingest subscriptions linger for a while after a transfer.
            hideIngest(of: "TWO", on: holders[0], holders[1], from: bi, subject: subject)
            let ack = try await cb.jsPublish(subject, payload: "m\(n)", msgId: "t\(n)", timeout: .seconds(5), noResponderRetries: 0)
            XCTAssertEqual(ack.seq, UInt64(n + 1), n == 1 ? "direct" : "relayed")
        }
        XCTAssertTrue(waitUntil(seconds: 10) { holders.allSatisfy { self.replicaState($0, "TWO") == [3, 3] } })
        XCTAssertEqual(replicaState(bi, "TWO"), [])
    }

    /// Moves `stream`'s leadership to node `target` by hand (a stepdown picks the most caught-up
    /// follower) and waits until the replica there leads and stream info names it.
    func moveLeader(of stream: String, to target: Int, _ c: NATSConnection) async throws {
        let from = try await streamLeader(c, stream)
        if from != target {
            let id = nodes[target].js.queue.sync { nodes[target].js.cluster?.host.me }
            try nodes[from].js.queue.sync {
                guard let cl = nodes[from].js.cluster, let r = cl.replicas[stream], let id else { return }
                try cl.host.transferLeadership(r.group, to: id)
            }
        }
        let js = nodes[target].js
        XCTAssertTrue(waitUntil(seconds: 10) { js.queue.sync { js.cluster?.replicas[stream]?.isLeader == true } })
        let now = try await eventually { () async throws -> Int in
            let l = try await streamLeader(c, stream)
            guard l == target else { throw APIError(body: ["leader": l]) }
            return l
        }
        XCTAssertEqual(now, target)
    }

    /// A stream without a quorum: a publish through its last node finds no interest and no
    /// leader to forward to. It is answered with an error (503) within the publish timeout,
    /// never acknowledged and never left without an answer.
    func test_publishWithoutInterestOrLeader_isRefusedWith503() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "ALONE")
        _ = try await publish(c1, "alone.0", "m0", id: "a0")
        for i in [1, 2] {
            nodes[i].server.shutdown()
            nodes[i].server.waitUntilShutdown()
            nodes[i].running = false
        }
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes[0].js.account.sublist.match("alone.1").isEmpty })
        do {
            let ack = try await c1.jsPublish("alone.1", payload: "m1", timeout: .seconds(5), noResponderRetries: 0)
            XCTFail("acknowledged without a quorum: \(ack)")
        } catch let e as JetStreamAPIError {
            XCTAssertEqual([e.code, e.errCode], [503, 10008])
            XCTAssertEqual(e.errorDescription,
                           "JetStream system temporarily unavailable: stream 'ALONE' has no leader (an election, or no quorum of its replicas)")
        }
        XCTAssertEqual(replicaState(0, "ALONE"), [1, 1])
    }
}
