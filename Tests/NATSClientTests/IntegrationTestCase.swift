import Foundation
import NIOCore
import XCTest
@testable import NATSClient

/// Base for tests against a real nats-server: starts one per test, and stops and reaps it
/// (plus every connection opened through `connect`) in teardown, also when the test fails.
class IntegrationTestCase: XCTestCase {
    var server: NATSServerProcess!
    private var connections: [NATSConnection] = []

    /// Extra nats-server flags for this test class.
    var serverArguments: [String] { [] }

    override func setUpWithError() throws {
        try super.setUpWithError()
        server = try NATSServerProcess(arguments: serverArguments)
        let started = server!
        addTeardownBlock { started.stop() }
        try server.start()
        // Teardown blocks run last-in first-out: connections close before the server stops,
        // so no reconnect loop starts during teardown.
        addTeardownBlock { [weak self] in
            for connection in self?.connections ?? [] { await connection.close() }
            self?.connections = []
        }
    }

    func connect(_ configure: (inout NATSOptions) -> Void = { _ in }) async throws -> NATSConnection {
        var options = try NATSOptions(urls: [server.url])
        options.reconnectWaitMin = .milliseconds(10)
        options.reconnectWaitMax = .milliseconds(100)
        configure(&options)
        let connection = try await NATSConnection.connect(options)
        connections.append(connection)
        return connection
    }

    /// Collects `count` messages from `subscription`, failing after `timeout`.
    func collect(_ subscription: NATSSubscription, count: Int, timeout: TimeAmount = .seconds(5)) async throws -> [NATSMessage] {
        try await withThrowingTaskGroup(of: [NATSMessage]?.self) { group in
            group.addTask {
                var out: [NATSMessage] = []
                for await m in subscription {
                    out.append(m)
                    if out.count == count { break }
                }
                return out
            }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let messages = first else {
                throw NATSError.timeout
            }
            return messages
        }
    }
}

/// Counts messages delivered to a handler subscription.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() { lock.lock(); value += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return value }

    /// Polls until `count >= target` or the timeout passes; returns the final count.
    func wait(for target: Int, timeout: TimeAmount = .seconds(5)) async throws -> Int {
        let deadline = NIODeadline.now() + timeout
        while count < target, NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        return count
    }
}
