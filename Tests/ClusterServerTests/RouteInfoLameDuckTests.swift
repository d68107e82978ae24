import Foundation
import XCTest
@testable import ClusterServer

/// The route INFO's `ldm` (a stopping server, as nats-server sends it): present only while the
/// sender stops, read from nats-server's form, absent or false means staying.
final class RouteInfoLameDuckTests: XCTestCase {
    func test_ldm_isSentOnlyWhileStopping_andReadAsNatsServerSendsIt() throws {
        var info = RouteInfo(serverID: "S1", serverName: "n1", version: "2.10.0", cluster: "c", routeURL: "nats-route://h:1/",
                             connectURLs: ["h:4222"], jetstream: true)
        XCTAssertFalse(info.line().contains("ldm"))
        XCTAssertFalse(info.isLeaving)
        info.lameDuck = true
        XCTAssertTrue(info.line().contains("\"ldm\":true"))
        let decode = { (json: String) in try JSONDecoder().decode(RouteInfo.self, from: Data(json.utf8)) }
        XCTAssertTrue(try decode(#"{"server_id":"S2","ldm":true}"#).isLeaving, "nats-server's lame duck INFO")
        XCTAssertFalse(try decode(#"{"server_id":"S2","ldm":false}"#).isLeaving)
        XCTAssertNil(try decode(#"{"server_id":"S2","ldm":false}"#).lameDuck, "false is not sent back")
        XCTAssertFalse(try decode(#"{"server_id":"S2"}"#).isLeaving)
    }
}
