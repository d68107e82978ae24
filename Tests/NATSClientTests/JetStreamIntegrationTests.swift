import Foundation
import NIOCore
import XCTest
@testable import NATSClient

final class JetStreamIntegrationTests: IntegrationTestCase {
    private var storeDir: URL!

    override var serverArguments: [String] {
        ["-js", "-sd", storeDir.path]
    }

    override func setUpWithError() throws {
        storeDir = FileManager.default.temporaryDirectory.appendingPathComponent("natsclient-js-\(UUID().uuidString)")
        let dir = storeDir!
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try super.setUpWithError()
    }

    private struct StreamInfo: Decodable {
        struct State: Decodable { var messages: UInt64 }
        var state: State
    }

    func test_jsPublish_toStream_returnsAckAndDetectsDuplicate() async throws {
        let nc = try await connect()
        let created = try await nc.jsRequest("STREAM.CREATE.ORDERS",
                                             json: #"{"name":"ORDERS","subjects":["orders.>"],"storage":"memory"}"#,
                                             as: StreamInfo.self)
        XCTAssertEqual(created.state.messages, 0)

        let first = try await nc.jsPublish("orders.eu", payload: "one", msgId: "m-1")
        XCTAssertEqual(first, JetStreamPubAck(stream: "ORDERS", seq: 1, duplicate: false))
        let second = try await nc.jsPublish("orders.us", payload: "two", headers: ["X-Trace": "t"])
        XCTAssertEqual(second.seq, 2)
        let again = try await nc.jsPublish("orders.eu", payload: "one", msgId: "m-1")
        XCTAssertEqual(again, JetStreamPubAck(stream: "ORDERS", seq: 1, duplicate: true))

        let info = try await nc.jsRequest("$JS.API.STREAM.INFO.ORDERS", json: "", as: StreamInfo.self)
        XCTAssertEqual(info.state.messages, 2)
    }

    func test_jsRequest_forMissingStream_throwsTypedAPIError() async throws {
        let nc = try await connect()
        do {
            _ = try await nc.jsRequest("STREAM.INFO.NOPE", json: "", as: StreamInfo.self)
            XCTFail("expected an API error")
        } catch let error as JetStreamAPIError {
            XCTAssertEqual(error.code, 404)
            XCTAssertEqual(error.errCode, 10059)
            XCTAssertFalse(error.errorDescription.isEmpty)
        }
    }

    func test_jsPublish_withWrongExpectedLastSequence_throwsTypedAPIError() async throws {
        let nc = try await connect()
        _ = try await nc.jsRequest("STREAM.CREATE.S", json: #"{"name":"S","subjects":["s"],"storage":"memory"}"#)
        do {
            _ = try await nc.jsPublish("s", payload: "x", headers: ["Nats-Expected-Last-Sequence": "7"])
            XCTFail("expected an API error")
        } catch let error as JetStreamAPIError {
            XCTAssertEqual(error.errCode, 10071)
        }
    }

    func test_jsPublish_withNoStream_throwsNoRespondersAfterRetries() async throws {
        let nc = try await connect()
        let start = NIODeadline.now()
        do {
            _ = try await nc.jsPublish("unbound.subject", payload: "x", noResponderRetries: 1)
            XCTFail("expected noResponders")
        } catch {
            XCTAssertEqual(error as? NATSError, .noResponders(subject: "unbound.subject"))
        }
        XCTAssertGreaterThanOrEqual(NIODeadline.now() - start, .milliseconds(250), "one retry waits 250 ms")
    }
}
