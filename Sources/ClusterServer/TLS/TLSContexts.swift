import NIOCore
import NIOSSL

/// Builds the NIOSSL contexts of a node once, at start: loading certificates and keys is
/// far too slow to repeat per connection, and a bad file should stop the server at once.
public enum TLSContexts {
    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The listener side. `verify` asks for and checks the peer's certificate against
    /// `caFile`; the peer's address is not checked (clients have no name to match).
    public static func server(_ t: TLSOptions) throws -> NIOSSLContext {
        let (chain, key) = try identity(t)
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                              privateKey: .privateKey(key))
        config.minimumTLSVersion = t.minVersion == .v1_3 ? .tlsv13 : .tlsv12
        if t.verify {
            config.certificateVerification = .noHostnameVerification
            config.trustRoots = try trustRoots(t)
            // Tell clients which CAs we accept, so one with several certificates picks right.
            config.sendCANameList = true
        }
        return try context(config, t)
    }

    /// The dialing side of a route: presents our certificate and verifies the peer's
    /// against `caFile` and the host (or IP) it was dialed as, unless `insecure`.
    public static func client(_ t: TLSOptions) throws -> NIOSSLContext {
        let (chain, key) = try identity(t)
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = t.minVersion == .v1_3 ? .tlsv13 : .tlsv12
        config.certificateChain = chain.map { .certificate($0) }
        config.privateKey = .privateKey(key)
        config.trustRoots = try trustRoots(t)
        config.certificateVerification = t.insecure ? .none : .fullVerification
        return try context(config, t)
    }

    /// SNI and name checks take a host name; for an IP address NIOSSL checks the certificate's
    /// IP SANs against the connected address instead, which needs a nil name.
    static func serverHostname(for host: String) -> String? {
        if (try? SocketAddress(ipAddress: host, port: 0)) != nil { return nil }
        return host.isEmpty ? nil : host
    }

    private static func identity(_ t: TLSOptions) throws -> ([NIOSSLCertificate], NIOSSLPrivateKey) {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(t.certFile) } catch {
            throw LoadError(description: "tls: cannot load cert_file \"\(t.certFile)\": \(error)")
        }
        guard !chain.isEmpty else { throw LoadError(description: "tls: cert_file \"\(t.certFile)\" holds no certificate") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: t.keyFile, format: .pem) } catch {
            throw LoadError(description: "tls: cannot load key_file \"\(t.keyFile)\": \(error)")
        }
        return (chain, key)
    }

    private static func trustRoots(_ t: TLSOptions) throws -> NIOSSLTrustRoots {
        guard let ca = t.caFile else { return .default }
        do {
            let certs = try NIOSSLCertificate.fromPEMFile(ca)
            guard !certs.isEmpty else { throw LoadError(description: "no certificate in file") }
            return .certificates(certs)
        } catch {
            throw LoadError(description: "tls: cannot load ca_file \"\(ca)\": \(error)")
        }
    }

    private static func context(_ config: TLSConfiguration, _ t: TLSOptions) throws -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: config) } catch {
            // BoringSSL reports a key that does not belong to the certificate here.
            throw LoadError(description: "tls: cannot use cert_file \"\(t.certFile)\" with key_file \"\(t.keyFile)\": \(error)")
        }
    }
}
