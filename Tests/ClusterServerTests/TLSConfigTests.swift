import ServerConfig
import XCTest
@testable import ClusterServer

/// `tls {}` blocks (client and cluster) and `max_subscriptions`, as nats-server spells them.
final class TLSConfigTests: XCTestCase {
    private func load(_ text: String) throws -> ServerOptions {
        let root = try ConfigParser().parse(text, fileName: "test.conf")
        var warnings: [String] = []
        return try ConfigLoader.map(root, into: ServerOptions(), warnings: &warnings)
    }

    private func error(_ text: String) -> String {
        do {
            _ = try load(text)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func test_clientTLSBlock_mapsEveryKey() throws {
        let o = try load("""
        tls {
          cert_file: "/etc/nats/server.pem"
          key_file: "/etc/nats/server-key.pem"
          ca_file: "/etc/nats/ca.pem"
          verify: true
          timeout: 0.5
          handshake_first: true
          min_version: "1.3"
        }
        allow_non_tls: true
        max_subscriptions: 1000
        """)
        let t = try XCTUnwrap(o.tls)
        XCTAssertEqual(t.certFile, "/etc/nats/server.pem")
        XCTAssertEqual(t.keyFile, "/etc/nats/server-key.pem")
        XCTAssertEqual(t.caFile, "/etc/nats/ca.pem")
        XCTAssertTrue(t.verify)
        XCTAssertEqual(t.timeoutSeconds, 0.5)
        XCTAssertTrue(t.handshakeFirst)
        XCTAssertEqual(t.minVersion, .v1_3)
        XCTAssertTrue(o.allowNonTLS)
        XCTAssertEqual(o.maxSubscriptions, 1000)
        XCTAssertNil(o.clusterTLS)
    }

    func test_tlsDefaults_matchNatsServer() throws {
        let t = try XCTUnwrap(try load("tls { cert_file: a.pem, key_file: b.pem }").tls)
        XCTAssertFalse(t.verify)
        XCTAssertEqual(t.timeoutSeconds, 2)
        XCTAssertEqual(t.minVersion, .v1_2)
        XCTAssertNil(t.caFile)
        XCTAssertEqual(try load("tls { cert_file: a, key_file: b, timeout: 3 }").tls?.timeoutSeconds, 3)
        XCTAssertEqual(try load("tls { cert_file: a, key_file: b, timeout: \"250ms\" }").tls?.timeoutSeconds, 0.25)
    }

    func test_clusterTLS_isAlwaysMutual() throws {
        let o = try load("""
        cluster {
          listen: 127.0.0.1:6222
          tls { cert_file: node.pem, key_file: node-key.pem, ca_file: ca.pem }
        }
        """)
        let t = try XCTUnwrap(o.clusterTLS)
        XCTAssertTrue(t.verify)
        XCTAssertEqual(t.caFile, "ca.pem")
        XCTAssertNil(o.tls)
    }

    func test_badTLSBlocks_areErrorsThatNameTheKey() {
        XCTAssertTrue(error("tls { key_file: k }").contains("cert_file and key_file are both required"))
        XCTAssertTrue(error("tls { cert_file: c, key_file: k, cipher_suites: [a] }").contains("'tls.cipher_suites' is not supported yet"))
        XCTAssertTrue(error("tls { cert_file: c, key_file: k, verify: 1 }").contains("tls.verify"))
        XCTAssertTrue(error("tls { cert_file: c, key_file: k, min_version: \"1.0\" }").contains("tls.min_version"))
        XCTAssertTrue(error("tls { cert_file: c, key_file: k, handshake_first: \"300ms\" }").contains("tls.handshake_first"))
        XCTAssertTrue(error("tls { cert_file: c, key_file: k, timeout: -1 }").contains("tls.timeout"))
        XCTAssertTrue(error("tls: true").contains("tls: expected a block"))
        XCTAssertTrue(error("cluster { tls { cert_file: c } }").contains("cluster.tls"))
    }
}
