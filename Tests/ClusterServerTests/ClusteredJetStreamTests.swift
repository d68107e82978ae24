import Foundation
import Logging
import NATSClient
import NIOCore
import StreamLog
import XCTest
@testable import ClusterServer

/// Three in-process clusterd nodes with JetStream (own store directory and server name each,
/// full route mesh on free loopback ports), driven by the Swift client over TCP: an R3 stream
/// is created, published to and consumed through different nodes; a stopped stream leader is
/// replaced and no acknowledged message is lost. Every wait is a bounded poll.
final class ClusteredJetStreamTests: XCTestCase {
    struct Node {
        let name: String
        let server: NATSServer
        let js: JetStreamService
        let dir: String
        var running = true
    }

    var nodes: [Node] = []
    private var connections: [NATSConnection] = []
    /// Holds a replica open (see `holdReplicaOpen`) until signalled.
    private var openGate: DispatchSemaphore?
    /// Tests named `…metaLogOfNode3…`: n3's meta log lives on this file system (they fill it).
    var metaFS: FaultyFileSystem?

    override func setUpWithError() throws {
        // A port found free can be taken before the node binds it (an outgoing connection's
        // ephemeral port): start again on new ports, up to three times.
        for attempt in 1...3 {
            do {
                try startNodes()
                break
            } catch where attempt < 3 && "\(error)".contains("Address already in use") {
                for n in nodes {
                    n.server.shutdown()
                    n.server.waitUntilShutdown()
                    try? FileManager.default.removeItem(atPath: n.dir)
                }
                nodes.removeAll()
            }
        }
        XCTAssertTrue(waitUntil(seconds: 30) { self.metaLeaderAgreed }, "no meta leader known to every node")
    }

    /// n1..n3 on free loopback ports, full route mesh, each with its own store.
    private func startNodes() throws {
        let clusterPorts = (0..<3).map { _ in freeLoopbackPort() }
        for i in 0..<3 {
            let dir = NSTemporaryDirectory() + "clustered-js-\(UUID().uuidString)"
            var o = ServerOptions()
            o.serverName = "n\(i + 1)"
            o.host = "127.0.0.1"
            o.port = -1
            o.threads = 1
            o.jetStream = true
            o.storeDirectory = dir
            o.clusterName = "jsc"
            o.clusterHost = "127.0.0.1"
            o.clusterPort = clusterPorts[i]
            o.routes = clusterPorts.map { "nats://127.0.0.1:\($0)" }
            // Tests named `…olderNode3…` start n3 announcing itself as an older clusterd would.
            if i == 2 && name.contains("olderNode3") { o.routeFeatures = RouteFeatures(deliveryStamps: false, dedupTimes: false, decidedDedup: false, copyConfig: false, markers: false, sourced: false, mirrored: false, internalFrames: false) }
            if i == 2 && name.contains("node3WithoutMirroredEntries") { o.routeFeatures.mirrored = false }
            if i == 2 && name.contains("node3WithoutInternalFrames") { o.routeFeatures.internalFrames = false }
            // Tests named `…syncInterval…` opt into `sync_interval` (an hour: only the test syncs).
            if name.contains("syncInterval") { o.jetStreamSyncIntervalSeconds = 3600 }
            // Tests named `…limitedNode3…`: n3 has `max_file_store: 100000`.
            if i == 2 && name.contains("limitedNode3") { o.maxFileStore = 100_000 }
            if i == 2 && name.contains("metaLogOfNode3") {
                let fs = FaultyFileSystem()
                metaFS = fs
                RaftStorageFactory.fileSystemHook = { d in d.hasPrefix(dir + "/") && d.hasSuffix("/_meta") ? fs : nil }
            }
            var logger = Logger(label: "n\(i + 1)")
            logger.logLevel = .critical
            let (server, js) = try startNode(o, logger)
            nodes.append(Node(name: "n\(i + 1)", server: server, js: js, dir: dir))
        }
    }

    override func tearDown() async throws {
        openGate?.signal()
        JetStreamCluster.replicaOpenHook = nil
        RaftStorageFactory.fileSystemHook = nil
        for c in connections { await c.close() }
        connections.removeAll()
        for n in nodes where n.running {
            n.server.shutdown()
            n.server.waitUntilShutdown()
        }
        for n in nodes { try? FileManager.default.removeItem(atPath: n.dir) }
        nodes.removeAll()
    }

