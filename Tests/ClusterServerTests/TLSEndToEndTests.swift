import Foundation
import Logging
import NATSClient
import NIOCore
import NIOSSL
import XCTest
@testable import ClusterServer

/// Client TLS against an in-process server, with certificates made by openssl per test class.
final class TLSEndToEndTests: XCTestCase {
    private static var certs: TestCertificates!
    private var server: NATSServer!
    private var log = CapturedLog()

    override class func setUp() {
        super.setUp()
        certs = try? TestCertificates()
    }

    override class func tearDown() {
        certs?.remove()
        super.tearDown()
    }

    override func setUpWithError() throws {
        guard Self.certs != nil else { throw OpenSSLFailed(text: "could not create test certificates with openssl") }
    }

    override func tearDown() {
        server?.shutdown()
        server?.waitUntilShutdown()
        server = nil
    }

    private var certs: TestCertificates { Self.certs }

    private func start(verify: Bool = false, allowNonTLS: Bool = false, handshakeFirst: Bool = false,
                       timeout: Double = 2) throws {
        var t = TLSOptions(certFile: certs.serverCert, keyFile: certs.serverKey)
        t.caFile = certs.caFile
        t.verify = verify
        t.handshakeFirst = handshakeFirst
        t.timeoutSeconds = timeout
        let captured = log
        server = try startTestServer(logger: Logger(label: "tls") { _ in CapturingLogHandler(log: captured) }) { o in
            o.tls = t
            o.allowNonTLS = allowNonTLS
        }
    }

