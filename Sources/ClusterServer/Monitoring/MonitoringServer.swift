import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP monitoring listener (`-m`): nats-server's endpoints and `/metrics`.
final class MonitoringServer: @unchecked Sendable {
    private unowned let server: NATSServer
    private var channel: Channel?
    let endpoints: MonitoringEndpoints

    init(server: NATSServer) {
        self.server = server
        self.endpoints = MonitoringEndpoints(server: server)
    }

    /// Binds and returns the bound port.
    func start(host: String, port: Int) throws -> Int {
        let endpoints = self.endpoints
        let bootstrap = ServerBootstrap(group: server.group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(HTTPHandler(endpoints: endpoints))
                }
            }
        let ch = try bootstrap.bind(host: host, port: port).wait()
        channel = ch
        return ch.localAddress?.port ?? port
    }

    func stop() {
        try? channel?.close().wait()
    }
}

/// One request at a time per connection; answers GET/HEAD, refuses other methods.
private final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: MonitoringEndpoints
    private var head: HTTPRequestHead?

    init(endpoints: MonitoringEndpoints) { self.endpoints = endpoints }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            let response: MonitoringResponse
            if h.method == .GET || h.method == .HEAD {
                response = endpoints.respond(to: h.uri)
            } else {
                response = MonitoringResponse(status: .methodNotAllowed, contentType: "text/plain",
                                              body: "method not allowed\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.utf8.count))
            headers.add(name: "Connection", value: h.isKeepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: response.status,
                                                                   headers: headers))), promise: nil)
            if h.method != .HEAD {
                var buffer = context.channel.allocator.buffer(capacity: response.body.utf8.count)
                buffer.writeString(response.body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let keepAlive = h.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}

struct MonitoringResponse {
    var status: HTTPResponseStatus
    var contentType: String
    var body: String
}
