import Raft
import XCTest
@testable import ClusterServer

/// The pure parts of per-account JetStream: which accounts are served, store directory names,
/// limit checks and the merged `/jsz`.
final class AccountJetStreamLogicTests: XCTestCase {
    private func account(_ name: String, _ js: AccountJetStreamLimits?) -> AccountConfig {
        var a = AccountConfig(name: name)
        a.jetStream = js
        return a
    }

    func testPlanWithoutAccountsServesGlobalOnly() {
        let p = JetStreamAccountPlan(accounts: [])
        XCTAssertEqual(p.served, [.init(account: "$G", limits: nil)])
        XCTAssertEqual(p.refused, [])
    }

    func testPlanWithAccountsServesOnlyJetStreamAccounts() {
        var l = AccountJetStreamLimits()
        l.maxStreams = 2
        let p = JetStreamAccountPlan(accounts: [account("A", AccountJetStreamLimits()), account("N", nil), account("B", l)])
        XCTAssertEqual(p.served.map(\.account), ["A", "B"])
        XCTAssertEqual(p.served[1].limits?.maxStreams, 2)
        // As nats-server: $G has no JetStream once accounts are configured.
        XCTAssertEqual(p.refused, ["$G", "N"])
    }

    func testDirectoryNamesCannotEscapeOrCollide() {
        XCTAssertEqual(AccountDirectoryName.encode("ORDERS_1-x"), "ORDERS_1-x")
        XCTAssertEqual(AccountDirectoryName.encode(".."), "%2E%2E")
        XCTAssertEqual(AccountDirectoryName.encode("a/b"), "a%2Fb")
        XCTAssertEqual(AccountDirectoryName.encode("a%2Fb"), "a%252Fb")
        XCTAssertEqual(AccountDirectoryName.encode("é"), "%C3%A9")
        let names = ["a/b", "a%2Fb", "a.b", "a_b", "A/B", ".", "..", "$SYS"]
        XCTAssertEqual(Set(names.map(AccountDirectoryName.encode)).count, names.count)
        for n in names { XCTAssertFalse(AccountDirectoryName.encode(n).contains("/")) }
    }

    private func stream(_ storage: StreamConfig.Storage, maxBytes: Int64, replicas: Int = 1, name: String = "S") -> StreamConfig {
        var c = StreamConfig(name: name)
        c.storage = storage
        c.maxBytes = maxBytes
        c.numReplicas = replicas
        return c
    }

    func testStreamLimits() {
        var l = AccountJetStreamLimits()
        l.maxStreams = 1
        l.maxMemory = 1_000
        l.maxStorage = 2_000
        XCTAssertNil(l.refusal(forStream: stream(.file, maxBytes: -1), isUpdate: false, streamCount: 0, reservedByOthers: 0))
        XCTAssertEqual(l.refusal(forStream: stream(.file, maxBytes: -1), isUpdate: false, streamCount: 1, reservedByOthers: 0),
                       .maxStreamsReached)
        // An update is not a new stream.
        XCTAssertNil(l.refusal(forStream: stream(.file, maxBytes: 2_000), isUpdate: true, streamCount: 1, reservedByOthers: 0))
        XCTAssertEqual(l.refusal(forStream: stream(.file, maxBytes: 2_001), isUpdate: true, streamCount: 1, reservedByOthers: 0)?.errCode,
                       10047)
        l.maxStreams = -1
        XCTAssertEqual(l.refusal(forStream: stream(.file, maxBytes: 600), isUpdate: false, streamCount: 3, reservedByOthers: 1_500)?.errCode,
                       10047)
        XCTAssertNil(l.refusal(forStream: stream(.file, maxBytes: 500), isUpdate: false, streamCount: 3, reservedByOthers: 1_500))
        XCTAssertEqual(l.refusal(forStream: stream(.memory, maxBytes: 1_001), isUpdate: false, streamCount: 0, reservedByOthers: 0),
                       .memoryResources)
        // Fully reserved: even a stream without max_bytes counts one byte (nats-server).
        XCTAssertEqual(l.refusal(forStream: stream(.memory, maxBytes: -1), isUpdate: false, streamCount: 1, reservedByOthers: 1_000),
                       .memoryResources)
        // Hostile sizes saturate instead of wrapping into "fits".
        XCTAssertNotNil(l.refusal(forStream: stream(.file, maxBytes: .max), isUpdate: false, streamCount: 0, reservedByOthers: .max))
        XCTAssertNil(AccountJetStreamLimits().refusal(forStream: stream(.file, maxBytes: .max), isUpdate: false,
                                                      streamCount: 1_000, reservedByOthers: .max))
    }

