@testable import ClusterServer
import XCTest

/// The system account's server requests as nats-server reads them: which subject asks which
/// server for what, the JSON options as the HTTP endpoints' query, the filters, bad bodies.
final class SystemRequestTests: XCTestCase {
    private func parse(_ kind: SystemRequest.Kind, _ json: String) throws -> SystemRequest {
        try SystemRequest.parse(kind, body: Array(json.utf8))
    }

    func test_subjects_pingAndEveryKindToAllAndToThisServer() {
        let subjects = SystemRequest.subjects(serverID: "NID")
        XCTAssertEqual(subjects.count, 1 + 2 * SystemRequest.Kind.allCases.count)
        XCTAssertTrue(subjects.contains("$SYS.REQ.SERVER.PING"))
        XCTAssertTrue(subjects.contains("$SYS.REQ.SERVER.PING.JSZ"))
        XCTAssertTrue(subjects.contains("$SYS.REQ.SERVER.NID.HEALTHZ"))
    }

    func test_kindOfSubject() {
        XCTAssertEqual(SystemRequest.kind(of: "$SYS.REQ.SERVER.PING", serverID: "NID"), .statsz)
        XCTAssertEqual(SystemRequest.kind(of: "$SYS.REQ.SERVER.PING.VARZ", serverID: "NID"), .varz)
        XCTAssertEqual(SystemRequest.kind(of: "$SYS.REQ.SERVER.NID.IDZ", serverID: "NID"), .idz)
        XCTAssertNil(SystemRequest.kind(of: "$SYS.REQ.SERVER.OTHER.VARZ", serverID: "NID"))
        XCTAssertNil(SystemRequest.kind(of: "$SYS.REQ.SERVER.PING.ACCOUNTZ", serverID: "NID"))
        XCTAssertNil(SystemRequest.kind(of: "$SYS.REQ.SERVER.PING.varz", serverID: "NID"))
    }

    func test_emptyBody_noOptionsNoFilters() throws {
        let r = try SystemRequest.parse(.connz, body: [])
        XCTAssertEqual(r, SystemRequest(kind: .connz))
        XCTAssertFalse(r.excludes(serverName: "n1", host: "0.0.0.0", cluster: "c"))
    }

    func test_optionsBecomeTheEndpointsQuery() throws {
        XCTAssertEqual(try parse(.connz, #"{"subscriptions": true, "offset": 2, "limit": 5, "sort": "cid"}"#).query,
                       ["subs": "true", "offset": "2", "limit": "5", "sort": "cid"])
        XCTAssertEqual(try parse(.connz, #"{"subscriptions": true, "subscriptions_detail": true}"#).query, ["subs": "detail"])
        XCTAssertEqual(try parse(.jsz, #"{"account": "APP", "streams": true, "consumer": true, "leader_only": false}"#).query,
                       ["acc": "APP", "streams": "true", "consumers": "true", "leader-only": "false"])
        XCTAssertEqual(try parse(.healthz, #"{"js-server-only": true}"#).query, ["js-server-only": "true"])
        XCTAssertEqual(try parse(.subsz, #"{"test": "a.b", "subscriptions": false}"#).query, ["test": "a.b", "subs": "false"])
        // Options of other kinds, unknown names and nulls are ignored.
        XCTAssertEqual(try parse(.varz, #"{"subscriptions": true, "newer_option": 1}"#).query, [:])
        XCTAssertEqual(try parse(.jsz, #"{"streams": null}"#).query, [:])
    }

    func test_filters_eachMustBeContainedInThisServers() throws {
        let r = try parse(.varz, #"{"server_name": "n2", "cluster": "prod"}"#)
        XCTAssertFalse(r.excludes(serverName: "n2", host: "h", cluster: "prod-east"))
        XCTAssertTrue(r.excludes(serverName: "n1", host: "h", cluster: "prod-east"))
        XCTAssertTrue(r.excludes(serverName: "n2", host: "h", cluster: "test"))
        XCTAssertTrue(try parse(.statsz, #"{"host": "10.0.0.9"}"#).excludes(serverName: "n", host: "0.0.0.0", cluster: ""))
    }

    func test_badBodies_areFailuresNotCrashes() {
        for body in ["{bad", "[1]", "\"x\"", #"{"server_name": 5}"#, #"{"offset": [1]}"#, #"{"limit": 1.5}"#,
                     #"{"subscriptions_detail": "yes"}"#] {
            XCTAssertThrowsError(try parse(.connz, body), body) { error in
                XCTAssertTrue(error is SystemRequest.Failure, "\(body): \(error)")
            }
        }
    }
}

/// The disconnect event's reasons are nats-server's words for the error a client was closed with.
final class CloseReasonTests: XCTestCase {
    func test_errorsMapToNatsServersClosedStates() {
        XCTAssertEqual(CloseReason.forError("Maximum Payload Violation"), "Maximum Message Payload Exceeded")
        XCTAssertEqual(CloseReason.forError("Stale Connection"), "Stale Connection")
        XCTAssertEqual(CloseReason.forError("Authorization Violation"), "Authentication Failure")
        XCTAssertEqual(CloseReason.forError("Unknown Protocol Operation"), "Protocol Violation")
    }
}