    /// A client configuration trusting the test CA, optionally presenting a certificate.
    private func clientTLS(cert: String? = nil, key: String? = nil, ca: String? = nil) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.trustRoots = .file(ca ?? certs.caFile)
        if let cert, let key {
            c.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            c.privateKey = .file(key)
        }
        return c
    }

    private func connect(_ tls: TLSConfiguration?, host: String = "127.0.0.1", first: Bool = false) async throws -> NATSConnection {
        var o = try NATSOptions(urls: ["nats://\(host):\(server.clientPort)"])
        o.tls = tls
        o.tlsHandshakeFirst = first
        o.allowReconnect = false
        return try await NATSConnection.connect(o)
    }

    private func infoJSON() throws -> [String: Any] {
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        let line = c.text.split(separator: "\r\n").first.map(String.init) ?? ""
        XCTAssertTrue(line.hasPrefix("INFO {"), line)
        return try JSONSerialization.jsonObject(with: Data(line.dropFirst(5).utf8)) as! [String: Any]
    }

    /// Publishes on one TLS connection and receives on another.
    private func assertPubSub(_ a: NATSConnection, _ b: NATSConnection, file: StaticString = #filePath, line: UInt = #line) async throws {
        let sub = try b.subscribe("secure.>")
        try await b.flush()
        try await a.publish("secure.x", payload: "over tls")
        try await a.flush()
        var it = sub.makeAsyncIterator()
        let m = await it.next()
        XCTAssertEqual(m.map { String(buffer: $0.payload) }, "over tls", file: file, line: line)
    }

    // MARK: - tests

    func test_tlsRequired_infoSaysSo_andClientsPubSubOverTLS() async throws {
        try start()
        let info = try infoJSON()
        XCTAssertEqual(info["tls_required"] as? Bool, true)
        XCTAssertNil(info["tls_verify"])
        XCTAssertNil(info["tls_available"])
        let a = try await connect(try clientTLS())
        let b = try await connect(try clientTLS(), host: "localhost")
        try await assertPubSub(a, b)
        await a.close()
        await b.close()
    }

    func test_tlsRequired_plaintextClientGetsTLSRequiredErrorAndIsClosed() throws {
        try start()
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        c.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(c.text.hasSuffix("-ERR 'Secure Connection - TLS Required'\r\n"), c.text)
        XCTAssertFalse(c.text.contains("PONG"))
    }

    func test_tlsRequired_swiftClientWithoutTLSConfig_refusesToConnect() async throws {
        try start()
        do {
            _ = try await connect(nil)
            XCTFail("connected in plaintext to a TLS-only server")
        } catch let error as NATSError {
            XCTAssertTrue("\(error)".contains("requires TLS"), "\(error)")
        }
    }

    func test_clientThatTrustsAnotherCA_failsTheHandshake() async throws {
        try start()
        do {
            _ = try await connect(try clientTLS(ca: certs.rogueCAFile))
            XCTFail("accepted a server certificate from an untrusted CA")
        } catch {}
    }

    func test_allowNonTLS_infoSaysAvailable_andBothKindsOfClientWork() async throws {
        try start(allowNonTLS: true)
        let info = try infoJSON()
        XCTAssertNil(info["tls_required"])
        XCTAssertEqual(info["tls_available"] as? Bool, true)
        let secure = try await connect(try clientTLS())
        let plain = try await connect(nil)
        try await assertPubSub(secure, plain)
        try await assertPubSub(plain, secure)
        await secure.close()
        await plain.close()
    }

    func test_verify_acceptsClientCertFromTheCA() async throws {
        try start(verify: true)
        XCTAssertEqual(try infoJSON()["tls_verify"] as? Bool, true)
        let a = try await connect(try clientTLS(cert: certs.clientCert, key: certs.clientKey))
        let b = try await connect(try clientTLS(cert: certs.clientCert, key: certs.clientKey))
        try await assertPubSub(a, b)
        await a.close()
        await b.close()
    }

    func test_verify_refusesClientWithoutCertificate() async throws {
        try start(verify: true)
        do {
            let c = try await connect(try clientTLS())
            // TLS 1.3 may finish the client's side before the server rejects it: then the
            // server's alert closes the connection before the CONNECT's PONG.
            await c.close()
            XCTFail("a client without a certificate got connected")
        } catch {}
        XCTAssertTrue(waitUntil { self.log.contains("TLS handshake error") })
    }

    func test_verify_refusesClientCertFromAnotherCA() async throws {
        try start(verify: true)
        do {
            let c = try await connect(try clientTLS(cert: certs.rogueCert, key: certs.rogueKey))
            await c.close()
            XCTFail("a client certificate from another CA was accepted")
        } catch {}
        XCTAssertTrue(waitUntil { self.log.contains("TLS handshake error") })
        // The server is unharmed: a good client still connects.
        let ok = try await connect(try clientTLS(cert: certs.clientCert, key: certs.clientKey))
        await ok.close()
    }

    func test_handshakeFirst_infoComesOverTLS() async throws {
        try start(handshakeFirst: true)
        let a = try await connect(try clientTLS(), first: true)
        let b = try await connect(try clientTLS(), first: true)
        try await assertPubSub(a, b)
        await a.close()
        await b.close()
        // A plaintext client gets nothing readable: no INFO before the handshake.
        let raw = try RawClient(port: server.clientPort, timeoutMs: 300)
        XCTAssertFalse(raw.waitFor("INFO"))
    }

    func test_handshakeTimeout_closesAClientThatNeverStartsTLS() throws {
        try start(timeout: 0.2)
        let c = try RawClient(port: server.clientPort)
        XCTAssertTrue(c.waitFor("\r\n"))
        // Never sends a byte: the server closes once tls.timeout passes.
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(waitUntil { self.log.contains("TLS handshake timeout") })
    }

    func test_missingCertificateFile_failsStartWithThePath() throws {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 1
        o.tls = TLSOptions(certFile: certs.directory.appendingPathComponent("nope.pem").path, keyFile: certs.serverKey)
        let s = NATSServer(options: o, logger: Logger(label: "tls") { _ in CapturingLogHandler(log: CapturedLog()) })
        XCTAssertThrowsError(try s.start()) { error in
            XCTAssertTrue("\(error)".contains("nope.pem"), "\(error)")
        }
        s.shutdown()
        s.waitUntilShutdown()
    }

    func test_keyThatDoesNotMatchTheCertificate_failsStart() throws {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 1
        o.tls = TLSOptions(certFile: certs.serverCert, keyFile: certs.clientKey)
        let s = NATSServer(options: o, logger: Logger(label: "tls") { _ in CapturingLogHandler(log: CapturedLog()) })
        XCTAssertThrowsError(try s.start())
        s.shutdown()
        s.waitUntilShutdown()
    }

    // MARK: - reload (SIGHUP)

    /// The running options with the client `tls` block pointed at other files.
    private func reloaded(cert: String, key: String, ca: String) -> ServerOptions {
        var o = server.options
        o.tls?.certFile = cert
        o.tls?.keyFile = key
        o.tls?.caFile = ca
        return o
    }

    func test_reload_newConnectionsGetTheNewCertificate_existingOnesStayUp() async throws {
        try start()
        let a = try await connect(try clientTLS())
        let b = try await connect(try clientTLS())
        XCTAssertEqual(server.reload(reloaded(cert: certs.rogueCert, key: certs.rogueKey, ca: certs.rogueCAFile)), [])
        XCTAssertTrue(log.contains("Reloaded: client TLS certificate"))
        XCTAssertEqual(server.options.tls?.certFile, certs.rogueCert)
        // New clients see the new certificate: only a client trusting its CA gets in.
        do {
            _ = try await connect(try clientTLS())
            XCTFail("a new connection was still served the old certificate")
        } catch {}
        let c = try await connect(try clientTLS(ca: certs.rogueCAFile))
        // Connections made before the reload keep working.
        try await assertPubSub(a, b)
        await a.close()
        await b.close()
        await c.close()
    }

    func test_reload_withABadCertificate_failsAndKeepsTheOldOne() async throws {
        try start()
        let missing = certs.directory.appendingPathComponent("missing.pem").path
        var bad = reloaded(cert: missing, key: certs.serverKey, ca: certs.caFile)
        let payloadBefore = server.options.maxPayload
        bad.maxPayload = payloadBefore + 1
        XCTAssertEqual(server.reload(bad), [])
        // As nats-server: the whole reload fails, not only its TLS part.
        XCTAssertEqual(server.options.maxPayload, payloadBefore)
        XCTAssertTrue(log.contains("Failed to reload server configuration: tls: cannot load cert_file"))
        XCTAssertTrue(log.contains(missing))
        XCTAssertEqual(server.options.tls?.certFile, certs.serverCert)
        // A key that does not match the certificate is refused the same way.
        XCTAssertEqual(server.reload(reloaded(cert: certs.rogueCert, key: certs.serverKey, ca: certs.caFile)), [])
        XCTAssertEqual(server.options.tls?.certFile, certs.serverCert)
        let a = try await connect(try clientTLS())
        let b = try await connect(try clientTLS())
        try await assertPubSub(a, b)
        await a.close()
        await b.close()
    }

    func test_reload_turningTLSOffNeedsARestart() throws {
        try start()
        var o = server.options
        o.tls = nil
        XCTAssertEqual(server.reload(o), ["tls"])
        XCTAssertEqual(server.options.tls?.certFile, certs.serverCert)
        XCTAssertEqual(try infoJSON()["tls_required"] as? Bool, true)
    }
}