    /// nats-server 2.15.1 in a cluster (checked by Tests/compat/test_cluster_account_limits.py):
    /// max_bytes counts once per replica, each stream with its own replicas.
    func testReservationsCountEveryReplica() {
        var l = AccountJetStreamLimits()
        l.maxStorage = 1_000
        l.maxMemory = 100
        XCTAssertEqual(AccountJetStreamLimits.reservation(maxBytes: 300, replicas: 3), 900)
        XCTAssertEqual(AccountJetStreamLimits.reservation(maxBytes: -1, replicas: 3), 0)
        XCTAssertEqual(AccountJetStreamLimits.reservation(maxBytes: .max / 2, replicas: 5), .max, "saturates")
        XCTAssertEqual(l.refusal(forStream: stream(.file, maxBytes: 334, replicas: 3), isUpdate: false, streamCount: 0,
                                 reservedByOthers: 0)?.errCode, 10047)
        XCTAssertNil(l.refusal(forStream: stream(.file, maxBytes: 333, replicas: 3), isUpdate: false, streamCount: 0, reservedByOthers: 0))
        XCTAssertEqual(l.refusal(forStream: stream(.memory, maxBytes: 34, replicas: 3), isUpdate: false, streamCount: 0,
                                 reservedByOthers: 0), .memoryResources)
        // Others: an R1 stream of 400 and an R3 of 150 reserve 850; an R3 of 300 in memory does not count.
        let others = [stream(.file, maxBytes: 400, name: "A"), stream(.file, maxBytes: 150, replicas: 3, name: "B"),
                      stream(.memory, maxBytes: 30, replicas: 3, name: "M"), stream(.file, maxBytes: -1, replicas: 3, name: "N")]
        XCTAssertEqual(AccountJetStreamLimits.reservation(by: others, .file, except: nil), 850)
        XCTAssertEqual(AccountJetStreamLimits.reservation(by: others, .file, except: "B"), 400)
        XCTAssertEqual(AccountJetStreamLimits.reservation(by: others, .memory, except: nil), 90)
        // Account info reports the plain sum.
        XCTAssertEqual(AccountJetStreamLimits.reserved(by: others, .file), 550)
        XCTAssertEqual(AccountJetStreamLimits.reserved(by: others, .memory), 30)
        // A create without max_bytes counts one byte per replica; an update only what max_bytes reserves.
        XCTAssertEqual(l.refusal(forStream: stream(.file, maxBytes: -1, replicas: 3), isUpdate: false, streamCount: 0,
                                 reservedByOthers: 998)?.errCode, 10047)
        XCTAssertNil(l.refusal(forStream: stream(.file, maxBytes: -1, replicas: 1), isUpdate: false, streamCount: 0, reservedByOthers: 999))
        XCTAssertNil(l.refusal(forStream: stream(.file, maxBytes: -1, replicas: 3), isUpdate: true, streamCount: 1, reservedByOthers: 1_000))
        XCTAssertEqual(l.refusal(forStream: stream(.file, maxBytes: -1, replicas: 3), isUpdate: true, streamCount: 1,
                                 reservedByOthers: 1_001)?.errCode, 10047)
    }

