import XCTest
@testable import ServerConfig

/// Whole files shaped like the ones operators actually run.
final class RealisticConfigTests: XCTestCase {
    /// The JSON-like layout the nats Helm chart (1.x) renders: one outer `{}`, quoted keys,
    /// trailing commas, bare sizes (`10Gi`, `1M`), `$SERVER_NAME` from the pod environment
    /// and an `include` of a separately mounted auth file.
    static let helmStyle = """
    {
      "cluster": {
        "name": "nats",
        "no_advertise": true,
        "port": 6222,
        "routes": [
          "nats://nats-0.nats-headless:6222",
          "nats://nats-1.nats-headless:6222",
          "nats://nats-2.nats-headless:6222",
        ]
      },
      "http_port": 8222,
      "jetstream": {
        "max_file_store": 10Gi,
        "max_memory_store": 0,
        "store_dir": "/data"
      },
      "lame_duck_duration": "30s",
      "lame_duck_grace_period": "10s",
      "max_connections": 1M,
      "max_payload": 8MB,
      "pid_file": "/var/run/nats/nats.pid",
      "port": 4222,
      "server_name": $SERVER_NAME,
      include "auth.conf"
    }
    """

    func test_helmStyleJsonConfig_parsesToTypedValues() throws {
        let files = ["/etc/nats-config/auth.conf": "authorization { token: $NATS_TOKEN }\n"]
        let env = ["SERVER_NAME": "nats-1", "NATS_TOKEN": "\"s3cr3t\""]
        let root = try parseConfig(Self.helmStyle, env: env, files: files, fileName: "/etc/nats-config/nats.conf")

        XCTAssertEqual(try root.string("server_name"), "nats-1")
        XCTAssertEqual(try root.int("port"), 4222)
        XCTAssertEqual(try root.int("http_port"), 8222)
        XCTAssertEqual(try root.int("max_connections"), 1_000_000)
        XCTAssertEqual(try root.size("max_payload"), 8 << 20)
        XCTAssertEqual(try root.duration("lame_duck_duration", bareIntegerSeconds: false), .seconds(30))
        XCTAssertEqual(try root.duration("lame_duck_grace_period"), .seconds(10))

        let jetstream = try XCTUnwrap(try root.block("jetstream"))
        XCTAssertEqual(try jetstream.string("store_dir"), "/data")
        XCTAssertEqual(try jetstream.size("max_file_store"), 10 << 30)
        XCTAssertEqual(try jetstream.size("max_memory_store"), 0)

        let cluster = try XCTUnwrap(try root.block("cluster"))
        XCTAssertEqual(try cluster.string("name"), "nats")
        XCTAssertEqual(try cluster.bool("no_advertise"), true)
        XCTAssertEqual(try cluster.array("routes")?.compactMap(\.stringValue), [
            "nats://nats-0.nats-headless:6222", "nats://nats-1.nats-headless:6222", "nats://nats-2.nats-headless:6222",
        ])
        XCTAssertEqual(try root.block("authorization")?.string("token"), "s3cr3t")
    }

    /// The classic hand-written layout with every option clusterd reads.
    static let classic = """
    # clusterd node 2 of 3
    server_name: $POD_NAME
    listen: 0.0.0.0:4222
    http: 8222

    ping_interval: "20s"
    ping_max: 3
    max_payload: 1MB
    write_deadline: "10s"
    lame_duck_duration: "2m"

    jetstream {
      store_dir: /data/jetstream
      max_memory_store: 512MiB
      max_file_store: 20G
    }

    cluster {
      name: east
      listen: 0.0.0.0:6222
      routes [
        nats://node-0.clusterd:6222
        nats://node-1.clusterd:6222
        nats://node-2.clusterd:6222
      ]
      no_advertise: yes
    }

    SYS_PASS: "$2a$11$pBwUBpza8vdJ7tWZcP5GRO13qRgh4dwNn8g67k5i/41yIKBp.NIfm"
    authorization {
      users: [
        { user: admin, password: $SYS_PASS }
        { user: app,   password: 'plain secret', permissions: { publish: ["orders.>"], subscribe: ["_INBOX.>"] } }
      ]
    }

    accounts {
      APP: {
        jetstream: enabled
        users: [ {user: app2, password: x} ]
      }
      $SYS { users = [ { user: sys, pass: s } ] }
    }
    """

    func test_classicClusteredJetStreamConfig_parsesEveryOption() throws {
        let root = try parseConfig(Self.classic, env: ["POD_NAME": "node-2"])
        XCTAssertEqual(try root.string("server_name"), "node-2")
        XCTAssertEqual(try root.string("listen"), "0.0.0.0:4222")
        XCTAssertEqual(try root.int("http"), 8222)
        XCTAssertEqual(try root.duration("ping_interval"), .seconds(20))
        XCTAssertEqual(try root.int("ping_max"), 3)
        XCTAssertEqual(try root.size("max_payload"), 1 << 20)
        XCTAssertEqual(try root.duration("write_deadline"), .seconds(10))
        XCTAssertEqual(try root.duration("lame_duck_duration", bareIntegerSeconds: false), .seconds(120))

        let jetstream = try XCTUnwrap(try root.block("jetstream"))
        XCTAssertEqual(try jetstream.string("store_dir"), "/data/jetstream")
        XCTAssertEqual(try jetstream.size("max_memory_store"), 512 << 20)
        XCTAssertEqual(try jetstream.size("max_file_store"), 20_000_000_000)

        let cluster = try XCTUnwrap(try root.block("cluster"))
        XCTAssertEqual(try cluster.string("name"), "east")
        XCTAssertEqual(try cluster.string("listen"), "0.0.0.0:6222")
        XCTAssertEqual(try cluster.array("routes")?.count, 3)
        XCTAssertEqual(try cluster.bool("no_advertise"), true)

        let users = try XCTUnwrap(try root.block("authorization")?.array("users"))
        XCTAssertEqual(users.count, 2)
        XCTAssertEqual(try users[0].string("password"), "$2a$11$pBwUBpza8vdJ7tWZcP5GRO13qRgh4dwNn8g67k5i/41yIKBp.NIfm")
        XCTAssertEqual(try users[1].string("password"), "plain secret")
        XCTAssertEqual(try users[1].block("permissions")?.array("publish"), [.string("orders.>")])

        let accounts = try XCTUnwrap(try root.block("accounts"))
        XCTAssertEqual(accounts.entries?.map(\.key), ["APP", "$SYS"])
        XCTAssertEqual(try accounts.block("APP")?.string("jetstream"), "enabled")
        XCTAssertEqual(try accounts.block("$SYS")?.array("users")?.first?.string("pass"), "s")
    }

    func test_tokenAuthorization_form() throws {
        let root = try parseConfig("authorization {\n  token: \"t0k3n\"\n  timeout: 2\n}\n")
        XCTAssertEqual(try root.block("authorization")?.string("token"), "t0k3n")
        XCTAssertEqual(try root.block("authorization")?.duration("timeout"), .seconds(2))
    }
}
