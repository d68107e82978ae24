import NIOCore

/// Cluster-wide account usage: each node reports its stored bytes of the account (every
/// replica it holds) to the others over the route, and keeps theirs (`remoteUsage`), so a
/// stream leader checks a publish against the account's bytes on every node without any
/// per-message traffic, as nats-server's `$JSC.ARU` usage updates do.
///
/// When: at a cluster tick (100 ms) whose bytes differ from the last report, and every
/// `refreshTicks` anyway (a node that just connected or restarted learns them). So a report
/// lags what the sender stores by at most one tick plus the housekeeping recount (50 ms) and
/// the route's delay; a node silent for `expiryTicks` is no longer counted.
extension JetStreamCluster {
    /// 1.5 s, nats-server's usage tick.
    static let usageRefreshTicks = 15
    /// 10 s: a node down or removed for longer stops counting.
    static let usageExpiryTicks = 100

    private var usageNamespace: String { Self.routeNamespace(AccountUsageReport.namespace, account: js.account) }
    private var limitsNamespace: String { Self.routeNamespace(AccountUsageReport.limitsNamespace, account: js.account) }

    func startUsageReports() {
        for namespace in [usageNamespace, limitsNamespace] {
            js.server.routeManager?.registerExtension(namespace) { [weak self] from, payload in
                guard let self else { return }
                let decoded = Result { try AccountUsageReport.decode(Array(payload.readableBytesView)) }
                self.js.queue.async { self.receiveUsage(decoded, from: from) }
            }
        }
    }

    private func receiveUsage(_ decoded: Result<AccountUsageReport, Error>, from serverID: String) {
        guard let report = try? decoded.get() else {
            js.server.logger.warning("Dropping a malformed account usage report from route \(serverID)")
            return
        }
        // Only a node's own route may speak for it (and never for this node).
        guard report.node != myName, js.server.routeManager?.peerServerIDs()[report.node] == serverID else { return }
        if !remoteUsage.record(report, tick: ticks) {
            js.server.logger.warning("Ignoring an account usage report of '\(report.node)': \(RemoteAccountUsage.maxNodes) nodes already reported")
        }
    }

    /// Sends this node's bytes when they changed or are due for a refresh; drops stale reports.
    func usageTick() {
        remoteUsage.expire(now: ticks, expiryTicks: Self.usageExpiryTicks)
        let memory = js.localStoredBytes(.memory), file = js.localStoredBytes(.file)
        let room = roomHere()
        if let last = usageSent, last.memory == memory, last.file == file, last.room == room,
           ticks - last.tick < Self.usageRefreshTicks { return }
        guard let routes = js.server.routeManager else { return }
        let peers = routes.peerServerIDs().values
        let wasLimited = usageSent?.room != nil
        usageSent = (memory, file, room, ticks)
        guard !peers.isEmpty else { return }
        var report = AccountUsageReport(node: myName, memory: memory, file: file)
        var frames = [(usageNamespace, report.encode())]
        if let room {
            report.limits = room
            frames.append((limitsNamespace, report.encode()))
        } else if wasLimited {
            // Unlimited since a reload: the peers drop the old limits now, not at expiry.
            report.limits = .init(memory: -1, file: -1)
            frames.append((limitsNamespace, report.encode()))
        }
        for id in peers {
            for (namespace, bytes) in frames {
                var buf = ByteBufferAllocator().buffer(capacity: bytes.count)
                buf.writeBytes(bytes)
                _ = routes.sendExtension(namespace, payload: buf, to: id)
            }
        }
    }

    /// What this node's server limits leave for the account beside the other accounts'
    /// reservations here (`NodeStoreUsage.room`), as its usage reports announce them; nil
    /// without limits. Older nodes read it as the node's limit, which is what it is for them.
    func roomHere() -> AccountUsageReport.Limits? {
        let usage = js.nodeUsage
        guard usage.isLimited else { return nil }
        let id = ObjectIdentifier(js)
        return .init(memory: usage.room(.memory, for: id), file: usage.room(.file, for: id))
    }
}
