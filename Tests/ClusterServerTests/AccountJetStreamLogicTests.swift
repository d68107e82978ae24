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

    private func stream(_ storage: StreamConfig.Storage, maxBytes: Int64) -> StreamConfig {
        var c = StreamConfig(name: "S")
        c.storage = storage
        c.maxBytes = maxBytes
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
}
