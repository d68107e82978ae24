import Foundation
import NIOCore
import XCTest
@testable import NATSClient

final class ReconnectIntegrationTests: IntegrationTestCase {
    func test_reconnect_afterServerRestart_resubscribesAndDeliversAgain() async throws {
        let sub = try await connect()
        let counter = Counter()
        _ = try sub.subscribe("after.restart") { _ in counter.increment() }
        let limited = try sub.subscribe("limited.restart")
        try limited.unsubscribe(after: 2)
        try await sub.flush()
        let pub0 = try await connect()
        try await pub0.publish("limited.restart", payload: "before")
        try await pub0.flush()

        server.stop()
        try await waitForStatus(sub, .reconnecting)
        try server.start()  // same port
        try await sub.waitUntilConnected(timeout: .seconds(10))
        XCTAssertEqual(sub.statistics.reconnects, 1)

        let pub = try await connect()
        try await sub.flush()  // SUBs replayed before this PING
        for _ in 0..<5 { try await pub.publish("after.restart", payload: "x") }
        for i in 0..<3 { try await pub.publish("limited.restart", payload: "after \(i)") }
        try await pub.flush()
        let received = try await counter.wait(for: 5)
        XCTAssertEqual(received, 5)
        var limitedGot: [String] = []
        for await m in limited { limitedGot.append(m.string) }  // remaining max was 1
        XCTAssertEqual(limitedGot, ["before", "after 0"])
    }

    func test_reconnect_withSecondServerListed_failsOverToIt() async throws {
        let second = try NATSServerProcess()
        addTeardownBlock { second.stop() }
        try second.start()
        let nc = try await connect { $0.servers.append(ServerAddress(host: "127.0.0.1", port: second.port)) }
        XCTAssertEqual(nc.connectedServer?.port, server.port)
        let counter = Counter()
        _ = try nc.subscribe("failover") { _ in counter.increment() }
        try await nc.flush()
        server.stop()  // for good: the client must move on to the second server
        try await nc.flush(timeout: .seconds(10))
        XCTAssertEqual(nc.connectedServer?.port, second.port)
        try await nc.publish("failover", payload: "x")
        let received = try await counter.wait(for: 1)
        XCTAssertEqual(received, 1)
    }

    func test_lameDuckInfo_withSecondServerListed_movesThereBeforeBeingDropped() async throws {
        let second = try NATSServerProcess()
        addTeardownBlock { second.stop() }
        try second.start()
        let nc = try await connect { $0.servers.append(ServerAddress(host: "127.0.0.1", port: second.port)) }
        XCTAssertEqual(nc.connectedServer?.port, server.port)
        server.signal(SIGUSR2)  // nats-server: enter lame-duck mode, INFO {"ldm":true} to clients
        // nats-server only starts closing clients after its 10 s grace period, so moving
        // within 5 s shows the client acted on the INFO.
        let deadline = NIODeadline.now() + .seconds(5)
        while nc.connectedServer?.port != second.port, NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertEqual(nc.connectedServer?.port, second.port)
        try await nc.flush()
        server.kill9()  // a lame-duck server sits out SIGTERM; do not spend the teardown on it
    }

    func test_reconnect_publishesBufferedWhileDisconnected_followReplayedSubscriptions() async throws {
        // Same connection publishes and subscribes (echo on): after reconnect the SUB must be
        // written before the buffered PUB, or the message would reach nobody.
        let nc = try await connect()
        let subscription = try nc.subscribe("buffered")
        try await nc.flush()
        server.stop()
        try await waitForStatus(nc, .reconnecting)
        try await nc.publish("buffered", payload: "while down")
        try server.start()
        try await nc.flush(timeout: .seconds(10))  // waits for reconnect, then the round trip
        let got = try await collect(subscription, count: 1)
        XCTAssertEqual(got.map(\.string), ["while down"])
    }

    func test_reconnect_withServerGone_givesUpAfterMaxAttempts() async throws {
        let nc = try await connect {
            $0.maxReconnectAttempts = 3
            $0.reconnectWaitMin = .milliseconds(5)
        }
        server.stop()
        try await waitForStatus(nc, .closed, timeout: .seconds(10))
        do {
            try await nc.publish("x", payload: "y")
            XCTFail("expected connectionClosed")
        } catch {
            XCTAssertEqual(error as? NATSError, .connectionClosed)
        }
    }

    func test_keepalive_withFrozenServer_detectsStaleConnectionAndReconnects() async throws {
        let nc = try await connect {
            $0.pingInterval = .milliseconds(50)
            $0.maxPingsOut = 2
        }
        server.pause()
        try await waitForStatus(nc, .reconnecting, timeout: .seconds(3))
        server.resume()
        try await nc.waitUntilConnected(timeout: .seconds(10))
        try await nc.flush()
        XCTAssertEqual(nc.statistics.reconnects, 1)
    }

    func test_flush_inFlightWhenServerDies_completesAfterReconnect() async throws {
        let nc = try await connect()
        server.pause()
        let flush = Task { try await nc.flush(timeout: .seconds(10)) }
        try await Task.sleep(nanoseconds: 50_000_000)  // the PING is now with the frozen server
        server.kill9()
        try server.start()
        try await flush.value
        XCTAssertEqual(nc.statistics.reconnects, 1)
        XCTAssertEqual(nc.status, .connected)
    }

    func test_connect_withReconnectDisabled_closesOnServerLoss() async throws {
        let nc = try await connect { $0.allowReconnect = false }
        server.stop()
        try await waitForStatus(nc, .closed)
    }

    private func waitForStatus(_ nc: NATSConnection, _ status: NATSConnectionStatus, timeout: TimeAmount = .seconds(5)) async throws {
        let deadline = NIODeadline.now() + timeout
        while nc.status != status {
            guard NIODeadline.now() < deadline else {
                return XCTFail("status stayed \(nc.status), expected \(status)")
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }
}

final class AuthIntegrationTests: IntegrationTestCase {
    override var serverArguments: [String] { ["--user", "alice", "--pass", "s3cret"] }

    func test_connect_withRightCredentials_succeeds() async throws {
        let nc = try await connect {
            $0.user = "alice"
            $0.password = "s3cret"
        }
        try await nc.flush()
        XCTAssertEqual(nc.serverInfo?.authRequired, true)
    }

    func test_connect_withCredentialsInURL_succeeds() async throws {
        let nc = try await NATSConnection.connect("nats://alice:s3cret@127.0.0.1:\(server.port)")
        try await nc.flush()
        await nc.close()
    }

    func test_connect_withWrongPassword_throwsAuthorizationViolation() async throws {
        do {
            _ = try await connect {
                $0.user = "alice"
                $0.password = "wrong"
            }
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error as? NATSError, .serverError("Authorization Violation"))
        }
    }
}
