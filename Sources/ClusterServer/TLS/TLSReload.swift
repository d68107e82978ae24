import NIOSSL

/// The TLS part of a reload (SIGHUP), loaded before anything is applied: as in nats-server,
/// a certificate, key or CA that does not load fails the whole reload and the running
/// configuration stays in force.
struct TLSReload {
    /// New client TLS context for connections accepted from now on (nil: unchanged).
    var client: NIOSSLContext?
    /// New route contexts (accepting, dialing) for routes made from now on (nil: unchanged).
    var routes: (accept: NIOSSLContext, dial: NIOSSLContext)?
    /// The `tls` and `cluster.tls` blocks in force afterwards.
    var clientOptions: TLSOptions?
    var routeOptions: TLSOptions?
    /// Changes that need a restart: TLS turned on or off, `allow_non_tls`, `handshake_first`
    /// (they shape the listener and INFO, fixed at start).
    var needRestart: [String] = []

    /// Files are read again even when their paths did not change: a rotated certificate
    /// under the same name is the common case.
    init(old: ServerOptions, new: ServerOptions, clustered: Bool) throws {
        clientOptions = old.tls
        routeOptions = old.clusterTLS
        if let t = new.tls, let current = old.tls, t.handshakeFirst == current.handshakeFirst,
           new.allowNonTLS == old.allowNonTLS {
            client = try TLSContexts.server(t)
            clientOptions = t
        } else if new.tls != old.tls || new.allowNonTLS != old.allowNonTLS {
            needRestart.append("tls")
        }
        if let t = new.clusterTLS, old.clusterTLS != nil, clustered {
            routes = (try TLSContexts.server(t), try TLSContexts.client(t))
            routeOptions = t
        } else if new.clusterTLS != old.clusterTLS {
            needRestart.append("cluster tls")
        }
    }
}
