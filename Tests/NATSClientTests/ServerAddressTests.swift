import XCTest
@testable import NATSClient

final class ServerAddressTests: XCTestCase {
    func test_parse_acceptsSchemeAndDefaultsPort() {
        XCTAssertEqual(ServerAddress("nats://127.0.0.1:4333"), ServerAddress(host: "127.0.0.1", port: 4333))
        XCTAssertEqual(ServerAddress("localhost"), ServerAddress(host: "localhost", port: 4222))
        XCTAssertNil(ServerAddress("nats://host:notaport"))
    }
}
