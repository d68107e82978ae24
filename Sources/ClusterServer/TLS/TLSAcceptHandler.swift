import NIOCore
import NIOSSL

/// First handler of a client connection on a TLS listener (unless `handshake_first`): the
/// plaintext INFO has gone out; the client's first byte decides what follows. A TLS record
/// (0x16, handshake) puts a `NIOSSLServerHandler` in its place; anything else is plaintext,
/// passed on when `allow_non_tls` is set, refused with nats-server's error otherwise.
/// Either way this handler removes itself, so it costs nothing after the first read.
final class TLSAcceptHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let tlsHandshakeRecord: UInt8 = 0x16

    private let sslContext: NIOSSLContext
    private let allowPlaintext: Bool
    private var decided = false

    init(sslContext: NIOSSLContext, allowPlaintext: Bool) {
        self.sslContext = sslContext
        self.allowPlaintext = allowPlaintext
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if decided {
            context.fireChannelRead(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        decided = true
        if first == Self.tlsHandshakeRecord {
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext), position: .after(self))
            } catch {
                context.fireErrorCaught(error)
                return
            }
        } else if !allowPlaintext {
            var err = context.channel.allocator.buffer(capacity: 48)
            MessageEncoder.writeError(into: &err, "Secure Connection - TLS Required")
            context.writeAndFlush(wrapOutboundOut(err)).whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
