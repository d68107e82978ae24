import Foundation
import XCTest
@testable import ClusterServer

/// Routes over mutual TLS: every node presents a certificate from the test CA and checks
/// its peer's; a node with a certificate from another CA never joins.
final class RouteTLSTests: XCTestCase {
    private let cluster = RouteCluster()
    private var certs: TestCertificates!

    override func setUpWithError() throws {
        certs = try TestCertificates()
    }

    override func tearDown() {
        cluster.stopAll()
        certs?.remove()
    }

    private func tls(cert: String, key: String, ca: String) -> (inout ServerOptions) -> Void {
        { o in
            var t = TLSOptions(certFile: cert, keyFile: key)
            t.caFile = ca
            t.verify = true
            o.clusterTLS = t
        }
    }

    private var good: (inout ServerOptions) -> Void { tls(cert: certs.serverCert, key: certs.serverKey, ca: certs.caFile) }

    private func client(_ server: NATSServer) throws -> RawClient {
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
        XCTAssertTrue(c.waitFor("PONG\r\n"), c.text)
        c.clear()
        return c
    }

    func test_threeNodeMesh_overMutualTLS_carriesMessages() throws {
        let n1 = try cluster.start(name: "n1", configure: good)
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port], configure: good)
        let n3 = try cluster.start(name: "n3", routes: [n1.routeManager!.port, n2.routeManager!.port], configure: good)
        cluster.waitForFullMesh()
        XCTAssertTrue(cluster.logs[0].contains("(mutual TLS)"))

        let sub = try client(n1)
        sub.send("SUB tls.> 1\r\nPING\r\n")
        XCTAssertTrue(sub.waitFor("PONG\r\n"))
        XCTAssertTrue(waitUntil { n2.hasInterest("tls.x") && n3.hasInterest("tls.x") })
        let pub2 = try client(n2)
        let pub3 = try client(n3)
        pub2.send("PUB tls.a 5\r\nfrom2\r\nPING\r\n")
        pub3.send("PUB tls.b 5\r\nfrom3\r\nPING\r\n")
        XCTAssertTrue(sub.waitFor("from2\r\n"), sub.text)
        XCTAssertTrue(sub.waitFor("from3\r\n"), sub.text)
    }

    func test_nodeWithCertificateFromAnotherCA_isRefused() throws {
        let n1 = try cluster.start(name: "n1", configure: good)
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port], configure: good)
        cluster.waitForFullMesh()
        // The rogue node trusts its own CA and presents a certificate it signed.
        let rogue = try cluster.start(name: "rogue", routes: [n1.routeManager!.port],
                                      configure: tls(cert: certs.rogueCert, key: certs.rogueKey, ca: certs.rogueCAFile))
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("Route TLS handshake error")
                                  || self.cluster.logs[2].contains("Route TLS handshake error") })
        XCTAssertEqual(n1.routeManager!.peerIDs, [n2.serverID].sorted())
        XCTAssertEqual(rogue.routeManager!.peerIDs, [])
    }

    func test_plaintextNode_cannotJoinATLSMesh() throws {
        let n1 = try cluster.start(name: "n1", configure: good)
        let plain = try cluster.start(name: "plain", routes: [n1.routeManager!.port])
        XCTAssertTrue(waitUntil { self.cluster.logs[0].contains("Route TLS handshake error") })
        XCTAssertEqual(n1.routeManager!.peerIDs, [])
        XCTAssertEqual(plain.routeManager!.peerIDs, [])
    }

    func test_reload_newRoutesUseTheNewCertificate_establishedRoutesStayUp() throws {
        let n1 = try cluster.start(name: "n1", configure: good)
        let n2 = try cluster.start(name: "n2", routes: [n1.routeManager!.port], configure: good)
        cluster.waitForFullMesh()
        // n1 moves to the other CA (a CA rotation seen from one node).
        var o = n1.options
        o.clusterTLS?.certFile = certs.rogueCert
        o.clusterTLS?.keyFile = certs.rogueKey
        o.clusterTLS?.caFile = certs.rogueCAFile
        XCTAssertEqual(n1.reload(o), [])
        XCTAssertTrue(cluster.logs[0].contains("Reloaded: route TLS certificate"))
        // A node of the new CA is now accepted by n1; the route to n2 made before stays.
        let fresh = try cluster.start(name: "fresh", routes: [n1.routeManager!.port],
                                      configure: tls(cert: certs.rogueCert, key: certs.rogueKey, ca: certs.rogueCAFile))
        XCTAssertTrue(waitUntil { n1.routeManager!.peerIDs.contains(fresh.serverID) })
        XCTAssertTrue(n1.routeManager!.peerIDs.contains(n2.serverID))
        // A bad file keeps the certificate in force.
        o.clusterTLS?.certFile = certs.directory.appendingPathComponent("missing.pem").path
        XCTAssertEqual(n1.reload(o), [])
        XCTAssertTrue(cluster.logs[0].contains("Failed to reload server configuration: tls: cannot load cert_file"))
        XCTAssertEqual(n1.options.clusterTLS?.certFile, certs.rogueCert)
    }
}
