import Foundation
import NIOCore
import XCTest
@testable import NATSClient

final class ConnectOptionsTests: XCTestCase {
    private func connectFields(_ configure: (inout NATSOptions) -> Void, info: ServerInfo) throws -> [String: Any] {
        var options = NATSOptions(servers: [ServerAddress(host: "127.0.0.1", port: 4222)])
        configure(&options)
        let json = NATSConnection(options: options).connectJSON(for: info)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    func test_connectJSON_sendsProtocolFieldsAndCredentials() throws {
        var info = ServerInfo(serverID: "S", version: "2.15.1")
        info.headers = true
        let fields = try connectFields({
            $0.name = "worker"
            $0.user = "alice"
            $0.password = "pw"
            $0.echo = false
        }, info: info)
        XCTAssertEqual(fields["verbose"] as? Bool, false)
        XCTAssertEqual(fields["pedantic"] as? Bool, false)
        XCTAssertEqual(fields["headers"] as? Bool, true)
        XCTAssertEqual(fields["no_responders"] as? Bool, true)
        XCTAssertEqual(fields["protocol"] as? Int, 1)
        XCTAssertEqual(fields["echo"] as? Bool, false)
        XCTAssertEqual(fields["lang"] as? String, "swift")
        XCTAssertEqual(fields["version"] as? String, NATSConnection.clientVersion)
        XCTAssertEqual(fields["name"] as? String, "worker")
        XCTAssertEqual(fields["user"] as? String, "alice")
        XCTAssertEqual(fields["pass"] as? String, "pw")
        XCTAssertNil(fields["auth_token"])
    }

    func test_connectJSON_withServerWithoutHeaders_turnsOffHeadersAndNoResponders() throws {
        var info = ServerInfo(serverID: "S", version: "2.1.0")
        info.headers = false
        let fields = try connectFields({ $0.token = "t0k" }, info: info)
        XCTAssertEqual(fields["headers"] as? Bool, false)
        XCTAssertEqual(fields["no_responders"] as? Bool, false, "no_responders requires headers")
        XCTAssertEqual(fields["auth_token"] as? String, "t0k")
        XCTAssertNil(fields["user"])
    }
}
