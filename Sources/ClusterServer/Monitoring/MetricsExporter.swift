import NIOConcurrencyHelpers
import Prometheus

/// `/metrics` in Prometheus text format. Values are read from the server's counters at
/// scrape time (counters advance by the delta since the last scrape), so the message path
/// pays nothing for metrics.
final class MetricsExporter: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let lock = NIOLock()
    private var last: [String: Int] = [:]
    private let counters: [String: Counter]
    private let connections: Gauge
    private let subscriptions: Gauge
    private let rss: Gauge

    init() {
        var c: [String: Counter] = [:]
        for (name, help) in [
            ("in_msgs", "Messages received from clients"), ("in_bytes", "Payload bytes received from clients"),
            ("out_msgs", "Messages delivered to clients"), ("out_bytes", "Payload bytes delivered to clients"),
            ("slow_consumers", "Clients disconnected as slow consumers"),
            ("connections", "Client connections accepted"), ("auth_failures", "Failed client authentications"),
            ("permission_violations", "Publishes and subscriptions refused by permissions"),
            ("stale_deliveries_dropped", "JetStream deliveries from a deposed stream leader refused"),
        ] {
            c[name] = registry.makeCounter(name: "clusterd_\(name)_total", help: help)
        }
        counters = c
        connections = registry.makeGauge(name: "clusterd_connections", help: "Open client connections")
        subscriptions = registry.makeGauge(name: "clusterd_subscriptions", help: "Active subscriptions")
        rss = registry.makeGauge(name: "clusterd_resident_memory_bytes", help: "Resident set size")
    }

    func render(_ server: NATSServer, rssBytes: Int) -> String {
        let out = server.outMsgsTotal
        let s = server.stats
        let values: [String: Int] = [
            "in_msgs": s.inMsgs.load(ordering: .relaxed), "in_bytes": s.inBytes.load(ordering: .relaxed),
            "out_msgs": out.msgs, "out_bytes": out.bytes,
            "slow_consumers": s.slowConsumers.load(ordering: .relaxed),
            "connections": s.totalConnections.load(ordering: .relaxed),
            "auth_failures": s.authFailures.load(ordering: .relaxed),
            "permission_violations": s.permissionViolations.load(ordering: .relaxed),
            "stale_deliveries_dropped": server.staleDeliveries.dropped,
        ]
        return lock.withLock {
            for (name, value) in values {
                let delta = value - (last[name] ?? 0)
                if delta > 0 { counters[name]?.increment(by: Int64(delta)) }
                last[name] = max(value, last[name] ?? 0)
            }
            connections.set(Int64(server.connectionCount))
            subscriptions.set(Int64(server.sublist.count))
            rss.set(Int64(rssBytes))
            return registry.emitToString() + server.metricsProviders.map { $0() }.joined()
        }
    }
}
