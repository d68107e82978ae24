import Foundation
import XCTest
@testable import ClusterServer

/// A listener that cannot open is named in the start error (the process logs it as its [FTL]
/// line), and a start that failed never reports healthy on the monitor that did open.
final class ListenerStartTests: XCTestCase {
    private var servers: [NATSServer] = []

    override func tearDown() {
        for s in servers {
            s.shutdown()
            s.waitUntilShutdown()
        }
        servers = []
    }

    /// A server on free loopback ports, `configure`d, not started; shut down in tearDown.
    private func server(_ configure: (inout ServerOptions) -> Void) -> NATSServer {
        let s = makeTestServer(configure)
        servers.append(s)
        return s
    }

    /// A port held by a running server's client listener.
    private func takenPort() throws -> Int {
        let holder = server { _ in }
        try holder.start()
        return holder.clientPort
    }

    /// Every caller of `waitUntilShutdown` returns once the server stopped: two at once, and
    /// one after. A later call used to wait forever on a future of a closed loop. (Not in
    /// `servers`: tearDown would call it again and hang on a build with that bug.)
    func test_waitUntilShutdown_returnsForEveryCaller() throws {
        let s = makeTestServer { _ in }
        try s.start()
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<2 { Thread.detachNewThread { s.waitUntilShutdown(); done.signal() } }
        s.shutdown()
        for i in 0..<2 { XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "waiter \(i) never returned") }
        Thread.detachNewThread { s.waitUntilShutdown(); done.signal() }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "a later waiter never returned")
    }

    func test_monitorPortTaken_errorNamesTheMonitorListenerAndItsPort() throws {
        let taken = try takenPort()
        let s = server { $0.httpPort = taken }
        XCTAssertThrowsError(try s.start()) { error in
            guard let e = error as? ListenError else { return XCTFail("not a ListenError: \(error)") }
            XCTAssertEqual(e.listener, .monitoring)
            XCTAssertEqual(e.port, taken)
            XCTAssertTrue(e.description.hasPrefix("Can't start monitoring: can't listen to the monitor port: 127.0.0.1:\(taken), "), e.description)
            XCTAssertTrue(e.description.contains("Address already in use"), e.description)
        }
    }

    func test_clientPortTaken_errorNamesTheClientListenerAndItsPort() throws {
        let taken = try takenPort()
        let s = server { $0.port = taken }
        XCTAssertThrowsError(try s.start()) { error in
            guard let e = error as? ListenError else { return XCTFail("not a ListenError: \(error)") }
            XCTAssertEqual(e.listener, .client)
            XCTAssertTrue(e.description.hasPrefix("Error listening on port: 127.0.0.1:\(taken), "), e.description)
        }
    }

    /// The route listener opens last, after the monitor and the client listener: before, the
    /// error named the client port, and `/healthz` said ok although the start had failed.
    func test_routePortTaken_errorNamesTheRouteListener_andHealthzIsNotOk() throws {
        let taken = try takenPort()
        let s = server {
            $0.clusterName = "t"
            $0.clusterHost = "127.0.0.1"
            $0.clusterPort = taken
        }
        XCTAssertThrowsError(try s.start()) { error in
            guard let e = error as? ListenError else { return XCTFail("not a ListenError: \(error)") }
            XCTAssertEqual(e.listener, .route)
            XCTAssertTrue(e.description.hasPrefix("Error listening on router port: \(taken) - 127.0.0.1:\(taken), "), e.description)
        }
        XCTAssertFalse(s.isReady)
        XCTAssertNotEqual(s.monitoringPort, 0, "the monitor opened before the route listener failed")
        let health = try httpGet(port: s.monitoringPort, path: "/healthz")
        XCTAssertEqual(health.status, 503, health.body)
        XCTAssertTrue(health.body.contains("server not ready"), health.body)
    }
}
