import Foundation
import NIOCore

/// The consumers a source or mirror runs on its origin are the server's own, as nats-server's
/// internal ones: not in `CONSUMER.NAMES`/`LIST` nor the stream's `consumer_count`, and not
/// counted against the origin's (or the account's) `max_consumers` (probed against 2.15.1: an
/// origin at its limit is still mirrored and sourced; the account's consumer total counts
/// them, and so does clusterd's). A client cannot ask for that: the create does not go through
/// `$JS.API` but straight to the origin's leader, on this node or over the route as a
/// `jsinternal` frame, which only servers send.
extension JetStreamService {
    static let internalFramesNamespace = "jsinternal"

    /// Creates the consumer `body` (a `CONSUMER.CREATE` request) on `origin` as the server's
    /// own; the answer goes to `reply` as the API's would. A cluster whose origin replicas do
    /// not all take `jsinternal` frames (an older version) gets the API request instead.
    func requestInternalConsumer(origin: String, reply: String, body: [UInt8]) {
        guard let cluster, !cluster.leads(origin) else {
            return queue.async { self.createInternalConsumer(origin: origin, reply: reply, body: body) }
        }
        let peers = cluster.assignments[origin]?.peers ?? []
        guard !peers.isEmpty, peers.allSatisfy({ $0 == cluster.myName || cluster.internalFrameReaders.contains($0) }),
              let routes = server.routeManager else {
            bus.publishInternal(subject: "$JS.API.CONSUMER.CREATE.\(origin)", reply: reply, payload: ByteBuffer(bytes: body))
            return
        }
        // To every peer: only the origin's leader acts (who leads may have just changed).
        var w = CatchupWire.Writer()
        w.bytes.append(1)
        w.data(Array(origin.utf8)); w.data(Array(reply.utf8)); w.data(body)
        let namespace = JetStreamCluster.routeNamespace(Self.internalFramesNamespace, account: account)
        for id in routes.peerServerIDs().values {
            var buf = ByteBufferAllocator().buffer(capacity: w.bytes.count)
            buf.writeBytes(w.bytes)
            _ = routes.sendExtension(namespace, payload: buf, to: id)
        }
    }

    func createInternalConsumer(origin: String, reply: String, body: [UInt8]) {
        guard !stopped else { return }
        creatingInternalConsumer = true
        defer { creatingInternalConsumer = false }
        serveAPI(subject: "$JS.API.CONSUMER.CREATE.\(origin)", op: ["CONSUMER", "CREATE", origin], reply: reply, headers: nil, body: body)
    }
}

extension JetStreamCluster {
    func registerInternalConsumerFrames() {
        let namespace = Self.routeNamespace(JetStreamService.internalFramesNamespace, account: js.account)
        js.server.routeManager?.registerExtension(namespace) { [weak self] from, payload in
            guard let self else { return }
            var r = CatchupWire.Reader(bytes: Array(payload.readableBytesView))
            guard (try? r.byte()) == 1, let origin = try? r.data(), let reply = try? r.data(), let body = try? r.data(),
                  r.at == r.bytes.count else {
                self.js.server.logger.warning("Dropping a malformed internal consumer frame from \(from)")
                return
            }
            let name = String(decoding: origin, as: UTF8.self), subject = String(decoding: reply, as: UTF8.self)
            self.js.queue.async {
                guard self.leads(name) else { return }
                self.js.createInternalConsumer(origin: name, reply: subject, body: body)
            }
        }
    }
}
