import Logging
import XCTest
@testable import ClusterServer

final class MetricsProviderTests: XCTestCase {
    func test_metrics_appendsSubsystemProviders() throws {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.httpHost = "127.0.0.1"
        o.httpPort = -1
        o.threads = 1
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = NATSServer(options: o, logger: logger)
        server.metricsProviders.append { "clusterd_test_gauge{stream=\"S\"} 7\n" }
        try server.start()
        defer { server.shutdown(); server.waitUntilShutdown() }
        let body = try httpGet(port: server.monitoringPort, path: "/metrics").body
        XCTAssertTrue(body.contains("clusterd_connections 0"), body)
        XCTAssertTrue(body.hasSuffix("clusterd_test_gauge{stream=\"S\"} 7\n"), body)
    }
}
