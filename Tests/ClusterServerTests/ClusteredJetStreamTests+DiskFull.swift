import Foundation
import NATSClient
import StreamLog
import XCTest
@testable import ClusterServer

/// A replica whose stream store runs out of space while its Raft log still takes entries (the
/// Raft log's tail is preallocated; the store's is not): a node-local failure, unlike a stream
/// limit, which every replica decides alike.
extension ClusteredJetStreamTests {
    /// Node 3's store is full for five publishes, then has space again. Its replica must end with
    /// the same messages at the same sequences as the others. Before, it refused those five at
    /// apply and went on: the next publish got sequence 6 there and 11 elsewhere.
    func test_storeOutOfSpaceOnAFollower_stopsItsReplica_untilItCanStoreInOrder() async throws {
        try await outOfSpaceOnAFollower(extra: "")
    }

    /// The same for a stream whose publishes are stored one by one (discard new: no batches).
    func test_storeOutOfSpaceOnAFollower_unbatchedPublishes_stopsItsReplica() async throws {
        try await outOfSpaceOnAFollower(extra: #","discard":"new","max_msgs":1000"#)
    }

    /// A message delete that node 3's full store refuses: the replica stops instead of keeping
    /// the message the others deleted, and deletes it once it reopens with room. Before, it kept
    /// it for good (`[[4, 5], [4, 5], [5, 5]]`).
    func test_deleteRefusedByAFullStoreOnAFollower_appliesAfterTheReopen() async throws {
        let (fs, c1) = try await followerWithStoreToFill(extra: "")
        fs.spaceLimitBytes = 0
        let del = try await api(c1, "STREAM.MSG.DELETE.FULL", #"{"seq":2}"#)
        XCTAssertEqual(del["success"] as? Bool, true)
        XCTAssertTrue(waitUntil(seconds: 10) { [0, 1].allSatisfy { self.replicaState($0, "FULL") == [4, 5] } })
        XCTAssertTrue(waitUntil(seconds: 10) { self.storeStopped(2) }, "n3's replica did not stop")
        XCTAssertEqual(replicaState(2, "FULL"), [5, 5])
        fs.spaceLimitBytes = nil
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [4, 5] } },
                      "replicas \(nodes.indices.map { replicaState($0, "FULL") })")
        let second = nodes[2].js.queue.sync { nodes[2].js.cluster?.replicas["FULL"]?.stream.store.load(2)?.subject }
        XCTAssertNil(second)
    }

    /// The same on the stream's leader: its store refuses `full.6`, its group stops there, the
    /// other two elect a leader and take the rest (the publisher retries with the same
    /// `Nats-Msg-Id`); once there is room it reopens as a follower and holds every message at
    /// the sequence the others gave it.
    func test_storeOutOfSpaceOnTheLeader_othersTakeOver_itCatchesUpInOrder() async throws {
        let fs = FaultyFileSystem()
        nodes[2].js.queue.sync { nodes[2].js.fileSystemOverride = fs }
        let c1 = try await connect(0)
        try await createStream(c1, "FULL")
        for i in 1...5 { _ = try await publish(c1, "full.\(i)", "m\(i)", id: "f\(i)") }
        try await moveLeader(of: "FULL", to: 2, c1)
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [5, 5] } })
        fs.spaceLimitBytes = 0
        var seqs: [UInt64] = []
        for i in 6...10 { seqs.append(try await publish(c1, "full.\(i)", "m\(i)", id: "f\(i)")) }
        XCTAssertEqual(seqs, Array(6...10))
        XCTAssertTrue(waitUntil(seconds: 10) { [0, 1].allSatisfy { self.replicaState($0, "FULL") == [10, 10] } })
        XCTAssertTrue(waitUntil(seconds: 10) { self.storeStopped(2) }, "n3's replica did not stop")
        XCTAssertEqual(replicaState(2, "FULL"), [5, 5])
        let next = try await streamLeader(c1, "FULL")
        XCTAssertNotEqual(next, 2)
        fs.spaceLimitBytes = nil
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [10, 10] } },
                      "replicas \(nodes.indices.map { replicaState($0, "FULL") })")
        XCTAssertEqual(storedSubjects(2, "FULL", upTo: 10), (1...10).map { "full.\($0)" })
    }

    /// n3's meta log (on `metaFS`) runs out of space: its meta group stops there while n1 and
    /// n2 go on, then it reopens from its files once there is room, learns what it missed and
    /// opens its replica of a stream created meanwhile. Before, it stayed stopped until a
    /// restart, and n3 never opened LATER.
    func test_metaLogOfNode3_outOfSpace_reopensAndCatchesUp() async throws {
        let fs = try XCTUnwrap(metaFS)
        let c1 = try await connect(0)
        try await createStream(c1, "FIRST")
        XCTAssertTrue(waitUntil(seconds: 10) { self.replicaState(2, "FIRST") == [0, 0] })
        fs.spaceLimitBytes = 0
        // Meta entries until n3's log needs room it does not have (its preallocated tail first).
        for i in 0..<64 where metaRunning(2) {
            _ = try await eventually {
                try await api(c1, "STREAM.CREATE.F\(i)", #"{"name":"F\#(i)","subjects":["f\#(i).>"],"num_replicas":1}"#)
            }
        }
        XCTAssertTrue(waitUntil(seconds: 10) { !self.metaRunning(2) }, "n3's meta group did not stop")
        try await createStream(c1, "LATER")
        for i in 1...3 { _ = try await publish(c1, "later.\(i)", "m\(i)", id: "l\(i)") }
        XCTAssertNil(nodes[2].js.queue.sync { nodes[2].js.cluster?.assignments["LATER"] }, "n3 learned of LATER while stopped")
        XCTAssertFalse(metaRunning(2))

        fs.spaceLimitBytes = nil
        XCTAssertTrue(waitUntil(seconds: 30) { self.metaRunning(2) && self.replicaState(2, "LATER") == [3, 3] },
                      "n3: meta \(metaRunning(2)), LATER \(replicaState(2, "LATER"))")
        // The same meta state as the others: nothing applied twice, nothing missed.
        let names = { (i: Int) in self.nodes[i].js.queue.sync { self.nodes[i].js.cluster?.assignments.keys.sorted() ?? [] } }
        XCTAssertTrue(waitUntil(seconds: 10) { names(2) == names(0) }, "n3 \(names(2).count), n1 \(names(0).count)")
        XCTAssertTrue(waitUntil(seconds: 10) { self.metaLeaderAgreed })
    }

    /// n3's meta storage is full when meta leader stepdowns start elections: n3 must record a
    /// new term and vote (a file replace, which the log's preallocated tail does not cover), so
    /// its meta group stops during the election, the others elect a leader and go on, and n3
    /// reopens once there is room and learns what it missed. The test above fills the log with
    /// entries and does not reach that write. Without the reopen: "meta false, LATER []".
    func test_metaLogOfNode3_outOfSpaceAtAVote_reopensAndCatchesUp() async throws {
        let fs = try XCTUnwrap(metaFS)
        let c1 = try await connect(0)
        try await createStream(c1, "FIRST")
        fs.spaceLimitBytes = 0
        var stepdowns = 0
        while metaRunning(2) && stepdowns < 5 {
            stepdowns += 1
            _ = try? await api(c1, "META.LEADER.STEPDOWN")
            _ = waitUntil(seconds: 5) { !self.metaRunning(2) }
        }
        XCTAssertFalse(metaRunning(2), "n3's meta group did not stop in the election (\(stepdowns) stepdowns)")
        try await createStream(c1, "LATER")
        XCTAssertNil(nodes[2].js.queue.sync { nodes[2].js.cluster?.assignments["LATER"] })

        fs.spaceLimitBytes = nil
        XCTAssertTrue(waitUntil(seconds: 30) { self.metaRunning(2) && self.replicaState(2, "LATER") == [0, 0] },
                      "n3: meta \(metaRunning(2)), LATER \(replicaState(2, "LATER"))")
        XCTAssertTrue(waitUntil(seconds: 10) { self.metaLeaderAgreed })
    }

    /// A stream's Raft log out of space on a follower (n3's, on an in-memory file system): its
    /// group stops there, and the replica reopens from its files once there is room and catches
    /// up. Before, the reopen never came: the log reports a full disk as `RaftLogStorageError`,
    /// which the check did not know, so the replica stayed stopped until a restart.
    func test_streamRaftLogOutOfSpaceOnAFollower_reopensAndCatchesUp() async throws {
        let fs = FaultyFileSystem()
        let n3 = nodes[2].dir
        RaftStorageFactory.fileSystemHook = { d in d.hasPrefix(n3 + "/") && d.hasSuffix("/raft") && d.contains("RLOG") ? fs : nil }
        let c1 = try await connect(0)
        try await createStream(c1, "RLOG")
        for i in 1...5 { _ = try await publish(c1, "rlog.\(i)", "m\(i)", id: "r\(i)") }
        try await leaderOffNode3(c1, "RLOG")
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "RLOG") == [5, 5] } })
        fs.spaceLimitBytes = 0
        // Publishes until n3's log needs room it does not have (its preallocated tail first: a
        // step of zeros is added whenever less than 256 KiB is left, up to 512 KiB, so up to
        // 768 KiB can be left when the limit is set; 200 publishes were sometimes not enough).
        let big = String(repeating: "x", count: 2048)
        var n = 5
        while n < 600 && !groupStopped(2, "RLOG") {
            n += 1
            _ = try await publish(c1, "rlog.\(n)", big, id: "r\(n)")
        }
        XCTAssertTrue(waitUntil(seconds: 10) { self.groupStopped(2, "RLOG") }, "n3's group did not stop")
        n += 1
        _ = try await publish(c1, "rlog.\(n)", "after", id: "r\(n)")
        XCTAssertEqual(replicaState(0, "RLOG"), [UInt64(n), UInt64(n)])
        XCTAssertLessThan(replicaState(2, "RLOG").last ?? 0, UInt64(n))

        fs.spaceLimitBytes = nil
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "RLOG") == [UInt64(n), UInt64(n)] } },
                      "replicas \(nodes.indices.map { replicaState($0, "RLOG") })")
        XCTAssertEqual(storedSubjects(2, "RLOG", upTo: UInt64(n)), (1...n).map { "rlog.\($0)" })
    }

    private func metaRunning(_ i: Int) -> Bool {
        let js = nodes[i].js
        return js.queue.sync { js.cluster?.host.node(JetStreamCluster.metaGroup) != nil }
    }

    /// Node 3's stream store on an in-memory file system the test can fill; stream FULL (R3)
    /// with five messages on every replica, led by another node.
    private func followerWithStoreToFill(extra: String) async throws -> (FaultyFileSystem, NATSConnection) {
        let fs = FaultyFileSystem()
        nodes[2].js.queue.sync { nodes[2].js.fileSystemOverride = fs }
        let c1 = try await connect(0)
        try await createStream(c1, "FULL", extra: extra)
        for i in 1...5 { _ = try await publish(c1, "full.\(i)", "m\(i)", id: "f\(i)") }
        try await leaderOffNode3(c1, "FULL")
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [5, 5] } })
        return (fs, c1)
    }

    /// n3 must follow: a leader whose store is full hands its leadership off by itself, which
    /// is not what these tests look at.
    func leaderOffNode3(_ c1: NATSConnection, _ stream: String) async throws {
        for _ in 0..<10 {
            let leader = try await streamLeader(c1, stream)
            if leader != 2 { break }
            _ = try? await api(c1, "STREAM.LEADER.STEPDOWN.\(stream)")
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        let leader = try await streamLeader(c1, stream)
        XCTAssertNotEqual(leader, 2)
    }

    /// Node `i`'s replica of `stream` stopped after a store failure (its group gone there).
    func storeStopped(_ i: Int, _ stream: String = "FULL") -> Bool {
        groupStopped(i, stream) && nodes[i].js.queue.sync { nodes[i].js.cluster?.replicas[stream]?.storeFailure != nil }
    }

    /// Node `i` holds a replica of `stream` whose Raft group is gone there.
    func groupStopped(_ i: Int, _ stream: String) -> Bool {
        let js = nodes[i].js
        return js.queue.sync {
            guard let r = js.cluster?.replicas[stream] else { return false }
            return js.cluster?.host.node(r.group) == nil
        }
    }

    /// A consumer record that n3 cannot write (its disk full): its replica stops at the record's
    /// entry, stores nothing after it, and writes the record when it reopens with room. Before,
    /// the write failed and the replica applied on: n3 stored the next publish and never had
    /// the new consumer's file, which it loads its consumers from as the stream's leader.
    func test_consumerRecordRefusedOnAFollower_isWrittenAfterTheReopen() async throws {
        try await consumerRecordRefusedOnNode3(sameRound: false)
    }

    /// The same with the publish after the record applied on n3 in the same round as the record
    /// (n3's JetStream queue held while both commit): the round's records are written before its
    /// publishes are stored. Stored first, the publish would put the store past the record, and
    /// the reopen, which replays from the store's last entry, would never write the record.
    func test_consumerRecordRefusedOnAFollower_samePublishRound_isWrittenAfterTheReopen() async throws {
        try await consumerRecordRefusedOnNode3(sameRound: true)
    }

    /// The same on the stream's leader: n3 leads REC and cannot write LATE's record. Its group
    /// stops at the record's entry without answering the create; the other two elect a leader
    /// that applied the record, so the client's retried create finds the consumer there and the
    /// next publish gets sequence 4. Once it has room, n3 reopens as a follower with the record
    /// and the publish.
    func test_consumerRecordRefusedOnTheLeader_othersTakeOver_itWritesTheRecordAfterTheReopen() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "REC")
        for i in 1...3 { _ = try await publish(c1, "rec.\(i)", "m\(i)", id: "r\(i)") }
        try await moveLeader(of: "REC", to: 2, c1)
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "REC") == [3, 3] } })
        nodes[2].js.queue.sync { nodes[2].js.consumerRecordFault = .noSpace("test: the disk is full") }
        try await createDurable(c1, "REC", "LATE")
        XCTAssertTrue(waitUntil(seconds: 10) { self.storeStopped(2, "REC") }, "n3's replica did not stop")
        let next = try await streamLeader(c1, "REC")
        XCTAssertNotEqual(next, 2)
        XCTAssertTrue(recordExists(next, "REC", "LATE"))
        let seq = try await publish(c1, "rec.4", "m4", id: "r4")
        XCTAssertEqual(seq, 4)
        XCTAssertTrue(waitUntil(seconds: 10) { [0, 1].allSatisfy { self.replicaState($0, "REC") == [4, 4] } })
        XCTAssertEqual(replicaState(2, "REC"), [3, 3], "nothing after the refused record is stored")
        XCTAssertFalse(recordExists(2, "REC", "LATE"))
        nodes[2].js.queue.sync { nodes[2].js.consumerRecordFault = nil }
        XCTAssertTrue(waitUntil(seconds: 30) { self.replicaState(2, "REC") == [4, 4] && self.recordExists(2, "REC", "LATE") },
                      "n3: \(replicaState(2, "REC")), record \(recordExists(2, "REC", "LATE"))")
    }

    private func consumerRecordRefusedOnNode3(sameRound: Bool) async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "REC")
        for i in 1...3 { _ = try await publish(c1, "rec.\(i)", "m\(i)", id: "r\(i)") }
        try await leaderOffNode3(c1, "REC")
        XCTAssertTrue(waitUntil(seconds: 10) { self.nodes.indices.allSatisfy { self.replicaState($0, "REC") == [3, 3] } })
        nodes[2].js.queue.sync { nodes[2].js.consumerRecordFault = .noSpace("test: the disk is full") }
        let release = DispatchSemaphore(value: 0)
        if sameRound { nodes[2].js.queue.async { release.wait() } }
        try await createDurable(c1, "REC", "LATE") // answered once applied on the leader: before the next publish
        _ = try await publish(c1, "rec.4", "m4", id: "r4")
        release.signal()
        XCTAssertTrue(waitUntil(seconds: 10) { [0, 1].allSatisfy { self.replicaState($0, "REC") == [4, 4] } })
        XCTAssertTrue(waitUntil(seconds: 10) { self.storeStopped(2, "REC") }, "n3's replica did not stop")
        XCTAssertEqual(replicaState(2, "REC"), [3, 3], "nothing after the refused record is stored")
        XCTAssertFalse(recordExists(2, "REC", "LATE"))
        nodes[2].js.queue.sync { nodes[2].js.consumerRecordFault = nil }
        XCTAssertTrue(waitUntil(seconds: 30) { self.replicaState(2, "REC") == [4, 4] && self.recordExists(2, "REC", "LATE") },
                      "n3: \(replicaState(2, "REC")), record \(recordExists(2, "REC", "LATE"))")
    }

    /// The subjects of sequences 1...`n` in node `i`'s replica of `stream` ("-" where none).
    private func storedSubjects(_ i: Int, _ stream: String, upTo n: UInt64) -> [String] {
        let js = nodes[i].js
        return js.queue.sync {
            guard let s = js.cluster?.replicas[stream]?.stream else { return [] }
            return (1...n).map { s.store.load($0)?.subject ?? "-" }
        }
    }

    private func recordExists(_ i: Int, _ stream: String, _ consumer: String) -> Bool {
        let js = nodes[i].js
        guard let dir = js.queue.sync(execute: { js.cluster?.replicas[stream]?.stream.directory }) else { return false }
        return FileManager.default.fileExists(atPath: dir + "/consumers/\(consumer).json")
    }

    private func outOfSpaceOnAFollower(extra: String) async throws {
        let (fs, c1) = try await followerWithStoreToFill(extra: extra)
        fs.spaceLimitBytes = 0
        for i in 6...10 { _ = try await publish(c1, "full.\(i)", "m\(i)", id: "f\(i)") }
        XCTAssertTrue(waitUntil(seconds: 10) { [0, 1].allSatisfy { self.replicaState($0, "FULL") == [10, 10] } })
        // Nothing from 6 on may be stored on n3 while 6 is missing there: its group stopped.
        XCTAssertTrue(waitUntil(seconds: 10) { self.storeStopped(2) }, "n3's replica did not stop")
        XCTAssertEqual(replicaState(2, "FULL"), [5, 5])

        fs.spaceLimitBytes = nil
        _ = try await publish(c1, "full.11", "m11", id: "f11")
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "FULL") == [11, 11] } },
                      "replicas \(nodes.indices.map { replicaState($0, "FULL") })")
        XCTAssertEqual(storedSubjects(2, "FULL", upTo: 11), (1...11).map { "full.\($0)" })
    }
}
