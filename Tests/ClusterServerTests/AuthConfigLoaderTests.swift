import ServerConfig
import XCTest
@testable import ClusterServer

final class AuthConfigLoaderTests: XCTestCase {
    private var warnings: [String] = []

    private func load(_ text: String) throws -> ServerOptions {
        let root = try ConfigParser().parse(text, fileName: "test.conf")
        warnings = []
        return try ConfigLoader.map(root, into: ServerOptions(), warnings: &warnings)
    }

    private func assertError(_ text: String, contains needle: String, line: UInt = #line) {
        XCTAssertThrowsError(try load(text), line: line) { XCTAssertTrue("\($0)".contains(needle), "\($0)", line: line) }
    }

    func test_userPermissions_allForms() throws {
        let o = try load("""
        authorization {
          default_permissions: { publish: "dflt.>" }
          users = [
            { user: alice, password: pa, permissions: {
                publish: { allow: ["pub.>", "_INBOX.>"] }
                subscribe: { allow: ["sub.>"], deny: "sub.secret" } } }
            { user: bob, password: pb, permissions: { publish: ["a", "b"], subscribe: "c", allow_responses: true } }
            { user: carol, password: pc, permissions: { allow_responses: { max: 5, expires: "1m" } } }
            { user: dave, password: pd }
          ]
        }
        """)
        let byName = Dictionary(uniqueKeysWithValues: o.users.map { ($0.user, $0) })
        XCTAssertEqual(byName["alice"]?.permissions?.publish, SubjectPermission(allow: ["pub.>", "_INBOX.>"]))
        XCTAssertEqual(byName["alice"]?.permissions?.subscribe, SubjectPermission(allow: ["sub.>"], deny: ["sub.secret"]))
        XCTAssertEqual(byName["bob"]?.permissions?.publish?.allow, ["a", "b"])
        XCTAssertEqual(byName["bob"]?.permissions?.subscribe?.allow, ["c"])
        XCTAssertEqual(byName["bob"]?.permissions?.response, ResponsePermission())
        XCTAssertEqual(byName["carol"]?.permissions?.response, ResponsePermission(maxMessages: 5, expiresSeconds: 60))
        XCTAssertEqual(byName["carol"]?.permissions?.publish?.allow, [], "allow_responses turns off the blanket allow")
        XCTAssertEqual(byName["dave"]?.permissions?.publish?.allow, ["dflt.>"], "default_permissions fill in")
        XCTAssertTrue(o.authRequired)
    }

    func test_accounts_usersExportsImportsLimitsJetStream() throws {
        let o = try load("""
        accounts {
          A: {
            users: [ {user: a1, password: x} ]
            exports: [ {stream: "events.>"}, {service: "req.*", accounts: [B], response_type: stream} ]
            jetstream: { max_memory: 1M, max_file: 2G, max_streams: 3, max_consumers: 4 }
            limits: { max_connections: 2, max_subscriptions: 10, max_payload: 1KB }
          }
          B: {
            users: [ {user: b1, password: "$2b$04$abcdefghijklmnopqrstuu35fBIWlNgF8BcAW/t2cO158N8svSFHy"} ]
            imports: [
              {stream: {account: A, subject: "events.>"}, prefix: "from_a"}
              {service: {account: A, subject: "req.x"}, to: "ask"}
            ]
            jetstream: enabled
          }
        }
        no_auth_user: a1
        """)
        XCTAssertEqual(o.accounts.map(\.name), ["A", "B"])
        let a = o.accounts[0], b = o.accounts[1]
        XCTAssertEqual(a.users.first?.account, "A")
        XCTAssertEqual(a.exports, [ExportConfig(kind: .stream, subject: "events.>"),
                                   ExportConfig(kind: .service, subject: "req.*", accounts: ["B"], streamedResponses: true)])
        XCTAssertEqual(a.maxConnections, 2)
        XCTAssertEqual(a.maxSubscriptions, 10)
        XCTAssertEqual(a.maxPayload, 1024)
        XCTAssertEqual(a.jetStream?.maxMemory, 1_000_000)
        XCTAssertEqual(a.jetStream?.maxStorage, 2_000_000_000)
        XCTAssertEqual(a.jetStream?.maxStreams, 3)
        XCTAssertEqual(a.jetStream?.maxConsumers, 4)
        XCTAssertEqual(b.jetStream, AccountJetStreamLimits())
        XCTAssertEqual(b.imports[0].localSubject, "from_a.events.>")
        XCTAssertEqual(b.imports[1].localSubject, "ask")
        XCTAssertEqual(o.noAuthUser, "a1")
        XCTAssertNil(o.systemAccount)
        XCTAssertEqual(try load("accounts { SYS { users: [{user: s, password: p}] } }\nsystem_account: SYS").systemAccount, "SYS")
        XCTAssertTrue(o.authConfigured)
        XCTAssertFalse(o.authRequired, "no_auth_user: INFO does not demand credentials")
        XCTAssertEqual(o.allUsers.map(\.user), ["a1", "b1"])
        XCTAssertTrue(warnings.filter { $0.contains("JetStream") }.isEmpty, "per-account JetStream is served: \(warnings)")
    }

    func test_badAuthConfigs_areClearErrors() {
        assertError("accounts { A { users: [{user: u, password: p}] }, B { users: [{user: u, password: q}] } }",
                    contains: "duplicate user \"u\"")
        assertError("authorization { users: [{user: u, password: p}] }\nno_auth_user: nobody", contains: "no_auth_user")
        assertError("accounts { A { imports: [{stream: {account: Z, subject: x}}] } }", contains: "unknown account \"Z\"")
        assertError("accounts { A {}, B { imports: [{stream: {account: A, subject: x}}] } }", contains: "not authorized")
        assertError("accounts { A { exports: [{service: x, accounts: [C]}] }, B { imports: [{service: {account: A, subject: x}}] } }",
                    contains: "not authorized")
        assertError("accounts { A { exports: [{stream: x}] }, B { imports: [{service: {account: A, subject: x}}] } }",
                    contains: "not authorized")
        assertError("authorization { users: [{user: u, password: p, permissions: { publish: \"a..b\" }}] }",
                    contains: "invalid subject")
        assertError("authorization { users: [{user: u, password: p, permissions: { bogus: x }}] }", contains: "bogus")
        assertError("authorization { token: t, users: [{user: u, password: p}] }", contains: "token")
        assertError("accounts { $G { } }", contains: "reserved")
        assertError("accounts { A { jetstream: { max_bogus: 1 } } }", contains: "max_bogus")
        assertError("accounts { A { exports: [{stream: x}] }, B { imports: [{stream: {account: A, subject: x}, to: \"y.*\"}] } }",
                    contains: "literal")
        assertError("authorization { users: [{password: p}] }", contains: "user name")
        assertError("accounts { A {} }\nsystem_account: SYS", contains: "system_account: account \"SYS\" is not defined")
    }

    func test_monitoringBindAddress() throws {
        let o = try load("http: \"127.0.0.1:8222\"")
        XCTAssertEqual(o.httpHost, "127.0.0.1")
        XCTAssertEqual(o.httpPort, 8222)
        let m = try load("monitor: \"localhost:9000\"")
        XCTAssertEqual(m.httpHost, "localhost")
        XCTAssertEqual(m.httpPort, 9000)
    }
}
