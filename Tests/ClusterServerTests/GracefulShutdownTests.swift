import Dispatch
import Foundation
import XCTest
@testable import ClusterServer

/// A graceful stop tells each client to leave only once its requests in flight were answered,
/// in the same write as the last reply, and keeps serving it until then.
final class GracefulShutdownTests: XCTestCase {
    private var server: NATSServer!

    override func tearDown() {
        server?.shutdown()
        server?.waitUntilShutdown()
        server = nil
    }

    private func client() throws -> RawClient {
        try RawClient.connected(port: server.clientPort, connect: "{\"verbose\":false,\"headers\":true,\"protocol\":1}")
    }

    private func sync(_ c: RawClient) {
        let before = c.count(of: "PONG\r\n")
        c.send("PING\r\n")
        XCTAssertTrue(c.waitForCount("PONG\r\n", before + 1), "no PONG: \(c.text.suffix(200))")
    }

    func test_stop_toldToLeaveOnlyAfterTheReplyInFlight() throws {
        server = try startTestServer()
        // Deadlines far away: only the replies decide when clients are told.
        server.departureTellWithin = 60
        server.departureCloseWithin = 60
        let port = server.clientPort
        // The handoff step is held open so the test can send a request during the stop.
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        server.handoffHooks.append {
            entered.signal()
            release.wait()
        }
        let responder = try client()
        responder.send("SUB svc 1\r\n")
        sync(responder)
        let requester = try client()
        requester.send("SUB _INBOX.r.* 1\r\n")
        sync(requester)

        let stopped = DispatchSemaphore(value: 0)
        let srv = server!
        DispatchQueue.global().async {
            srv.shutdown()
            stopped.signal()
        }
        XCTAssertEqual(entered.wait(timeout: .now() + 10), .success)
        XCTAssertThrowsError(try RawClient(port: port), "the listener closes first")
        requester.send("PUB svc _INBOX.r.1 2\r\nhi\r\n")
        sync(requester)
        XCTAssertTrue(responder.waitFor("MSG svc 1 _INBOX.r.1 2\r\nhi\r\n"))
        release.signal()

        // Nothing in flight: told at once, and still served afterwards.
        XCTAssertTrue(responder.waitFor("-ERR 'Stale Connection'\r\n"), responder.text)
        sync(requester)
        XCTAssertFalse(requester.text.contains("-ERR"), "told while its request was in flight: \(requester.text)")
        responder.send("PUB _INBOX.r.1 2\r\nok\r\n")
        XCTAssertTrue(requester.waitFor("-ERR 'Stale Connection'\r\n"), requester.text)
        XCTAssertTrue(requester.text.hasSuffix("MSG _INBOX.r.1 1 2\r\nok\r\n-ERR 'Stale Connection'\r\n"), requester.text)

        // Told clients leave; the stop then finishes without waiting out its deadlines.
        responder.hangUp()
        requester.hangUp()
        XCTAssertEqual(stopped.wait(timeout: .now() + 30), .success)
    }

    func test_stop_clientThatDoesNotLeave_isClosedAfterTheDeadline() throws {
        server = try startTestServer()
        server.departureTellWithin = 0.2
        server.departureCloseWithin = 0.2
        let c = try client()
        c.send("SUB _INBOX.s.* 1\r\n")
        sync(c)
        let srv = server!
        DispatchQueue.global().async { srv.shutdown() }
        XCTAssertTrue(c.waitForClose(), c.text)
        XCTAssertTrue(c.text.contains("-ERR 'Stale Connection'\r\n"), c.text)
    }
}