    /// Exactly one node leads the meta group and every running node knows a leader.
    var metaLeaderAgreed: Bool {
        let running = nodes.filter(\.running)
        let states = running.map { n in n.js.queue.sync { (n.js.cluster?.isMetaLeader ?? false, n.js.cluster?.metaAvailable ?? false) } }
        return states.filter(\.0).count == 1 && states.allSatisfy(\.1)
    }

    func connect(_ i: Int) async throws -> NATSConnection {
        let c = try await NATSConnection.connect("nats://127.0.0.1:\(nodes[i].server.clientPort)")
        connections.append(c)
        return c
    }

    /// Retries `body` (a leader may be being elected: timeouts, 503, "unavailable") for at most
    /// `seconds`, then fails with the last error.
    func eventually<T>(seconds: Double = 30, _ body: () async throws -> T) async throws -> T {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do { return try await body() } catch {
                if Date() > deadline { throw error }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    struct APIError: Error { let body: [String: Any] }

    /// A JetStream API call whose reply must not carry an error.
    func api(_ c: NATSConnection, _ subject: String, _ body: String = "") async throws -> [String: Any] {
        let data = try await c.jsRequest(subject, json: body, timeout: .seconds(3))
        let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        if o["error"] != nil { throw APIError(body: o) }
        return o
    }

    func publish(_ c: NATSConnection, _ subject: String, _ payload: String, id: String) async throws -> UInt64 {
        try await eventually { try await c.jsPublish(subject, payload: payload, msgId: id, timeout: .seconds(3)).seq }
    }

    func createStream(_ c: NATSConnection, _ name: String, extra: String = "") async throws {
        _ = try await eventually {
            try await api(c, "STREAM.CREATE.\(name)",
                          #"{"name":"\#(name)","subjects":["\#(name.lowercased()).>"],"num_replicas":3\#(extra)}"#)
        }
    }

    func cluster(_ info: [String: Any]) -> (leader: String?, replicas: [String]) {
        let c = info["cluster"] as? [String: Any] ?? [:]
        let reps = (c["replicas"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        return (c["leader"] as? String, reps.sorted())
    }

    func test_r3Stream_createdOnNode2_publishedOnNode3_consumedOnNode1() async throws {
        let (c1, c2, c3) = (try await connect(0), try await connect(1), try await connect(2))
        try await createStream(c2, "ORDERS")
        for i in 1...20 {
            let seq = try await publish(c3, "orders.\(i)", "m\(i)", id: "o\(i)")
            XCTAssertEqual(seq, UInt64(i))
        }
        let info = try await eventually { () async throws -> [String: Any] in
            let o = try await api(c1, "STREAM.INFO.ORDERS")
            guard cluster(o).leader != nil else { throw APIError(body: o) }
            return o
        }
        XCTAssertEqual((info["state"] as? [String: Any])?["messages"] as? Int, 20)
        XCTAssertEqual((info["cluster"] as? [String: Any])?["name"] as? String, "jsc")
        let (leader, replicas) = cluster(info)
        let names = ["n1", "n2", "n3"]
        XCTAssertTrue(names.contains(leader ?? ""), "leader \(String(describing: leader))")
        XCTAssertEqual(replicas, names.filter { $0 != leader })

        try await createDurable(c1, "ORDERS", "proc")
        let got = try await pullAcking(c1, "ORDERS", "proc", count: 20)
        XCTAssertEqual(got.map(\.0), (1...20).map { "orders.\($0)" })
        XCTAssertEqual(got.map(\.1), (1...20).map { "m\($0)" })
    }

    /// Acks go to the consumer's node only: the stream leader subscribes `$JS.ACK.<stream>.>`,
    /// each follower routes acks to it, and no other node hears them (before, every node
    /// subscribed `$JS.ACK.>` and every ack reached all three). Acks sent through a follower
    /// still move the leader's ack floor.
    func test_acks_reachOnlyTheStreamLeader_andCountThroughAFollower() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "ACKS")
        for i in 1...5 { _ = try await publish(c1, "acks.\(i)", "m\(i)", id: "a\(i)") }
        let leader = try await eventually { () async throws -> String in
            let o = try await api(c1, "STREAM.INFO.ACKS")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            return l
        }
        let li = try XCTUnwrap(nodes.firstIndex { $0.name == leader })
        let ackSubject = "$JS.ACK.ACKS.proc.1.1.1.0.0"
        let layout = { () -> [String] in
            self.nodes.map { n in
                let subs = n.js.account.sublist.match(ackSubject).plain
                return "local \(subs.filter { $0.route == nil }.count) routed \(subs.filter { $0.route != nil }.count)"
            }
        }
        let want = nodes.indices.map { $0 == li ? "local 1 routed 0" : "local 0 routed 1" }
        XCTAssertTrue(waitUntil(seconds: 10) { layout() == want }, "ack interest per node: \(layout()), want \(want)")
        XCTAssertTrue(nodes[li].js.account.sublist.match("$JS.ACK.OTHER.proc.1.1.1.0.0").isEmpty, "another stream's acks")

        let cf = try await connect((li + 1) % 3)
        try await createDurable(cf, "ACKS", "proc")
        let acked = try await pullAcking(cf, "ACKS", "proc", count: 5).count
        XCTAssertEqual(acked, 5)
        let floor = try await eventually { () async throws -> Int in
            let o = try await api(cf, "CONSUMER.INFO.ACKS.proc")
            let f = (o["ack_floor"] as? [String: Any])?["stream_seq"] as? Int ?? 0
            guard f == 5 else { throw APIError(body: o) }
            return f
        }
        XCTAssertEqual(floor, 5, "acks sent through a follower reached the leader")
    }

    /// A mixed-version cluster, end to end: n3 announces neither dedup times nor delivery
    /// stamps on its routes (as a clusterd from before them would). A leader on n1 or n2 then
    /// writes publishes in the older entry form (tag 1, dedup on the entry's timestamp) and
    /// still deduplicates; consumer deliveries crossing to n3 go as plain frames (its fence
    /// never sees a term), while those crossing to the other, current node carry the stamp.
    func test_olderNode3_getsEntriesWithoutDedupTimes_andPlainDeliveries() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "MIX")
        // The leader must be a current node (n3 leading would write dedup times: n1 and n2 read them).
        let leader = try await eventually { () async throws -> String in
            let o = try await api(c1, "STREAM.INFO.MIX")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            if l == "n3" {
                _ = try? await api(c1, "STREAM.LEADER.STEPDOWN.MIX")
                throw APIError(body: o)
            }
            return l
        }
        let li = try XCTUnwrap(nodes.firstIndex { $0.name == leader })
        let first = try await publish(c1, "mix.a", "one", id: "same")
        let again = try await c1.jsPublish("mix.a", payload: "one", msgId: "same", timeout: .seconds(3))
        XCTAssertEqual(again.seq, first)
        XCTAssertTrue(again.duplicate, "dedup works on the older entry form")
        _ = try await publish(c1, "mix.b", "two", id: "other")
        let js = nodes[li].js
        let (tags, key): ([UInt8], String) = try js.queue.sync {
            let r = try XCTUnwrap(js.cluster?.replicas["MIX"])
            let node = try XCTUnwrap(js.cluster?.host.node(r.group))
            let entries = node.entries(from: node.firstIndex, to: node.lastIndex.next) ?? []
            return (entries.compactMap(\.data.first), r.deliveryKey)
        }
        XCTAssertTrue(tags.contains(StreamEntry.messageTag), "publishes in the older form: \(tags)")
        XCTAssertFalse(tags.contains(StreamEntry.messageDedupTag), "no dedup times while n3 cannot read them: \(tags)")
        XCTAssertFalse(tags.contains(StreamEntry.messageDecidedTag), "no leader-decided dedup while n3 cannot read it: \(tags)")

        _ = try await eventually {
            try await api(c1, "CONSUMER.DURABLE.CREATE.MIX.proc",
                          #"{"stream_name":"MIX","config":{"durable_name":"proc","ack_policy":"none"}}"#)
        }
        let current = nodes.indices.first { $0 != li && $0 != 2 }!
        for i in [2, current] {
            let c = try await connect(i)
            let inbox = c.newInbox()
            let sub = try c.subscribe(inbox)
            try await c.flush()
            try await c.publish("$JS.API.CONSUMER.MSG.NEXT.MIX.proc", payload: #"{"batch":1,"expires":2000000000}"#, reply: inbox)
            var got = 0
            for await m in sub {
                if m.status == nil { got += 1 }
                break
            }
            try sub.unsubscribe()
            XCTAssertEqual(got, 1, "a delivery reached n\(i + 1)")
        }
        XCTAssertNil(nodes[2].server.staleDeliveries.term(of: key), "n3 got plain deliver frames")
        XCTAssertNotNil(nodes[current].server.staleDeliveries.term(of: key), "the current node got stamped ones")

        // A stream copy to n3 comes without its leader's config (a frame version n3 reads): n3
        // installs it, and opens with the newest committed config as such a node did.
        let n3 = nodes[2].js
        let old = n3.queue.sync { () -> StreamReplica? in
            let r = n3.cluster?.replicas["MIX"]
            r?.needsRepair = true
            return r
        }
        XCTAssertTrue(waitUntil(seconds: 30) {
            n3.queue.sync { n3.cluster?.replicas["MIX"].map { $0 !== old && $0.stream.store.state.lastSeq == 2 } ?? false }
        }, "n3 never installed a copy")
        XCTAssertNil(StreamReplica.readAppliedConfig(directory: try XCTUnwrap(n3.streamDirectory("MIX"))), "a copy to n3 carried a config")
    }

    /// Stops node `i` and starts it again on its store, as a restarted process would.
    /// `whileStopped` runs between the stop and the start (the node's files are closed).
    func restart(_ i: Int, whileStopped: () throws -> Void = {}) throws {
        let o = nodes[i].server.options
        nodes[i].server.shutdown()
        nodes[i].server.waitUntilShutdown()
        try whileStopped()
        try startAgain(i, o)
    }

    /// Starts stopped node `i` again on its store (with `options`, by default its last ones).
    func startAgain(_ i: Int, _ options: ServerOptions? = nil) throws {
        var logger = Logger(label: nodes[i].name)
        logger.logLevel = .critical
        let (server, js) = try startNode(options ?? nodes[i].server.options, logger)
        nodes[i] = Node(name: nodes[i].name, server: server, js: js, dir: nodes[i].dir)
    }

    /// A started node, or an error after the half-started one stopped (a server dropped
    /// without a stop trips NIO's leaked-promise check and ends the whole test process).
    func startNode(_ o: ServerOptions, _ logger: Logger) throws -> (NATSServer, JetStreamService) {
        let server = NATSServer(options: o, logger: logger)
        let js = JetStreamService(server: server)
        do {
            try js.start() // before the listener opens, as clusterd's main does
            try server.start()
        } catch {
            server.shutdown()
            server.waitUntilShutdown()
            throw error
        }
        return (server, js)
    }

    /// (messages, last sequence) of node `i`'s replica of `stream`.
    func replicaState(_ i: Int, _ stream: String) -> [UInt64] {
        let js = nodes[i].js
        return js.queue.sync { js.cluster?.replicas[stream].map { [$0.stream.store.state.messages, $0.stream.store.state.lastSeq] } ?? [] }
    }

    func test_stoppedStreamLeader_newLeaderTakesWrites_noAckedMessageLost() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "KILL")
        var acked: [UInt64: String] = [:]
        for i in 1...15 { acked[try await publish(c1, "kill.x", "v\(i)", id: "k\(i)")] = "v\(i)" }
        let before = try await eventually { () async throws -> String in
            let o = try await api(c1, "STREAM.INFO.KILL")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            return l
        }
        for c in connections { await c.close() }
        connections.removeAll()
        let index = nodes.firstIndex { $0.name == before }!
        nodes[index].server.shutdown()
        nodes[index].server.waitUntilShutdown()
        nodes[index].running = false

        let survivor = try await connect(nodes.firstIndex { $0.running }!)
        for i in 16...30 { acked[try await publish(survivor, "kill.x", "v\(i)", id: "k\(i)")] = "v\(i)" }
        let info = try await eventually { try await api(survivor, "STREAM.INFO.KILL") }
        let after = cluster(info).leader
        XCTAssertNotNil(after)
        XCTAssertNotEqual(after, before)
        XCTAssertEqual((info["state"] as? [String: Any])?["messages"] as? Int, 30)
        XCTAssertEqual(acked.count, 30, "every publish got its own sequence")
        for (seq, payload) in acked.sorted(by: { $0.key < $1.key }) {
            let o = try await eventually { try await api(survivor, "STREAM.MSG.GET.KILL", #"{"seq":\#(seq)}"#) }
            let data = ((o["message"] as? [String: Any])?["data"] as? String).flatMap { Data(base64Encoded: $0) }
            XCTAssertEqual(data.map { String(decoding: $0, as: UTF8.self) }, payload, "seq \(seq)")
        }
    }

    // MARK: - replica files open off the JetStream queue

    /// Makes node `server`'s open of `stream`'s replica files wait until `openGate` is
    /// signalled; returns a semaphore signalled once that open has started.
    private func holdReplicaOpen(server: String, stream: String) -> DispatchSemaphore {
        let gate = DispatchSemaphore(value: 0), started = DispatchSemaphore(value: 0)
        openGate = gate
        JetStreamCluster.replicaOpenHook = { s, name in
            guard s == server, name == stream else { return }
            started.signal()
            gate.wait()
            gate.signal() // every later wait (there is none by design) passes too
        }
        return started
    }

    private func metaState(_ i: Int) -> (leader: Bool, term: UInt64) {
        nodes[i].js.queue.sync {
            (nodes[i].js.cluster?.isMetaLeader ?? false, nodes[i].js.cluster?.host.node(JetStreamCluster.metaGroup)?.term.rawValue ?? 0)
        }
    }

    /// While the meta leader's open of one replica's files is held (as a slow disk would hold
    /// it), the meta group keeps its leader and term and another stream is created: the open
    /// runs off the JetStream queue, which drives the meta group's ticks and messages.
    func test_heldReplicaOpen_metaLeaderKeepsLeadership_otherCreatesAnswered() async throws {
        let li = try XCTUnwrap((0..<3).first { metaState($0).leader })
        let term = metaState(li).term
        let started = holdReplicaOpen(server: nodes[li].name, stream: "SLOW")
        let c = try await connect(li)
        let slow = Task { try await self.api(c, "STREAM.CREATE.SLOW", #"{"name":"SLOW","subjects":["slow.>"],"num_replicas":3}"#) }
        XCTAssertEqual(started.wait(timeout: .now() + 30), .success, "the leader never started opening SLOW's files")

        try await createStream(c, "FAST")
        let names = try await api(c, "STREAM.NAMES")
        XCTAssertEqual(Set(names["streams"] as? [String] ?? []), ["SLOW", "FAST"])
        XCTAssertTrue(metaState(li).leader, "the meta leader lost its leadership while a replica open was held")
        XCTAssertEqual(metaState(li).term, term)
        XCTAssertTrue(nodes[li].js.queue.sync { nodes[li].js.cluster?.replicas["SLOW"] == nil }, "SLOW's open was not held")

        openGate?.signal()
        _ = try await slow.value
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes[li].js.queue.sync { self.nodes[li].js.cluster?.replicas["SLOW"] != nil } },
                      "SLOW's replica was never installed after its open finished")
    }

    /// A stream deleted while one node still opens its replica's files: that node never
    /// installs the replica, removes its files once the open finishes, and a new stream of the
    /// same name opens there afterwards.
    func test_streamDeletedWhileReplicaOpens_filesRemoved_nameReusable() async throws {
        let held = 2
        let started = holdReplicaOpen(server: nodes[held].name, stream: "GONE")
        let c = try await connect(0)
        try await createStream(c, "GONE")
        XCTAssertEqual(started.wait(timeout: .now() + 30), .success, "n3 never started opening GONE's files")
        _ = try await eventually { try await api(c, "STREAM.DELETE.GONE") }
        let js = nodes[held].js
        XCTAssertTrue(waitUntil(seconds: 30) { js.queue.sync { js.cluster?.assignments["GONE"] == nil } }, "n3 never applied the delete")

        openGate?.signal()
        let dir = try XCTUnwrap(js.streamDirectory("GONE"))
        XCTAssertTrue(waitUntil(seconds: 30) { !FileManager.default.fileExists(atPath: dir) }, "GONE's files stayed on n3")
        XCTAssertTrue(js.queue.sync { js.cluster?.openingReplicas["GONE"] == nil && js.cluster?.replicas["GONE"] == nil && js.streams["GONE"] == nil })

        _ = try await eventually {
            try await api(c, "STREAM.CREATE.GONE", #"{"name":"GONE","subjects":["again.>"],"num_replicas":3}"#)
        }
        XCTAssertTrue(waitUntil(seconds: 30) { js.queue.sync { js.streams["GONE"]?.config.subjects == ["again.>"] } },
                      "the new GONE never opened on n3")
    }

    // MARK: - idle cost

    /// Idle replicas get no per-tick work: once a stream's group quiesced and every replica
    /// joined direct gets, no replica is on its node's tick list (`tickWork`) or membership
    /// list (`membershipWork`), and no stream group is ticked by Raft (only the meta group is). A replica flagged for repair is
    /// visited again: the repair runs (a copy from the leader reopens it), and the reopened
    /// replica leaves the list once it settled. A publish wakes the group the same way.
    func test_idleReplicas_leaveTheTickList_flaggedOneIsVisitedUntilDone() async throws {
        let c = try await connect(0)
        _ = try await eventually {
            try await api(c, "STREAM.CREATE.IDLE", #"{"name":"IDLE","subjects":["idle.>"],"num_replicas":3,"allow_direct":true}"#)
        }
        _ = try await publish(c, "idle.a", "one", id: "i1")
        func settled(_ n: Node) -> Bool {
            n.js.queue.sync {
                guard let cl = n.js.cluster, let r = cl.replicas["IDLE"] else { return false }
                return !cl.tickWork.contains(r) && !cl.membershipWork.contains(r) && cl.host.multi.tickingGroupCount == 1
                    && !r.direct.subscriptions.isEmpty
            }
        }
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.allSatisfy(settled) }, "idle replicas stay on the tick list")
        let follower = nodes.first { n in n.js.queue.sync { n.js.cluster?.replicas["IDLE"]?.isLeader == false } }!
        let old = follower.js.queue.sync { () -> StreamReplica in
            let r = follower.js.cluster!.replicas["IDLE"]!
            r.needsRepair = true
            XCTAssertTrue(follower.js.cluster!.tickWork.contains(r), "flagging a repair puts the replica on the tick list")
            return r
        }
        XCTAssertTrue(waitUntil(seconds: 30) {
            follower.js.queue.sync { follower.js.cluster?.replicas["IDLE"].map { $0 !== old } ?? false }
        }, "the flagged replica was never repaired (not visited)")
        XCTAssertFalse(follower.js.queue.sync { follower.js.cluster!.tickWork.contains(old) }, "a closed replica left the list")
        XCTAssertTrue(waitUntil(seconds: 30) { settled(follower) }, "the repaired replica does not leave the tick list")
        _ = try await publish(c, "idle.b", "two", id: "i2")
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.allSatisfy(settled) }, "replicas stay on the tick list after a publish")
        let (stored, bytes, counted) = follower.js.queue.sync { () -> (UInt64?, UInt64?, UInt64?) in
            let store = follower.js.streams["IDLE"]?.store
            return (store?.state.messages, store?.state.bytes, store?.storedBytes)
        }
        XCTAssertEqual(stored, 2)
        XCTAssertEqual(counted, bytes, "the usage recount reads what the state says")
        XCTAssertGreaterThan(counted ?? 0, 0)
    }

    // MARK: - leadership handover

    /// A leadership handover meets two publishes without `Nats-Msg-Id`: one already proposed
    /// when the transfer starts, one that arrives during it (Raft takes no proposals then, so it
    /// is held). Both are acknowledged, each stored exactly once: the held one is forwarded to
    /// the new leader, the proposed one is not proposed again.
    func test_handover_publishesWithoutMessageID_areAckedOnce() async throws {
        let c = try await connect(0)
        try await createStream(c, "HAND")
        _ = try await publish(c, "hand.x", "m0", id: "h0")
        let leader = try await eventually { () async throws -> String in
            let o = try await api(c, "STREAM.INFO.HAND")
            guard let l = cluster(o).leader else { throw APIError(body: o) }
            return l
        }
        let inboxes = [c.newInbox(), c.newInbox()]
        let subs = try inboxes.map { try c.subscribe($0) }
        try await c.flush()
        let js = nodes.first { $0.name == leader }!.js
        let held: Int = try js.queue.sync {
            let r = js.cluster!.replicas["HAND"]!
            r.propose(subject: "hand.x", reply: inboxes[0], headers: nil, payload: Array("proposed".utf8))
            try r.stepDown()
            r.propose(subject: "hand.x", reply: inboxes[1], headers: nil, payload: Array("held".utf8))
            return r.held.count
        }
        XCTAssertEqual(held, 1, "the publish during the transfer is held")
        // Bounded: unsubscribing ends the loops below if an answer never comes.
        let watchdog = Task {
            try await Task.sleep(nanoseconds: 30_000_000_000)
            for sub in subs { try? sub.unsubscribe() }
        }
        defer { watchdog.cancel() }
        var seqs: [UInt64] = []
        for sub in subs {
            for await m in sub {
                let o = try JSONSerialization.jsonObject(with: Data(String(buffer: m.payload).utf8)) as? [String: Any] ?? [:]
                XCTAssertNil(o["error"], "\(o)")
                if let seq = o["seq"] as? Int { seqs.append(UInt64(seq)) }
                break
            }
        }
        XCTAssertEqual(seqs.sorted(), [2, 3])
        let info = try await eventually { () async throws -> [String: Any] in
            let o = try await api(c, "STREAM.INFO.HAND")
            guard let l = cluster(o).leader, l != leader else { throw APIError(body: o) }
            return o
        }
        XCTAssertEqual((info["state"] as? [String: Any])?["messages"] as? Int, 3, "each publish stored once")
        for (seq, want) in [(2, "proposed"), (3, "held")] {
            let o = try await api(c, "STREAM.MSG.GET.HAND", #"{"seq":\#(seq)}"#)
            let data = ((o["message"] as? [String: Any])?["data"] as? String).flatMap { Data(base64Encoded: $0) }
            XCTAssertEqual(data.map { String(decoding: $0, as: UTF8.self) }, want, "seq \(seq)")
        }
    }

    /// A create proposed again before the first proposal applied (a client's retry after a
    /// timeout or a 503): the second entry finds the stream made by the first and the meta
    /// leader answers it with the stream's info, instead of leaving the client to time out.
    func test_createProposedTwiceBeforeApply_bothAnswered() async throws {
        let li = try XCTUnwrap((0..<3).first { metaState($0).leader })
        let c = try await connect(li)
        let sub = try c.subscribe("answers.twice.*")
        try await c.flush()
        let lock = NSLock()
        nonisolated(unsafe) var answers: [String: [String: Any]] = [:]
        let collector = Task {
            for await m in sub {
                let o = (try? JSONSerialization.jsonObject(with: Data(String(buffer: m.payload).utf8))) as? [String: Any] ?? [:]
                lock.withLock { answers[m.subject] = o }
            }
        }
        defer { collector.cancel() }
        let body = Array(#"{"name":"TWICE","subjects":["twice.>"],"num_replicas":3}"#.utf8)
        let js = nodes[li].js
        try js.queue.sync {
            let cluster = try XCTUnwrap(js.cluster)
            for i in 1...2 {
                try cluster.handleMetaRequest(["STREAM", "CREATE", "TWICE"], body: body, reply: "answers.twice.\(i)",
                                              type: "io.nats.jetstream.api.v1.stream_create_response")
            }
        }
        XCTAssertTrue(waitUntil(seconds: 30) { lock.withLock { answers.count } == 2 }, "a create was never answered")
        for (subject, o) in lock.withLock({ answers }) {
            XCTAssertNil(o["error"], "\(subject): \(o)")
            XCTAssertEqual((o["config"] as? [String: Any])?["name"] as? String, "TWICE", subject)
        }
    }

    /// The meta leader loses its quorum (both followers stop) with a create just proposed:
    /// the create is answered 503 ("temporarily unavailable", retry), never left unanswered.
    func test_metaLeaderLosesQuorum_createAnswered503() async throws {
        let li = try XCTUnwrap((0..<3).first { metaState($0).leader })
        let c = try await connect(li)
        for i in 0..<3 where i != li {
            nodes[i].server.shutdown()
            nodes[i].server.waitUntilShutdown()
            nodes[i].running = false
        }
        let data = try await c.jsRequest("STREAM.CREATE.ALONE", json: #"{"name":"ALONE","subjects":["alone.>"],"num_replicas":3}"#,
                                         timeout: .seconds(20))
        let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        let e = o["error"] as? [String: Any]
        XCTAssertEqual(e?["code"] as? Int, 503, "\(o)")
        XCTAssertEqual(e?["err_code"] as? Int, 10008, "\(o)")
        // nats-server's words, then what is unavailable.
        XCTAssertEqual(e?["description"] as? String,
                       "JetStream system temporarily unavailable: the JetStream meta leader stepped down or changed, retry")
    }
}
