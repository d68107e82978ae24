import ServerConfig
import XCTest
@testable import ClusterServer

final class ConfigLoaderTests: XCTestCase {
    private func load(_ text: String) throws -> (ServerOptions, [String]) {
        let root = try ConfigParser().parse(text, fileName: "test.conf")
        var warnings: [String] = []
        let o = try ConfigLoader.map(root, into: ServerOptions(), warnings: &warnings)
        return (o, warnings)
    }

    func test_map_clusteredJetStreamConfig() throws {
        let (o, warnings) = try load("""
        server_name: n1
        listen: 127.0.0.1:4333
        http: 8333
        max_payload: 2MB
        ping_interval: "30s"
        ping_max: 3
        write_deadline: "2s"
        authorization { token: "abc" }
        jetstream { store_dir: "/tmp/js", max_memory_store: 1GB, max_file_store: 10GB }
        cluster { name: demo, listen: 0.0.0.0:6222, routes: [nats://a:6222, nats://b:6222] }
        bogus_key: 1
        """)
        XCTAssertEqual(o.serverName, "n1")
        XCTAssertEqual(o.host, "127.0.0.1")
        XCTAssertEqual(o.port, 4333)
        XCTAssertEqual(o.httpPort, 8333)
        XCTAssertEqual(o.maxPayload, 2 * 1_048_576)
        XCTAssertEqual(o.pingIntervalSeconds, 30)
        XCTAssertEqual(o.pingMax, 3)
        XCTAssertEqual(o.writeDeadlineSeconds, 2)
        XCTAssertEqual(o.authToken, "abc")
        XCTAssertTrue(o.jetStream)
        XCTAssertEqual(o.storeDirectory, "/tmp/js")
        XCTAssertEqual(o.maxFileStore, 10 * (1 << 30))
        XCTAssertEqual(o.clusterName, "demo")
        XCTAssertEqual(o.clusterPort, 6222)
        XCTAssertEqual(o.routes, ["nats://a:6222", "nats://b:6222"])
        XCTAssertEqual(warnings, ["unknown config key 'bogus_key' ignored"])
    }

    func test_map_gossipTimingKeys_andTheirBounds() throws {
        let (o, warnings) = try load("cluster { name: g, gossip_period: \"500ms\", dns_refresh: \"30s\" }")
        XCTAssertEqual(o.gossipPeriodSeconds, 0.5)
        XCTAssertEqual(o.dnsRefreshSeconds, 30)
        XCTAssertEqual(warnings, [])
        XCTAssertThrowsError(try load("cluster { gossip_period: \"1ms\" }")) { XCTAssertTrue("\($0)".contains("cluster.gossip_period")) }
        XCTAssertThrowsError(try load("cluster { dns_refresh: \"soon\" }")) { XCTAssertTrue("\($0)".contains("cluster.dns_refresh")) }
    }

    func test_map_autoRemoveAfter_defaultOffAndBounded() throws {
        XCTAssertNil(try load("cluster { name: g }").0.jetStreamAutoRemoveAfterSeconds, "off by default")
        let (o, warnings) = try load("cluster { name: g, auto_remove_after: \"10m\" }")
        XCTAssertEqual(o.jetStreamAutoRemoveAfterSeconds, 600)
        XCTAssertEqual(warnings, [])
        XCTAssertThrowsError(try load("cluster { auto_remove_after: \"500ms\" }")) { XCTAssertTrue("\($0)".contains("cluster.auto_remove_after")) }
        XCTAssertEqual(ServerOptions.durationSeconds("90s"), 90)
        XCTAssertNil(ServerOptions.durationSeconds("soon"))
    }

    func test_map_syncInterval_alwaysByDefault_aDurationOptsIn() throws {
        XCTAssertNil(try load("jetstream { store_dir: \"/tmp/js\" }").0.jetStreamSyncIntervalSeconds, "always by default")
        XCTAssertNil(try load("jetstream { sync_interval: always }").0.jetStreamSyncIntervalSeconds)
        let (o, warnings) = try load("jetstream { sync_interval: \"2m\" }")
        XCTAssertEqual(o.jetStreamSyncIntervalSeconds, 120)
        XCTAssertEqual(o.jszConfig(storeDirectory: "/d")["sync_interval"] as? Int64, 120_000_000_000)
        XCTAssertEqual(o.jszConfig(storeDirectory: "/d")["sync_always"] as? Bool, false)
        XCTAssertEqual(warnings, [])
        XCTAssertThrowsError(try load("jetstream { sync_interval: \"1ms\" }")) { XCTAssertTrue("\($0)".contains("jetstream.sync_interval")) }
        XCTAssertThrowsError(try load("jetstream { sync_interval: 2m }")) { XCTAssertTrue("\($0)".contains("jetstream.sync_interval")) }
        XCTAssertThrowsError(try load("jetstream { sync_interval: \"sometimes\" }")) { XCTAssertTrue("\($0)".contains("jetstream.sync_interval")) }
    }

