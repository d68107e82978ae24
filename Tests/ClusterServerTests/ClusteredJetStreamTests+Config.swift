import NATSClient
import XCTest
@testable import ClusterServer

/// Stream config updates take effect at the same point of the stream's log on every replica:
/// the limits they change decide at apply whether a publish is stored, so a replica that
/// applied an update at its own point of the meta log could store a publish its peers refused.
extension ClusteredJetStreamTests {
    /// Publishes `each` messages from each of `publishers` tasks (one at a time per task),
    /// spread over `conns`; returns how many were acknowledged.
    func publishConcurrently(_ subject: String, through conns: [NATSConnection], publishers: Int, each: Int) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            for p in 0..<publishers {
                let c = conns[p % conns.count]
                group.addTask {
                    var acked = 0
                    for i in 0..<each {
                        if (try? await c.jsPublish(subject, payload: "p\(p).\(i)", timeout: .seconds(3))) != nil { acked += 1 }
                    }
                    return acked
                }
            }
            return await group.reduce(0, +)
        }
    }

    /// The stream-log index each replica applied its last config update at, and its max_msgs.
    func configApplied(_ i: Int, _ stream: String) -> (at: UInt64?, maxMsgs: Int64)? {
        let js = nodes[i].js
        return js.queue.sync { js.cluster?.replicas[stream].map { ($0.configAppliedAt?.rawValue, $0.stream.config.maxMsgs) } }
    }

    func test_configUpdate_appliesAtTheSamePointOfTheStreamLog_onEveryReplica() async throws {
        let (c1, c2, c3) = (try await connect(0), try await connect(1), try await connect(2))
        try await createStream(c1, "CFG", extra: #","discard":"new","max_msgs":100"#)
        for i in 1...3 { _ = try await publish(c2, "cfg.\(i)", "m\(i)", id: "m\(i)") }

        let updated = try await eventually {
            try await api(c3, "STREAM.UPDATE.CFG", #"{"name":"CFG","subjects":["cfg.>"],"num_replicas":3,"discard":"new","max_msgs":4}"#)
        }
        XCTAssertEqual((updated["config"] as? [String: Any])?["max_msgs"] as? Int, 4, "the answer shows the committed config")
        let info = try await api(c2, "STREAM.INFO.CFG")
        XCTAssertEqual((info["config"] as? [String: Any])?["max_msgs"] as? Int, 4, "so does stream info, on any node")

        let sameIndex = waitUntil(seconds: 30) {
            let applied = self.nodes.indices.map { self.configApplied($0, "CFG") }
            guard let first = applied.first ?? nil, first.at != nil else { return false }
            return applied.allSatisfy { $0?.at == first.at && $0?.maxMsgs == 4 }
        }
        XCTAssertTrue(sameIndex, "every replica applied max_msgs 4 at one stream-log index: \(nodes.indices.map { configApplied($0, "CFG").map { "\($0)" } ?? "none" })")

        _ = try await publish(c2, "cfg.4", "m4", id: "m4")
        var refused: Error?
        do { _ = try await c3.jsPublish("cfg.5", payload: "m5", msgId: "m5", timeout: .seconds(3)) } catch { refused = error }
        XCTAssertNotNil(refused, "the fifth message is over the lowered limit")
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "CFG") == [4, 4] } },
                      "\(nodes.indices.map { replicaState($0, "CFG") })")
    }

    /// Publishes keep arriving through two nodes (eight in flight) while the limit is lowered to
    /// what the stream holds through the third: whichever publishes the log orders before the
    /// update are stored, the rest refused, and every replica ends with the same messages.
    func test_configUpdate_duringPublishes_leavesEveryReplicaTheSame() async throws {
        let (c1, c2, c3) = (try await connect(0), try await connect(1), try await connect(2))
        try await createStream(c1, "RACE", extra: #","discard":"new","max_msgs":1000"#)
        for i in 1...10 { _ = try await publish(c1, "race.x", "m\(i)", id: "w\(i)") }
        async let flood = publishConcurrently("race.x", through: [c1, c2], publishers: 8, each: 40)
        try await Task.sleep(nanoseconds: 50_000_000)
        _ = try await eventually {
            try await api(c3, "STREAM.UPDATE.RACE", #"{"name":"RACE","subjects":["race.>"],"num_replicas":3,"discard":"new","max_msgs":10}"#)
        }
        let stored = await flood
        let agree = waitUntil(seconds: 30) {
            let states = self.nodes.indices.map { self.replicaState($0, "RACE") }
            return states.allSatisfy { $0 == states[0] && !$0.isEmpty }
        }
        XCTAssertTrue(agree, "replicas agree: \(nodes.indices.map { replicaState($0, "RACE") })")
        XCTAssertEqual(replicaState(0, "RACE").last, UInt64(10 + stored), "every acknowledged publish is stored, nothing else")
    }

    /// Each file replica keeps the config it applied last next to its store. A replica that
    /// stopped after its store was synced for an update but before that file was written
    /// reopens with the older config and applies the update from its log again; one whose file
    /// is unreadable opens with the newest committed config.
    func test_restartedReplica_reopensWithTheConfigItsLogApplied() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "CFGR", extra: #","discard":"new","max_msgs":100"#)
        for i in 1...6 { _ = try await publish(c1, "cfgr.\(i)", "m\(i)", id: "r\(i)") }
        _ = try await eventually {
            try await api(c1, "STREAM.UPDATE.CFGR", #"{"name":"CFGR","subjects":["cfgr.>"],"num_replicas":3,"discard":"new","max_msgs":4}"#)
        }
        XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, "CFGR") == [4, 6] } },
                      "\(nodes.indices.map { replicaState($0, "CFGR") })")
        let at = configApplied(0, "CFGR")?.at
        for i in nodes.indices {
            let dir = try XCTUnwrap(nodes[i].js.streamDirectory("CFGR"))
            XCTAssertTrue(waitUntil(seconds: 30) { StreamReplica.readAppliedConfig(directory: dir)?.maxMsgs == 4 }, "node \(i)'s meta.json")
        }

        let leader = try await eventually { () async throws -> String in
            guard let l = cluster(try await api(c1, "STREAM.INFO.CFGR")).leader else { throw APIError(body: [:]) }
            return l
        }
        let followers = nodes.indices.filter { nodes[$0].name != leader }
        let (stale, garbled) = (followers[0], followers[1])
        for (i, write) in [(stale, { (dir: String) in
            var old = try XCTUnwrap(StreamReplica.readAppliedConfig(directory: dir))
            old.maxMsgs = 100
            try JetStreamService.writeMeta(config: old, created: 0, directory: dir)
        }), (garbled, { (dir: String) in
            try Data("{not json".utf8).write(to: URL(fileURLWithPath: dir + "/" + JetStreamService.metaFileName))
        })] {
            let dir = try XCTUnwrap(nodes[i].js.streamDirectory("CFGR"))
            try restart(i) { try write(dir) }
        }
        let settled = waitUntil(seconds: 30) {
            self.nodes.indices.allSatisfy { self.replicaState($0, "CFGR") == [4, 6] && self.configApplied($0, "CFGR")?.maxMsgs == 4 }
        }
        XCTAssertTrue(settled, "\(nodes.indices.map { "\(replicaState($0, "CFGR")) \(configApplied($0, "CFGR").map { "\($0)" } ?? "-")" })")
        XCTAssertEqual(configApplied(stale, "CFGR")?.at, at, "the stale replica applied the update from its log, at its index")
        var refused: Error?
        do { _ = try await c1.jsPublish("cfgr.7", payload: "m7", msgId: "r7", timeout: .seconds(3)) } catch { refused = error }
        XCTAssertNotNil(refused, "the stream is full")
    }

    /// A replica that copies the stream from its leader (here: flagged for repair) takes the
    /// config the leader's store applied at the copied index, not the newest committed one: the
    /// update's `config` op is still ahead in the log (held back on the leader here), and until
    /// it applies the copy must store what the leader stores. A copy that opened with the
    /// newest config refused the fifth message the leader stored. File and memory streams.
    func test_copyFromTheLeader_carriesTheConfigItsStoreApplied() async throws {
        let c1 = try await connect(0)
        for storage in ["file", "memory"] {
            let name = "CPY" + storage.prefix(1).uppercased(), subject = name.lowercased()
            try await createStream(c1, name, extra: #","storage":"\#(storage)","discard":"new","max_msgs":100"#)
            for i in 1...3 { _ = try await publish(c1, "\(subject).\(i)", "m\(i)", id: "\(name)\(i)") }
            let leaderName = try await eventually { () async throws -> String in
                guard let l = cluster(try await api(c1, "STREAM.INFO.\(name)")).leader else { throw APIError(body: [:]) }
                return l
            }
            let leader = try XCTUnwrap(nodes.firstIndex { $0.name == leaderName })
            let follower = nodes.indices.first { $0 != leader }!
            let ljs = nodes[leader].js
            ljs.queue.sync { ljs.cluster?.replicas[name]?.configHold = .max }

            _ = try await eventually {
                try await api(c1, "STREAM.UPDATE.\(name)",
                              #"{"name":"\#(name)","subjects":["\#(subject).>"],"num_replicas":3,"storage":"\#(storage)","discard":"new","max_msgs":4}"#)
            }
            let committed = waitUntil(seconds: 30) {
                self.nodes.allSatisfy { n in
                    n.js.queue.sync { n.js.cluster?.replicas[name].map { $0.stream.committedConfig.maxMsgs == 4 && $0.stream.config.maxMsgs == 100 } ?? false }
                }
            }
            XCTAssertTrue(committed, "\(storage): the update committed everywhere, applied nowhere")

            let fjs = nodes[follower].js
            let old = fjs.queue.sync { () -> StreamReplica? in
                let r = fjs.cluster?.replicas[name]
                r?.needsRepair = true
                return r
            }
            let copied = waitUntil(seconds: 30) {
                fjs.queue.sync { fjs.cluster?.replicas[name].map { $0 !== old && $0.stream.store.state.lastSeq == 3 } ?? false }
            }
            XCTAssertTrue(copied, "\(storage): the follower never reopened with a copy")
            XCTAssertEqual(configApplied(follower, name)?.maxMsgs, 100, "\(storage): the copy stores by the leader's applied config")
            if storage == "file", let dir = fjs.streamDirectory(name) {
                XCTAssertEqual(StreamReplica.readAppliedConfig(directory: dir)?.maxMsgs, 100, "and reopens with it")
            }

            for i in 4...5 { _ = try await publish(c1, "\(subject).\(i)", "m\(i)", id: "\(name)\(i)") }
            XCTAssertTrue(waitUntil(seconds: 30) { self.nodes.indices.allSatisfy { self.replicaState($0, name) == [5, 5] } },
                          "\(storage): \(nodes.indices.map { replicaState($0, name) })")

            ljs.queue.sync {
                guard let r = ljs.cluster?.replicas[name] else { return }
                r.configHold = nil
                r.proposeConfigIfBehind()
            }
            let applied = waitUntil(seconds: 30) {
                let a = self.nodes.indices.map { self.configApplied($0, name) }
                return a.allSatisfy { $0?.maxMsgs == 4 && $0?.at != nil && $0?.at == a[0]?.at }
            }
            XCTAssertTrue(applied, "\(storage): \(nodes.indices.map { configApplied($0, name).map { "\($0)" } ?? "-" })")
            var refused: Error?
            do { _ = try await c1.jsPublish("\(subject).6", payload: "m6", msgId: "\(name)6", timeout: .seconds(3)) } catch { refused = error }
            XCTAssertNotNil(refused, "\(storage): the stream is over its new limit")
        }
    }

    /// A new stream's first leader puts its config in the log before any publish: a replica
    /// that replays the log from its start (opening with the newest committed config) judges
    /// no publish by that one.
    func test_firstLeader_proposesItsConfigBeforeAnyPublish() async throws {
        let c1 = try await connect(0)
        try await createStream(c1, "FIRST")
        for i in 1...3 { _ = try await publish(c1, "first.\(i)", "m\(i)", id: "f\(i)") }
        let leaderName = try await eventually { () async throws -> String in
            guard let l = cluster(try await api(c1, "STREAM.INFO.FIRST")).leader else { throw APIError(body: [:]) }
            return l
        }
        let js = try XCTUnwrap(nodes.first { $0.name == leaderName }).js
        let kinds: [String] = try js.queue.sync {
            let r = try XCTUnwrap(js.cluster?.replicas["FIRST"])
            let node = try XCTUnwrap(js.cluster?.host.node(r.group))
            return (node.entries(from: node.firstIndex, to: node.lastIndex.next) ?? []).compactMap { e in
                switch try? StreamEntry.decode(e.data) {
                case .message?: return "message"
                case .op(let o)?: return o["op"] as? String
                default: return nil
                }
            }
        }
        let config = try XCTUnwrap(kinds.firstIndex(of: "config"), "\(kinds)")
        let message = try XCTUnwrap(kinds.firstIndex(of: "message"), "\(kinds)")
        XCTAssertLessThan(config, message, "\(kinds)")
    }
}
