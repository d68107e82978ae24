import Dispatch

/// Answers the system account's server requests (`SystemRequest`) with this server's
/// monitoring data, as nats-server does: `{"server": {...}, "data": {...}}` (`statsz` in place
/// of `data` for `PING`/`STATSZ`; `IDZ` is the bare `{name, host, id}`; a bad body
/// `{"server": ..., "error": {"code": 400, ...}}`). The subscriptions carry cluster-wide
/// interest, so a `PING` from a client on any node is answered by every node once.
///
/// Only in the configured `system_account`: the answers hold client addresses and names, so
/// other accounts (and `$G` when no accounts are configured) find no responders, as on
/// nats-server.
final class SystemRequests: @unchecked Sendable {
    private unowned let server: NATSServer
    private let account: Account
    /// Its own endpoints: their CPU sampler is then only used from `queue`.
    private let endpoints: MonitoringEndpoints
    /// Answers are built here, off the thread that delivered the request: a route's or a
    /// client's event loop must not wait for JetStream's queues (`JSZ`).
    private let queue = DispatchQueue(label: "clusterd.system-requests")
    /// At most this many wait for `queue`; more are dropped unanswered (a client flooding the
    /// requests must not grow the queue, and the copies in it, without end).
    private let backlog = APIBacklog(limit: 1_000)
    private var subscriptions: [Subscription] = []
    /// Set on `queue` by `stop()`: requests still waiting then go unanswered, so none reaches
    /// the server after its shutdown.
    private var stopped = false

    init(server: NATSServer, account: Account) {
        self.server = server
        self.account = account
        endpoints = MonitoringEndpoints(server: server)
    }

    func start() {
        let id = server.serverID
        subscriptions = SystemRequest.subjects(serverID: id).map { subject in
            server.subscribeInternal(subject, propagates: true, in: account) { [weak self] msg in
                guard let self, let reply = msg.reply, let kind = SystemRequest.kind(of: msg.subject, serverID: id) else { return }
                guard self.backlog.admit() else { return }
                let body = Array(msg.payload.readableBytesView)
                self.queue.async {
                    defer { self.backlog.done() }
                    self.answer(kind, body: body, reply: reply)
                }
            }
        }
    }

    func stop() {
        for sub in subscriptions { server.unsubscribeInternal(sub, in: account) }
        subscriptions = []
        queue.sync { stopped = true }
    }

    private func answer(_ kind: SystemRequest.Kind, body: [UInt8], reply: String) {
        guard !stopped else { return }
        let request: SystemRequest
        do {
            request = try SystemRequest.parse(kind, body: body)
        } catch {
            let text = (error as? SystemRequest.Failure)?.description ?? "\(error)"
            return send(["server": server.systemServerInfo(), "error": ["code": 400, "description": text]], to: reply)
        }
        if request.excludes(serverName: server.serverName, host: server.options.host, cluster: server.systemClusterName) { return }
        switch kind {
        case .idz:
            send(["name": server.serverName, "host": server.options.host, "id": server.serverID], to: reply)
        case .statsz:
            send(["server": server.systemServerInfo(), "statsz": statsz()], to: reply)
        default:
            let data = endpoints.object(kind.path, request.query) ?? [:]
            send(["server": server.systemServerInfo(), "data": data], to: reply)
        }
    }

    /// nats-server's `ServerStats`, from the same counters as `/varz` and `/routez`.
    private func statsz() -> [String: Any] {
        let v = endpoints.varz()
        let routes = (endpoints.object("/routez", [:])?["routes"] as? [[String: Any]]) ?? []
        return [
            "start": v["start"] ?? "", "mem": v["mem"] ?? 0, "cores": v["cores"] ?? 0, "cpu": v["cpu"] ?? 0,
            "connections": v["connections"] ?? 0, "total_connections": v["total_connections"] ?? 0,
            "active_accounts": server.accountsByName.count, "subscriptions": v["subscriptions"] ?? 0,
            "sent": ["msgs": v["out_msgs"] ?? 0, "bytes": v["out_bytes"] ?? 0],
            "received": ["msgs": v["in_msgs"] ?? 0, "bytes": v["in_bytes"] ?? 0],
            "slow_consumers": v["slow_consumers"] ?? 0,
            "routes": routes.map { r -> [String: Any] in
                ["rid": r["rid"] ?? 0, "name": r["remote_name"] ?? "",
                 "sent": ["msgs": r["out_msgs"] ?? 0, "bytes": r["out_bytes"] ?? 0],
                 "received": ["msgs": r["in_msgs"] ?? 0, "bytes": r["in_bytes"] ?? 0],
                 "pending": r["pending_size"] ?? 0]
            },
            "active_servers": routes.count + 1,
        ]
    }

    private func send(_ body: [String: Any], to reply: String) {
        server.publishSystemMessage(body, to: reply, in: account)
    }
}