    func test_map_clusterAuthorization_userPasswordTimeout_andWhatItRefuses() throws {
        XCTAssertNil(try load("cluster { name: g }").0.clusterAuth, "routes are open unless configured")
        let (o, warnings) = try load("cluster { authorization { user: ruser, password: s3cret, timeout: 0.5 } }")
        XCTAssertEqual(o.clusterAuth, RouteAuth(user: "ruser", password: "s3cret", timeoutSeconds: 0.5))
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(try load("cluster { authorization { user: a, password: b } }").0.clusterAuth?.timeoutSeconds, 2)
        // A route permission or token would be dropped silently otherwise: refused instead.
        XCTAssertThrowsError(try load("cluster { authorization { user: a, password: b, permissions { import: \">\" } } }")) {
            XCTAssertTrue("\($0)".contains("cluster.authorization.permissions: not supported"), "\($0)")
        }
        XCTAssertThrowsError(try load("cluster { authorization { token: t } }")) { XCTAssertTrue("\($0)".contains("cluster.authorization.token")) }
        XCTAssertThrowsError(try load("cluster { authorization { user: a } }")) {
            XCTAssertTrue("\($0)".contains("user and password are required"), "\($0)")
        }
        XCTAssertThrowsError(try load("cluster { authorization { user: a, password: \"$2a$11$abc\" } }")) {
            XCTAssertTrue("\($0)".contains("malformed bcrypt"), "\($0)")
        }
        XCTAssertThrowsError(try load("cluster { authorization { user: a, password: b, timeout: 0 } }")) {
            XCTAssertTrue("\($0)".contains("cluster.authorization.timeout"), "\($0)")
        }
    }

    func test_routeCredentials_fromURLs() {
        XCTAssertEqual(RouteCredentials(url: "nats://ruser:s3cret@10.0.0.1:6222"), RouteCredentials(user: "ruser", password: "s3cret"))
        XCTAssertEqual(RouteCredentials(url: "nats-route://a%40b:p%3Aw@h:1/"), RouteCredentials(user: "a@b", password: "p:w"))
        XCTAssertEqual(RouteCredentials(url: "nats://u@h:1"), RouteCredentials(user: "u", password: ""))
        XCTAssertEqual(RouteCredentials(url: "nats://u:a/b@h:1/"), RouteCredentials(user: "u", password: "a/b"))
        XCTAssertNil(RouteCredentials(url: "nats://h:1"))
        XCTAssertNil(RouteCredentials(url: "h:1"))
        XCTAssertNil(RouteCredentials(url: "nats://:p@h:1"))
        XCTAssertEqual(RouteURL("nats://ruser:s3cret@10.0.0.1:6222"), RouteURL(host: "10.0.0.1", port: 6222), "not part of the URL's identity")
    }

    func test_map_unsupportedSecurityKeys_areErrorsNotSilentlyIgnored() {
        XCTAssertThrowsError(try load("tls { cert_file: x }"))
        XCTAssertThrowsError(try load("leafnodes { port: 7422 }"))
    }

    func test_map_wrongTypes_nameTheKey() {
        XCTAssertThrowsError(try load("port: \"abc\"")) { XCTAssertTrue("\($0)".contains("port")) }
        XCTAssertThrowsError(try load("ping_interval: \"soon\"")) { XCTAssertTrue("\($0)".contains("ping_interval")) }
    }

    func test_map_usersList_andUnsupportedUserFields() throws {
        let (o, _) = try load("authorization { users: [ {user: a, password: x}, {user: b, password: y} ] }")
        XCTAssertEqual(o.users.map(\.user), ["a", "b"])
        XCTAssertTrue(o.authRequired)
        XCTAssertThrowsError(try load("authorization { users: [ {user: a, password: x, nkey: UABC} ] }"))
        XCTAssertThrowsError(try load("authorization { users: [ {user: a, password: \"$2a$11$abc\"} ] }")) {
            XCTAssertTrue("\($0)".contains("malformed bcrypt"), "\($0)")
        }
    }
}
