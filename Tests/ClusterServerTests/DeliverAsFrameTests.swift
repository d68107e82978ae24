import NIOCore
import XCTest
@testable import ClusterServer

/// `XMSG deliver` / `XMSG adeliver` frames: a consumer delivery crossing a route keeps its
/// target, its stored subject and its account; malformed frames are dropped, never trap.
final class DeliverAsFrameTests: XCTestCase {
    private func message(account: String?) -> RoutedMessage {
        var m = RoutedMessage(subject: "orders.1", reply: "$JS.ACK.ORDERS.C.1.1.1.0.0", headers: nil,
                              payload: ByteBuffer(string: "hello"))
        m.account = account
        return m
    }

    func testGlobalAccountDeliveryKeepsItsOldFrame() throws {
        let m = message(account: nil)
        XCTAssertEqual(DeliverAsFrame.namespace(of: m), "deliver")
        let d = try XCTUnwrap(DeliverAsFrame.decode(DeliverAsFrame.encode(m, target: "_INBOX.x", queues: [])))
        XCTAssertNil(d.account)
        XCTAssertEqual(d.target, "_INBOX.x")
        XCTAssertEqual(d.message.subject, "orders.1")
        XCTAssertEqual(String(buffer: d.message.payload), "hello")
    }

    func testAccountDeliveryCarriesItsAccount() throws {
        let m = message(account: "B")
        XCTAssertEqual(DeliverAsFrame.namespace(of: m), "adeliver")
        let frame = DeliverAsFrame.encode(m, target: "_INBOX.y", queues: ["q"])
        let d = try XCTUnwrap(DeliverAsFrame.decode(frame, withAccount: true))
        XCTAssertEqual(d.account, "B")
        XCTAssertEqual(d.target, "_INBOX.y")
        XCTAssertEqual(d.queues, ["q"])
        XCTAssertEqual(d.message.reply, "$JS.ACK.ORDERS.C.1.1.1.0.0")
        XCTAssertEqual(String(buffer: d.message.payload), "hello")
    }

    func testMalformedAccountFramesAreDropped() {
        let full = DeliverAsFrame.encode(message(account: "B"), target: "_INBOX.y", queues: [])
        for n in [0, 2, 4, 5] {
            XCTAssertNil(DeliverAsFrame.decode(full.getSlice(at: 0, length: n)!, withAccount: true), "truncated at \(n)")
        }
        var empty = ByteBuffer()
        empty.writeInteger(UInt32(0), endianness: .little)
        var rest = DeliverAsFrame.encode(message(account: nil), target: "_INBOX.z", queues: [])
        empty.writeBuffer(&rest)
        XCTAssertNil(DeliverAsFrame.decode(empty, withAccount: true), "an empty account name")
        var huge = ByteBuffer()
        huge.writeInteger(UInt32.max - 1, endianness: .little)
        XCTAssertNil(DeliverAsFrame.decode(huge, withAccount: true), "a length past the frame")
    }
}