    func testPublishCountsTheMessageOncePerReplica() {
        var l = AccountJetStreamLimits()
        l.maxStorage = 1_000
        XCTAssertFalse(l.wouldExceed(storage: .file, used: 700, adding: 100, replicas: 3))
        XCTAssertTrue(l.wouldExceed(storage: .file, used: 701, adding: 100, replicas: 3))
        XCTAssertTrue(l.wouldExceed(storage: .file, used: 0, adding: .max / 2, replicas: 3), "overflow is over")
    }

    func testConsumerAndPublishLimits() {
        var l = AccountJetStreamLimits()
        l.maxConsumers = 2
        l.maxStorage = 100
        XCTAssertNil(l.refusal(forConsumerWith: 1))
        XCTAssertEqual(l.refusal(forConsumerWith: 2), .maxConsumers)
        XCTAssertFalse(l.wouldExceed(storage: .file, used: 60, adding: 40))
        XCTAssertTrue(l.wouldExceed(storage: .file, used: 60, adding: 41))
        XCTAssertTrue(l.wouldExceed(storage: .file, used: .max, adding: 1))
        XCTAssertFalse(l.wouldExceed(storage: .memory, used: .max - 1, adding: 1), "memory is unlimited here")
    }

    func testMergedJszSumsAccounts() {
        let a: [String: Any] = ["server_id": "X", "streams": 1, "consumers": 2, "memory": UInt64(10), "storage": UInt64(0),
                                "messages": UInt64(3), "bytes": UInt64(10), "accounts": 1, "reserved_memory": Int64(5),
                                "reserved_storage": Int64(0), "api": ["level": 1, "total": 4, "errors": 1],
                                "account_details": [["name": "A"]]]
        var b = a
        b["streams"] = 2
        b["api"] = ["level": 1, "total": 6, "errors": 0]
        b["account_details"] = [["name": "B"]]
        let m = JetStreamAccounts.mergeJsz([a, b], base: [:])
        XCTAssertEqual(m["server_id"] as? String, "X")
        XCTAssertEqual(m["streams"] as? Int64, 3)
        XCTAssertEqual(m["memory"] as? Int64, 20)
        XCTAssertEqual(m["accounts"] as? Int64, 2)
        XCTAssertEqual((m["api"] as? [String: Any])?["total"] as? Int64, 10)
        XCTAssertEqual((m["account_details"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["A", "B"])
        let empty = JetStreamAccounts.mergeJsz([], base: ["server_id": "Y"])
        XCTAssertEqual(empty["server_id"] as? String, "Y")
        XCTAssertEqual(empty["streams"] as? Int, 0)
    }
}

/// The running per-kind byte totals behind the account storage check.
final class AccountUsageLedgerTests: XCTestCase {
    func testRecordReplacesAStreamsSizeAndMovesItBetweenKinds() {
        var l = AccountUsageLedger([("A", .file, 100), ("B", .memory, 40), ("C", .file, 5)])
        XCTAssertEqual(l.total(.file), 105)
        XCTAssertEqual(l.total(.memory), 40)
        l.record("A", .file, 150)
        XCTAssertEqual(l.total(.file), 155)
        l.record("A", .file, 0)
        XCTAssertEqual(l.total(.file), 5)
        // A stream re-created under the same name with the other storage kind.
        l.record("C", .memory, 7)
        XCTAssertEqual(l.total(.file), 0)
        XCTAssertEqual(l.total(.memory), 47)
    }
}

/// Other nodes' usage reports: the wire form and the table the publish check reads.
final class RemoteAccountUsageTests: XCTestCase {
    func testReportRoundTripsAndRejectsMalformedFrames() throws {
        let r = AccountUsageReport(node: "n2", memory: 7, file: .max)
        XCTAssertEqual(try AccountUsageReport.decode(r.encode()), r)
        let bytes = r.encode()
        XCTAssertThrowsError(try AccountUsageReport.decode(Array(bytes.dropLast())))
        XCTAssertThrowsError(try AccountUsageReport.decode(bytes + [0]))
        XCTAssertThrowsError(try AccountUsageReport.decode([3] + bytes.dropFirst()), "unknown version")
        XCTAssertThrowsError(try AccountUsageReport.decode([2] + bytes.dropFirst()), "version 2 without its limits")
        XCTAssertThrowsError(try AccountUsageReport.decode(AccountUsageReport(node: "", memory: 0, file: 0).encode()))
        let long = String(repeating: "n", count: AccountUsageReport.maxNodeNameBytes + 1)
        XCTAssertThrowsError(try AccountUsageReport.decode(AccountUsageReport(node: long, memory: 0, file: 0).encode()))
        XCTAssertThrowsError(try AccountUsageReport.decode([]))
        // A length field claiming more than the frame holds.
        XCTAssertThrowsError(try AccountUsageReport.decode([1, 0xFF, 0xFF, 0xFF, 0x7F, 0x6E]))
    }

    func testReportsReplaceEachNodesFiguresAndExpire() {
        var u = RemoteAccountUsage()
        u.record(.init(node: "n2", memory: 10, file: 100), tick: 0)
        u.record(.init(node: "n3", memory: 1, file: 50), tick: 5)
        XCTAssertEqual(u.total(.file), 150)
        XCTAssertEqual(u.total(.memory), 11)
        u.record(.init(node: "n2", memory: 0, file: 30), tick: 8) // absolute, not added
        XCTAssertEqual(u.total(.file), 80)
        u.expire(now: 104, expiryTicks: 100) // n3 reported at 5: silent for 99 ticks, kept
        XCTAssertEqual(u.nodes, ["n2", "n3"])
        u.expire(now: 106, expiryTicks: 100)
        XCTAssertEqual(u.nodes, ["n2"])
        XCTAssertEqual(u.total(.file), 30)
        u.forget("n2")
        XCTAssertEqual(u.total(.file), 0)
        XCTAssertEqual(u.total(.memory), 0)
    }

    func testHostileFiguresSaturateAndTheTableIsBounded() {
        var u = RemoteAccountUsage()
        u.record(.init(node: "a", memory: .max, file: .max), tick: 0)
        u.record(.init(node: "b", memory: 5, file: 5), tick: 0)
        XCTAssertEqual(u.total(.file), .max)
        var l = AccountJetStreamLimits()
        l.maxStorage = 1 << 40
        XCTAssertTrue(l.wouldExceed(storage: .file, used: u.total(.file), adding: 1, replicas: 3))
        u = RemoteAccountUsage()
        for i in 0..<RemoteAccountUsage.maxNodes { XCTAssertTrue(u.record(.init(node: "n\(i)", memory: 0, file: 1), tick: 0)) }
        XCTAssertFalse(u.record(.init(node: "extra", memory: 0, file: 1), tick: 0))
        XCTAssertTrue(u.record(.init(node: "n0", memory: 0, file: 2), tick: 1), "a known node still updates")
        XCTAssertEqual(u.total(.file), UInt64(RemoteAccountUsage.maxNodes) + 1)
    }
}

/// What an account without JetStream is answered, per API subject (as nats-server 2.15.1).
final class JetStreamRefusalTests: XCTestCase {
    func testRefusalKinds() {
        func kind(_ s: String) -> JetStreamAccounts.Refusal { JetStreamAccounts.refusal(for: s.split(separator: ".").map(String.init)) }
        XCTAssertEqual(kind("INFO"), .error)
        XCTAssertEqual(kind("STREAM.CREATE.X"), .error)
        XCTAssertEqual(kind("STREAM.LIST"), .error)
        XCTAssertEqual(kind("STREAM.MSG.GET.X"), .error)
        XCTAssertEqual(kind("CONSUMER.DURABLE.CREATE.X.Y"), .error)
        XCTAssertEqual(kind("CONSUMER.NAMES.X"), .error)
        XCTAssertEqual(kind("DIRECT.GET.X"), .noResponders)
        XCTAssertEqual(kind("CONSUMER.MSG.NEXT.X.Y"), .noResponders)
        XCTAssertEqual(kind("BOGUS"), .none)
        XCTAssertEqual(kind("STREAM.BOGUS.X"), .none)
        XCTAssertEqual(kind("INFO.X"), .none)
    }

    func testStreamAssignmentRecordsItsAccountAndOldOnesMeanGlobal() throws {
        let cfg = try StreamConfig.decode(JSONObject(["name": "S", "subjects": ["s"]], typeName: "StreamConfig"))
        let a = StreamAssignment(account: "B", config: cfg, peers: ["n1"], ids: [NodeID(7)], group: 100, created: 1)
        XCTAssertEqual(try StreamAssignment.decode(JSONObject(a.json, typeName: "StreamAssignment")).account, "B")
        var old = a.json
        old.removeValue(forKey: "account")
        XCTAssertEqual(try StreamAssignment.decode(JSONObject(old, typeName: "StreamAssignment")).account, "$G")
    }

    /// The server's limits over every account on the node (`NodeStoreUsage`).
    func testNodeStoreUsage_countsEveryAccountButTheAskersOwnReport() {
        let u = NodeStoreUsage(maxMemory: -1, maxFile: 1_000)
        // The objects stay alive: a freed one's address (its identifier) can be reused.
        let objects = (NSObject(), NSObject())
        let a = ObjectIdentifier(objects.0), b = ObjectIdentifier(objects.1)
        XCTAssertTrue(u.isLimited)
        XCTAssertNil(u.publishRefusal(.memory, adding: .max, for: a, own: .max), "no memory limit")
        u.report(a, .init(memory: 0, file: 600, reservedMemory: 0, reservedFile: 700))
        // b's own bytes are passed in; a's report counts.
        XCTAssertNil(u.publishRefusal(.file, adding: 100, for: b, own: 300))
        XCTAssertEqual(u.publishRefusal(.file, adding: 101, for: b, own: 300)?.errCode, 10023)
        XCTAssertEqual(u.publishRefusal(.file, adding: 101, for: b, own: 300)?.code, 503)
        // a's stale report is replaced by its current bytes.
        XCTAssertNil(u.publishRefusal(.file, adding: 1_000, for: a, own: 0))
        // Reservations: a reserves 700 of 1,000.
        XCTAssertNil(u.streamRefusal(.file, maxBytes: 300, for: b, ownOthers: 0))
        XCTAssertEqual(u.streamRefusal(.file, maxBytes: 301, for: b, ownOthers: 0)?.errCode, 10047)
        XCTAssertEqual(u.streamRefusal(.file, maxBytes: 1, for: b, ownOthers: 300)?.errCode, 10047)
        XCTAssertNil(u.streamRefusal(.file, maxBytes: 1_000, for: a, ownOthers: 0), "a's own report is not counted")
        XCTAssertNil(u.streamRefusal(.memory, maxBytes: .max, for: b, ownOthers: 0))
        u.remove(a)
        XCTAssertNil(u.publishRefusal(.file, adding: 700, for: b, own: 300))
        XCTAssertNil(NodeStoreUsage(maxMemory: -1, maxFile: -1).publishRefusal(.file, adding: .max, for: a, own: .max))
        XCTAssertFalse(NodeStoreUsage(maxMemory: -1, maxFile: -1).isLimited)
        withExtendedLifetime(objects) {}
    }

    /// What the limit leaves for one account beside the others' reservations (the limit a node
    /// announces to that account's meta leader), and limits changed by a reload.
    func testNodeStoreUsage_roomAndReloadedLimits() {
        let u = NodeStoreUsage(maxMemory: -1, maxFile: 1_000)
        let objects = (NSObject(), NSObject(), NSObject())
        let a = ObjectIdentifier(objects.0), b = ObjectIdentifier(objects.1), c = ObjectIdentifier(objects.2)
        XCTAssertEqual(u.room(.file, for: a), 1_000)
        XCTAssertEqual(u.room(.memory, for: a), -1, "no memory limit")
        u.report(a, .init(memory: 0, file: 900, reservedMemory: 50, reservedFile: 300))
        u.report(b, .init(memory: 0, file: 0, reservedMemory: 0, reservedFile: 500))
        XCTAssertEqual(u.room(.file, for: a), 500, "b's reservation, not a's own nor anyone's stored bytes")
        XCTAssertEqual(u.room(.file, for: b), 700)
        XCTAssertEqual(u.room(.file, for: c), 200)
        u.report(b, .init(memory: 0, file: 0, reservedMemory: 0, reservedFile: .max))
        XCTAssertEqual(u.room(.file, for: a), 0, "over-reserved: nothing left, never negative")
        XCTAssertEqual(u.room(.file, for: c), 0)
        let before = u.generation
        u.setLimits(maxMemory: 100, maxFile: -7)
        XCTAssertNotEqual(u.generation, before)
        XCTAssertEqual(u.maxFile, -1, "any negative limit is none")
        XCTAssertEqual(u.room(.file, for: a), -1)
        XCTAssertEqual(u.room(.memory, for: b), 50)
        XCTAssertNil(u.publishRefusal(.file, adding: .max, for: c, own: 0))
        XCTAssertEqual(u.publishRefusal(.memory, adding: 101, for: c, own: 0)?.errCode, 10023)
        XCTAssertTrue(u.isLimited)
        // The publish path's check-and-report: a refused publish leaves the report alone.
        u.report(a, .init(memory: 60, file: 0, reservedMemory: 0, reservedFile: 0))
        XCTAssertEqual(u.admit(.memory, adding: 50, for: b, own: 0, reporting: .init(memory: 50, file: 0))?.errCode, 10023)
        XCTAssertNil(u.publishRefusal(.memory, adding: 40, for: c, own: 0), "b's refused bytes were not reported")
        XCTAssertNil(u.admit(.memory, adding: 40, for: b, own: 0, reporting: .init(memory: 40, file: 0)))
        XCTAssertEqual(u.publishRefusal(.memory, adding: 1, for: c, own: 0)?.errCode, 10023, "b's admitted bytes were reported")
        u.setLimits(maxMemory: -1, maxFile: -1)
        XCTAssertFalse(u.isLimited)
        withExtendedLifetime(objects) {}
    }

    func testNodeStoreUsage_hostileSizesDoNotWrapIntoFits() {
        let u = NodeStoreUsage(maxMemory: 100, maxFile: 0)
        let object = NSObject()
        let a = ObjectIdentifier(object)
        XCTAssertTrue(NodeStoreUsage.exceeds(limit: 100, used: .max, adding: 1))
        XCTAssertTrue(NodeStoreUsage.exceeds(limit: 100, used: 1, adding: .max))
        XCTAssertFalse(NodeStoreUsage.exceeds(limit: 100, used: 40, adding: 60))
        XCTAssertEqual(u.streamRefusal(.memory, maxBytes: .max, for: a, ownOthers: .max)?.errCode, 10028)
        XCTAssertEqual(u.streamRefusal(.memory, maxBytes: 1, for: a, ownOthers: 100)?.errCode, 10028)
        XCTAssertNil(u.streamRefusal(.memory, maxBytes: 0, for: a, ownOthers: 100))
        XCTAssertEqual(u.publishRefusal(.file, adding: 1, for: a, own: 0)?.errCode, 10023, "max_file_store 0 stores nothing")
        withExtendedLifetime(object) {}
    }

    /// Version 2 carries the sender's server limits (sent in a namespace of its own); version 1
    /// reports leave known limits alone, which expire when no version 2 came for a while.
    func testAccountUsageReport_carriesServerLimits() throws {
        let plain = AccountUsageReport(node: "n2", memory: 1, file: 2)
        XCTAssertEqual(plain.encode().first, 1)
        let limited = AccountUsageReport(node: "n2", memory: 1, file: 2, limits: .init(memory: -1, file: 100_000))
        XCTAssertEqual(limited.encode().first, 2)
        XCTAssertEqual(try AccountUsageReport.decode(limited.encode()), limited)
        // A hostile negative limit is read as none, never as a huge unsigned one.
        var hostile = limited.encode()
        let at = hostile.count - 8
        for k in 0..<8 { hostile[at + k] = k == 7 ? 0x80 : 0 }
        XCTAssertEqual(try AccountUsageReport.decode(hostile).limits?.file, -1)
        var remote = RemoteAccountUsage()
        remote.record(limited, tick: 0)
        XCTAssertEqual(remote.limit(of: "n2", .file), 100_000)
        XCTAssertEqual(remote.limit(of: "n2", .memory), -1)
        XCTAssertEqual(remote.limit(of: "n9", .file), -1)
        remote.record(plain, tick: 50)
        XCTAssertEqual(remote.limit(of: "n2", .file), 100_000, "a version 1 report does not clear them")
        remote.record(plain, tick: 150)
        remote.expire(now: 150, expiryTicks: 100)
        XCTAssertEqual(remote.limit(of: "n2", .file), -1, "limits not announced again for expiryTicks are dropped")
        XCTAssertEqual(remote.total(.file), 2, "while the node's usage still counts")
        remote.record(limited, tick: 160)
        remote.forget("n2")
        XCTAssertEqual(remote.limit(of: "n2", .file), -1)
    }

    func testPlacementReservedOnAServer_andTheFitRule() throws {
        func a(_ name: String, _ peers: [String], maxBytes: Int, memory: Bool = false) throws -> StreamAssignment {
            var o: [String: Any] = ["name": name, "subjects": [name.lowercased()], "max_bytes": maxBytes, "num_replicas": peers.count]
            if memory { o["storage"] = "memory" }
            let cfg = try StreamConfig.decode(JSONObject(o, typeName: "StreamConfig"))
            return StreamAssignment(account: "$G", config: cfg, peers: peers, ids: peers.indices.map { NodeID(UInt64($0 + 1)) }, group: 1, created: 1)
        }
        let all = [try a("A", ["n1", "n2", "n3"], maxBytes: 100), try a("B", ["n3"], maxBytes: 50),
                   try a("C", ["n1"], maxBytes: -1), try a("D", ["n3"], maxBytes: 7, memory: true),
                   try a("E", ["n3"], maxBytes: 5_000_000_000_000_000_000), try a("F", ["n3"], maxBytes: 5_000_000_000_000_000_000)]
        XCTAssertEqual(Placement.reserved(on: "n1", .file, in: all), 100)
        XCTAssertEqual(Placement.reserved(on: "n3", .file, in: all), .max, "saturates")
        XCTAssertEqual(Placement.reserved(on: "n3", .memory, in: all), 7)
        XCTAssertEqual(Placement.reserved(on: "n9", .file, in: all), 0)
        XCTAssertTrue(NodeStoreUsage.fits(maxBytes: 40, reserved: 60, limit: 100))
        XCTAssertFalse(NodeStoreUsage.fits(maxBytes: 41, reserved: 60, limit: 100))
        XCTAssertFalse(NodeStoreUsage.fits(maxBytes: 0, reserved: 101, limit: 100))
        XCTAssertTrue(NodeStoreUsage.fits(maxBytes: .max, reserved: .max, limit: -1))
        XCTAssertFalse(NodeStoreUsage.fits(maxBytes: .max, reserved: 0, limit: .max - 1))
    }
}
