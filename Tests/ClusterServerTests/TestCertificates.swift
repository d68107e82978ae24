import Foundation
import XCTest

/// Certificates made with `openssl` for one test run, in a temp directory removed at the
/// end (private keys are never committed). One CA signs the server/node certificate (SANs
/// 127.0.0.1 and localhost, usable for both TLS roles, as route certificates must be) and a
/// client certificate; a second, unrelated CA signs a "rogue" client certificate.
final class TestCertificates {
    let directory: URL
    var caFile: String { path("ca.pem") }
    var serverCert: String { path("server.pem") }
    var serverKey: String { path("server-key.pem") }
    var clientCert: String { path("client.pem") }
    var clientKey: String { path("client-key.pem") }
    var rogueCAFile: String { path("rogue-ca.pem") }
    var rogueCert: String { path("rogue.pem") }
    var rogueKey: String { path("rogue-key.pem") }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("clusterd-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            try makeCA("ca", "clusterd test CA")
            try makeLeaf("server", signedBy: "ca", subject: "localhost",
                         extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
            try makeLeaf("client", signedBy: "ca", subject: "test client", extensions: "extendedKeyUsage=clientAuth\n")
            try makeCA("rogue-ca", "some other CA")
            try makeLeaf("rogue", signedBy: "rogue-ca", subject: "localhost",
                         extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
        } catch {
            remove()
            throw error
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func makeCA(_ name: String, _ cn: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name)-key.pem"), "-out", path("\(name).pem"), "-days", "2", "-subj", "/CN=\(cn)",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    private func makeLeaf(_ name: String, signedBy ca: String, subject: String, extensions: String) throws {
        let ext = path("\(name).ext")
        try ("basicConstraints=CA:FALSE\n" + extensions).write(toFile: ext, atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", path("\(name)-key.pem"), "-out", path("\(name).csr"), "-subj", "/CN=\(subject)"])
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca)-key.pem"),
                     "-CAcreateserial", "-out", path("\(name).pem"), "-days", "2", "-extfile", ext])
    }

    private func openssl(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl"] + args
        p.currentDirectoryURL = directory
        p.standardOutput = FileHandle.nullDevice
        let errPipe = Pipe()
        p.standardError = errPipe
        try p.run()
        let err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw OpenSSLFailed(text: "openssl \(args.first ?? "") failed (\(p.terminationStatus)): \(String(decoding: err, as: UTF8.self))")
        }
    }
}

struct OpenSSLFailed: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
