import NIOCore
import NIOSSL

/// The channel handler of one TCP connection: runs the handshake, then parses server ops and
/// hands them to the `NATSConnection`. Thin by design: all state lives in the connection.
/// Confined to its channel's event loop, except `closed`, which the connection's lock guards.
final class ConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case awaitingInfo
        case awaitingPong(ServerInfo)
        case connected
        case failed
    }

    let connection: NATSConnection
    let generation: UInt64
    private let handshake: EventLoopPromise<ServerInfo>
    private var phase = Phase.awaitingInfo
    private var parser = ServerOpParser()
    private var cumulation: ByteBuffer?
    private var needsFlush = false
    /// Guarded by the connection's lock: set once the channel went inactive.
    var closed = false
    /// Host dialed, for TLS server-name checks.
    private let serverHost: String

    init(connection: NATSConnection, generation: UInt64, handshake: EventLoopPromise<ServerInfo>, serverHost: String = "") {
        self.connection = connection
        self.generation = generation
        self.handshake = handshake
        self.serverHost = serverHost
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var pending = cumulation.take() {
            pending.writeBuffer(&incoming)
            buffer = pending
        } else {
            buffer = incoming
        }
        do {
            while case .connected = phase, let op = try parser.next(from: &buffer) {
                handleConnected(op, context: context)
            }
            while !isConnectedOrFailed, let op = try parser.next(from: &buffer) {
                handleHandshake(op, context: context)
            }
            // The handshake may have completed mid-buffer: keep going in connected mode.
            while case .connected = phase, let op = try parser.next(from: &buffer) {
                handleConnected(op, context: context)
            }
        } catch {
            fail(error, context: context)
            return
        }
        if buffer.readableBytes > 0 {
            if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
            cumulation = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(NATSError.connectionFailed("connection closed during handshake"))
        connection.channelClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(error, context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .connected = phase {
            connection.flushOutbound()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Ops

    private var isConnectedOrFailed: Bool {
        switch phase {
        case .connected, .failed: return true
        case .awaitingInfo, .awaitingPong: return false
        }
    }

    private func handleHandshake(_ op: ServerOp, context: ChannelHandlerContext) {
        switch (phase, op) {
        case (.awaitingInfo, .info(let info)):
            do {
                try startTLSIfNeeded(info, context: context)
            } catch {
                fail(error, context: context)
                return
            }
            var out = context.channel.allocator.buffer(capacity: 256)
            ClientOpEncoder.writeConnect(&out, json: connection.connectJSON(for: info))
            ClientOpEncoder.writePing(&out)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            phase = .awaitingPong(info)
        case (.awaitingPong(let info), .pong):
            phase = .connected
            handshake.succeed(info)
        case (.awaitingPong, .info(let info)):
            phase = .awaitingPong(info)
        case (_, .ping):
            writePong(context)
        case (_, .ok):
            break
        case (_, .err(let text)):
            fail(NATSError.serverError(text), context: context)
        default:
            fail(NATSError.protocolError("unexpected \(op) during handshake"), context: context)
        }
    }

    private func handleConnected(_ op: ServerOp, context: ChannelHandlerContext) {
        switch op {
        case .msg(let message): connection.deliver(message)
        case .ping: writePong(context)
        case .pong: connection.handlePong()
        case .err(let text): connection.handleServerError(text)
        case .info(let info): connection.updateInfo(info)
        case .ok: break
        }
    }

    /// After the plaintext INFO, a TLS handler goes in front of this one; the CONNECT written
    /// next is held by NIOSSL until the handshake is done.
    private func startTLSIfNeeded(_ info: ServerInfo, context: ChannelHandlerContext) throws {
        let options = connection.options
        guard let config = options.tls else {
            if info.tlsRequired == true { throw NATSError.connectionFailed("server requires TLS; set NATSOptions.tls") }
            return
        }
        if options.tlsHandshakeFirst { return }
        try context.pipeline.syncOperations.addHandler(Self.tlsHandler(config, serverHost: serverHost), position: .first)
    }

    static func tlsHandler(_ config: TLSConfiguration, serverHost: String) throws -> NIOSSLClientHandler {
        let sslContext = try NIOSSLContext(configuration: config)
        // An IP address cannot be a TLS server name; NIOSSL then checks the certificate's IP SANs.
        let isIP = (try? SocketAddress(ipAddress: serverHost, port: 0)) != nil
        return try NIOSSLClientHandler(context: sslContext, serverHostname: isIP || serverHost.isEmpty ? nil : serverHost)
    }

    private func writePong(_ context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: 6)
        ClientOpEncoder.writePong(&out)
        context.write(wrapOutboundOut(out), promise: nil)
        needsFlush = true
    }

    private func fail(_ error: Error, context: ChannelHandlerContext) {
        phase = .failed
        cumulation = nil
        handshake.fail(error)
        context.close(promise: nil)
    }
}

extension Optional {
    /// Moves the value out, leaving nil (avoids a copy-on-write of a shared buffer).
    mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
