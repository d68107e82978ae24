import Foundation
import NIOCore
import XCTest
@testable import NATSClient

/// INFO `connect_urls` feed the servers reconnect may use (no sockets involved).
final class ServerDiscoveryTests: XCTestCase {
    private func info(_ urls: [String]?, ldm: Bool? = nil) -> ServerInfo {
        var i = ServerInfo(serverID: "S", version: "2.15.1")
        i.connectURLs = urls
        i.lameDuckMode = ldm
        return i
    }

    func test_connectURLs_areAddedOnce_inOrder_afterTheConfiguredServers() {
        let nc = NATSConnection(options: NATSOptions(servers: [ServerAddress(host: "127.0.0.1", port: 4222)]))
        nc.updateInfo(info(["127.0.0.1:4222", "127.0.0.1:4223", "bad:port:x", "10.0.0.2:4224", "127.0.0.1:4223"]))
        XCTAssertEqual(nc.knownServers.map(\.description),
                       ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://10.0.0.2:4224"])
        nc.updateInfo(info(nil))  // an INFO without the list forgets nothing
        XCTAssertEqual(nc.knownServers.count, 3)
    }

    func test_discovery_isBounded_andCanBeTurnedOff() {
        let many = (0..<1_000).map { "10.0.\($0 / 250).\($0 % 250):4222" }
        let nc = NATSConnection(options: NATSOptions(servers: [ServerAddress(host: "127.0.0.1", port: 4222)]))
        nc.updateInfo(info(many))
        XCTAssertEqual(nc.knownServers.count, 256)
        var o = NATSOptions(servers: [ServerAddress(host: "127.0.0.1", port: 4222)])
        o.discoverServers = false
        let off = NATSConnection(options: o)
        off.updateInfo(info(["127.0.0.1:4223"]))
        XCTAssertEqual(off.knownServers.count, 1)
    }

    func test_lameDuckNotice_whileNotConnected_callsNoHandler() {
        let calls = LockedCount()
        var o = NATSOptions(servers: [ServerAddress(host: "127.0.0.1", port: 4222)])
        o.onLameDuck = { _, _ in calls.bump() }
        let nc = NATSConnection(options: o)  // never connected: state is .reconnecting
        nc.updateInfo(info(["127.0.0.1:4223"], ldm: true))
        XCTAssertEqual(calls.value, 0)
        XCTAssertEqual(nc.knownServers.count, 2, "the list is still learned")
    }
}

private final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func bump() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
