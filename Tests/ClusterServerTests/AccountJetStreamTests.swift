import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServerConfig
import XCTest
@testable import ClusterServer

/// Per-account JetStream on one node, driven through each account's own subject namespace
/// (internal client, no sockets): isolation, limits, account info, refusal and store layout.
final class AccountJetStreamTests: XCTestCase {
    static let config = """
    accounts {
      A: { users: [ {user: a, password: a} ], jetstream: enabled }
      B: { users: [ {user: b, password: b} ]
           jetstream: { max_mem: 1000, max_store: 50000, max_streams: 2, max_consumers: 1 } }
      N: { users: [ {user: n, password: n} ] }
    }
    """

    private var dir = ""
    var server: NATSServer!
    var js: JetStreamAccounts!
    private let box = NIOLockedValueBox<[String: [String]]>([:])
    private var counter = 0

    override func setUp() {
        dir = NSTemporaryDirectory() + "acct-js-\(UUID().uuidString)"
    }

    override func tearDown() {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func boot(_ text: String = AccountJetStreamTests.config, configure: (inout ServerOptions) -> Void = { _ in }) throws {
        var warnings: [String] = []
        var o = try ConfigLoader.map(ConfigParser().parse(text, fileName: "t.conf"), into: ServerOptions(), warnings: &warnings)
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 1
        o.jetStream = true
        o.storeDirectory = dir
        configure(&o)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = NATSServer(options: o, logger: logger)
        js = JetStreamAccounts(server: server)
        try js.start()
        try server.start()
        for name in ["$G", "A", "B", "N", "../evil"] {
            guard let acc = server.account(named: name) else { continue }
            _ = server.subscribeInternal("_T.>", in: acc) { [box] msg in
                box.withLockedValue { $0[name + " " + msg.subject, default: []].append(String(buffer: msg.payload)) }
            }
        }
    }

    func stop() {
        server?.shutdown()
        server?.waitUntilShutdown()
        server = nil
    }

    /// A request published in `account`; the decoded JSON answer (empty when none came in 3 s).
    @discardableResult
    func request(_ account: String, _ subject: String, _ body: String = "") -> [String: Any] {
        counter += 1
        let inbox = "_T.\(counter)"
        let acc = server.account(named: account)!
        server.publishInternal(subject: subject, reply: inbox, payload: ByteBuffer(string: body), in: acc)
        for _ in 0..<1500 {
            if let text = box.withLockedValue({ $0[account + " " + inbox]?.first }) {
                return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? ["unparsed": text]
            }
            usleep(2000)
        }
        return [:]
    }

    func api(_ account: String, _ op: String, _ body: String = "") -> [String: Any] {
        request(account, "$JS.API." + op, body)
    }

    func createStream(_ account: String, _ name: String, subjects: String, extra: String = "") -> [String: Any] {
        api(account, "STREAM.CREATE.\(name)", "{\"name\":\"\(name)\",\"subjects\":[\(subjects)]\(extra)}")
    }

    func messages(_ account: String, _ stream: String) -> Int? {
        ((api(account, "STREAM.INFO.\(stream)")["state"] as? [String: Any])?["messages"] as? NSNumber)?.intValue
    }

    func testSameNamedStreamsInTwoAccountsAreIsolated() throws {
        try boot()
        XCTAssertNil(errCode(createStream("A", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertNil(errCode(createStream("B", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertEqual(intValue(request("A", "orders.1", "a1"), "seq"), 1)
        XCTAssertEqual(intValue(request("A", "orders.2", "a2"), "seq"), 2)
        XCTAssertEqual(intValue(request("B", "orders.1", "b1"), "seq"), 1)
        XCTAssertEqual(messages("A", "ORDERS"), 2)
        XCTAssertEqual(messages("B", "ORDERS"), 1)
        let got = api("B", "STREAM.MSG.GET.ORDERS", "{\"seq\":1}")
        let data = ((got["message"] as? [String: Any])?["data"] as? String).flatMap { Data(base64Encoded: $0) }
        XCTAssertEqual(data.map { String(decoding: $0, as: UTF8.self) }, "b1")
        XCTAssertEqual(api("A", "STREAM.NAMES")["streams"] as? [String], ["ORDERS"])
        XCTAssertNil(errCode(api("A", "STREAM.DELETE.ORDERS")))
        XCTAssertEqual(messages("B", "ORDERS"), 1, "deleting A's stream leaves B's")
    }

    func testAccountsWithoutJetStreamAreRefused() throws {
        try boot()
        for account in ["N", "$G"] {
            let info = api(account, "INFO")
            XCTAssertEqual(errCode(info), 10039, account)
            XCTAssertEqual((info["error"] as? [String: Any])?["description"] as? String, "JetStream not enabled for account")
            XCTAssertEqual(info["type"] as? String, "io.nats.jetstream.api.v1.account_info_response")
            let names = api(account, "STREAM.NAMES")
            XCTAssertEqual(errCode(names), 10039)
            XCTAssertEqual(intValue(names, "total"), 0)
            XCTAssertEqual(names["streams"] as? [String], [], "nats-server lists no streams")
        }
        // A stream in A does not capture N's publishes on the same subject.
        XCTAssertNil(errCode(createStream("A", "ORDERS", subjects: "\"orders.>\"")))
        server.publishInternal(subject: "orders.x", payload: ByteBuffer(string: "n"), in: server.account(named: "N")!)
        XCTAssertEqual(messages("A", "ORDERS"), 0)
    }

    func testLimitsAreEnforcedWithNatsErrors() throws {
        try boot()
        XCTAssertEqual(errCode(createStream("B", "BIG", subjects: "\"big\"", extra: ",\"max_bytes\":60000")), 10047)
        XCTAssertEqual(errCode(createStream("B", "MEM", subjects: "\"mem\"", extra: ",\"storage\":\"memory\",\"max_bytes\":1001")), 10028)
        XCTAssertNil(errCode(createStream("B", "S1", subjects: "\"s1\"")))
        XCTAssertNil(errCode(createStream("B", "S2", subjects: "\"s2\"")))
        let third = createStream("B", "S3", subjects: "\"s3\"")
        XCTAssertEqual(errCode(third), 10027)
        XCTAssertEqual((third["error"] as? [String: Any])?["description"] as? String, "maximum number of streams reached")
        // Re-creating an existing stream identically is not a new stream.
        XCTAssertNil(errCode(createStream("B", "S1", subjects: "\"s1\"")))
        let consumer = "{\"stream_name\":\"S1\",\"config\":{\"durable_name\":\"%@\",\"ack_policy\":\"explicit\"}}"
        XCTAssertNil(errCode(api("B", "CONSUMER.CREATE.S1.c1", String(format: consumer, "c1"))))
        XCTAssertEqual(errCode(api("B", "CONSUMER.CREATE.S1.c2", String(format: consumer, "c2"))), 10026)
        // Storage: 50,000 bytes; each 10,000-byte message is a little more on disk.
        let payload = String(repeating: "x", count: 10_000)
        var stored = 0
        var refusal: [String: Any] = [:]
        for _ in 0..<10 {
            let ack = request("B", "s1", payload)
            if errCode(ack) != nil { refusal = ack; break }
            stored += 1
        }
        XCTAssertEqual(stored, 4)
        XCTAssertEqual(errCode(refusal), 10002)
        XCTAssertEqual((refusal["error"] as? [String: Any])?["description"] as? String, "resource limits exceeded for account")
        // Account A is unlimited: the same load is fine there.
        XCTAssertNil(errCode(createStream("A", "S1", subjects: "\"s1\"")))
        for _ in 0..<6 { XCTAssertNil(errCode(request("A", "s1", payload))) }
    }

    func testAccountInfoShowsOwnUsageAndLimits() throws {
        try boot()
        XCTAssertNil(errCode(createStream("B", "S1", subjects: "\"s1\"", extra: ",\"max_bytes\":20000")))
        XCTAssertEqual(intValue(request("B", "s1", "hello"), "seq"), 1)
        let info = api("B", "INFO")
        let limits = try XCTUnwrap(info["limits"] as? [String: Any])
        XCTAssertEqual(intValue(limits, "max_memory"), 1000)
        XCTAssertEqual(intValue(limits, "max_storage"), 50000)
        XCTAssertEqual(intValue(limits, "max_streams"), 2)
        XCTAssertEqual(intValue(limits, "max_consumers"), 1)
        XCTAssertEqual(intValue(info, "streams"), 1)
        XCTAssertEqual(intValue(info, "reserved_storage"), 20000)
        XCTAssertGreaterThan(intValue(info, "storage") ?? 0, 5)
        let a = api("A", "INFO")
        XCTAssertEqual(intValue(a, "streams"), 0)
        XCTAssertEqual(intValue(a, "storage"), 0)
        XCTAssertEqual(intValue(a["limits"] as? [String: Any] ?? [:], "max_streams"), -1)
    }

    func testEachAccountRecoversFromItsOwnDirectory() throws {
        try boot()
        XCTAssertNil(errCode(createStream("A", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertNil(errCode(createStream("B", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertEqual(intValue(request("A", "orders.1", "a"), "seq"), 1)
        stop()
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/jetstream/.accounts/A/ORDERS/meta.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/jetstream/.accounts/B/ORDERS/meta.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/jetstream/ORDERS"))
        try boot()
        XCTAssertEqual(messages("A", "ORDERS"), 1)
        XCTAssertEqual(messages("B", "ORDERS"), 0)
    }

    func testGlobalAccountKeepsItsLayoutWithoutAccounts() throws {
        try boot("")
        XCTAssertNil(errCode(createStream("$G", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertEqual(intValue(request("$G", "orders.1", "g"), "seq"), 1)
        stop()
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/jetstream/ORDERS/meta.json"))
        try boot("")
        XCTAssertEqual(messages("$G", "ORDERS"), 1)
    }

    func testHostileAccountNameStaysInsideTheStore() throws {
        try boot("accounts { \"../evil\": { users: [ {user: e, password: e} ], jetstream: enabled } }")
        XCTAssertNil(errCode(createStream("../evil", "S", subjects: "\"s\"")))
        XCTAssertEqual(intValue(request("../evil", "s", "x"), "seq"), 1)
        stop()
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/jetstream/.accounts/%2E%2E%2Fevil/S/meta.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/evil"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/jetstream/.accounts/evil"))
    }

    static func oneNodeCluster(_ o: inout ServerOptions) {
        o.clusterHost = "127.0.0.1"
        o.clusterPort = -1
        o.clusterName = "c"
        o.serverName = "n1" // the Raft id derives from it: a restart must keep it
    }

    /// A one-node cluster: each account with JetStream runs its own meta group, the meta
    /// leader enforces the account's limits, and the assignment records its account in the log.
    func testClusterModeGivesEachAccountItsOwnClusteredJetStream() throws {
        try boot(configure: Self.oneNodeCluster)
        XCTAssertEqual(js.services.map(\.account.name), ["A", "B"])
        XCTAssertNotNil(js.services.first?.cluster)
        XCTAssertEqual(errCode(api("N", "INFO")), 10039)
        // The meta groups elect their leader first (about a second): until then 10008.
        for account in ["A", "B"] {
            var code: Int? = 10008
            for _ in 0..<20 where code == 10008 || code == -1 {
                let r = createStream(account, "ORDERS", subjects: "\"orders.>\"")
                code = r.isEmpty ? -1 : errCode(r)
                if code == 10008 || code == -1 { usleep(200_000) }
            }
            XCTAssertNil(code, account)
        }
        XCTAssertEqual(intValue(request("B", "orders.1", "b1"), "seq"), 1)
        XCTAssertEqual(messages("B", "ORDERS"), 1)
        XCTAssertEqual(messages("A", "ORDERS"), 0)
        XCTAssertNil(errCode(createStream("B", "TWO", subjects: "\"two\"")))
        XCTAssertEqual(errCode(createStream("B", "THREE", subjects: "\"three\"")), 10027, "B's max_streams is 2")
        XCTAssertEqual(intValue(api("B", "INFO"), "streams"), 2)
        // max_store 50000, checked by the stream leader before it proposes.
        let payload = String(repeating: "x", count: 10_000)
        var stored = 0, refusal: [String: Any] = [:]
        for _ in 0..<10 {
            let ack = request("B", "two", payload)
            if errCode(ack) != nil { refusal = ack; break }
            stored += 1
        }
        XCTAssertEqual(stored, 4)
        XCTAssertEqual(errCode(refusal), 10002)
        XCTAssertEqual(messages("B", "TWO"), 4)
        stop()
        // Replayed from B's meta log: an assignment not recorded as B's would be refused.
        try boot(configure: Self.oneNodeCluster)
        var recovered: Int?
        for _ in 0..<20 where recovered != 1 {
            recovered = messages("B", "ORDERS")
            if recovered != 1 { usleep(200_000) }
        }
        XCTAssertEqual(recovered, 1)
        let b = try XCTUnwrap(js.services.first { $0.account.name == "B" }?.cluster)
        XCTAssertEqual(b.js.queue.sync { b.assignments["ORDERS"]?.account }, "B")
    }

    func testMonitoringCoversEveryAccount() throws {
        try boot()
        XCTAssertNil(errCode(createStream("A", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertNil(errCode(createStream("B", "ORDERS", subjects: "\"orders.>\"")))
        XCTAssertEqual(intValue(request("B", "orders.1", "b"), "seq"), 1)
        let jsz = try XCTUnwrap(server.monitoringHandlers["/jsz"]?(["accounts": "true"]))
        XCTAssertEqual((jsz["streams"] as? NSNumber)?.intValue, 2)
        XCTAssertEqual((jsz["messages"] as? NSNumber)?.intValue, 1)
        let details = try XCTUnwrap(jsz["account_details"] as? [[String: Any]])
        XCTAssertEqual(details.compactMap { $0["name"] as? String }.sorted(), ["A", "B"])
        let metrics = js.prometheusText()
        XCTAssertTrue(metrics.contains("clusterd_jetstream_stream_messages{account=\"A\",stream=\"ORDERS\"} 0"), metrics)
        XCTAssertTrue(metrics.contains("clusterd_jetstream_stream_messages{account=\"B\",stream=\"ORDERS\"} 1"), metrics)
        XCTAssertEqual(metrics.components(separatedBy: "# TYPE clusterd_jetstream_stream_messages").count, 2, "one TYPE line per family")
    }
}
