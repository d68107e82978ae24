import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Raft
import XCTest
@testable import ClusterServer

/// The relay's decision on a JetStream delivery (chaos finding 15, the delayed copy): a copy
/// from a deposed leader that arrives after a newer leader's delivery passed is refused; a
/// late copy from the current term is never refused, however late. No clock is involved.
final class DeliveryTermFenceTests: XCTestCase {
    private let s = "$G/ORDERS/g100"

    func testHeldCopyFromTheOldTermIsDroppedAfterTheNewTermDelivered() {
        var f = DeliveryTermFence()
        XCTAssertTrue(f.admit(DeliveryStamp(key: s, term: 3)), "the old leader's delivery before the failover")
        XCTAssertTrue(f.admit(DeliveryStamp(key: s, term: 5)), "the successor's delivery of the same messages")
        XCTAssertFalse(f.admit(DeliveryStamp(key: s, term: 3)), "the old leader's copy the network held")
        XCTAssertEqual(f.dropped, 1)
        XCTAssertEqual(f.term(of: s), 5, "a refused stamp does not lower the fence")
        XCTAssertTrue(f.admit(DeliveryStamp(key: s, term: 5)), "the current term keeps flowing")
    }

    func testLateDeliveriesOfTheCurrentTermAndFirstSightingsPass() {
        var f = DeliveryTermFence()
        // Under load, a delivery may arrive long after it was sent: from the newest term seen,
        // or from a stream not seen yet, it is handed out (no consumer starves).
        for _ in 0..<1000 { XCTAssertTrue(f.admit(DeliveryStamp(key: s, term: 7))) }
        XCTAssertTrue(f.admit(DeliveryStamp(key: "$G/OTHER/g101", term: 1)), "another stream has its own terms")
        XCTAssertTrue(f.admit(DeliveryStamp(key: "B/ORDERS/g100", term: 1)), "another account's group of the same id")
        XCTAssertTrue(f.admit(DeliveryStamp(key: "$G/ORDERS/g102", term: 1)), "a re-created stream is a new group")
        XCTAssertEqual(f.dropped, 0)
    }

    func testNoStampOfANewerTermIsEverRefused() {
        // Seeded random arrival order of stamps: every refusal is of a term below one admitted
        // before, and the highest term of each stream always passes.
        var state: UInt64 = 42
        func next() -> UInt64 {  // a fixed LCG: the same sequence on every run
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        var f = DeliveryTermFence()
        var highest: [String: UInt64] = [:]
        for _ in 0..<5000 {
            let key = "$G/S\(next() % 5)/g\(next() % 5)"
            let term = next() % 20 + 1
            let ok = f.admit(DeliveryStamp(key: key, term: term))
            XCTAssertEqual(ok, term >= (highest[key] ?? 0), "\(key) term \(term) after \(highest[key] ?? 0)")
            highest[key] = max(highest[key] ?? 0, term)
        }
    }

    func testCapacityForgetsTheLeastRecentlySeenStreamOnly() {
        var f = DeliveryTermFence(capacity: 2)
        XCTAssertTrue(f.admit(DeliveryStamp(key: "a", term: 4)))
        XCTAssertTrue(f.admit(DeliveryStamp(key: "b", term: 4)))
        XCTAssertTrue(f.admit(DeliveryStamp(key: "a", term: 4)), "a is now the more recent")
        XCTAssertTrue(f.admit(DeliveryStamp(key: "c", term: 1)), "evicts b")
        XCTAssertEqual(f.count, 2)
        XCTAssertNil(f.term(of: "b"))
        XCTAssertTrue(f.admit(DeliveryStamp(key: "b", term: 1)), "forgotten: protection lost, nothing refused")
        XCTAssertNil(f.term(of: "a"), "b's return evicted a, now the least recent")
        XCTAssertFalse(f.admit(DeliveryStamp(key: "c", term: 0)), "a kept entry still fences")
    }

    func testAFullFenceForgetsTheStreamLeastRecentlyAdmitted() {
        var f = DeliveryTermFence()
        for i in 0..<f.capacity { XCTAssertTrue(f.admit(DeliveryStamp(key: "k\(i)", term: 2))) }
        XCTAssertEqual(f.count, 4096)
        XCTAssertTrue(f.admit(DeliveryStamp(key: "k0", term: 2)), "k0, the first in, is now the most recent")
        XCTAssertFalse(f.admit(DeliveryStamp(key: "k1", term: 1)), "a refused copy is no use of k1")
        XCTAssertEqual(f.term(of: "k2"), 2, "nor is a look-up a use of k2")
        XCTAssertTrue(f.admit(DeliveryStamp(key: "new0", term: 1)))
        XCTAssertEqual(f.count, 4096)
        XCTAssertNil(f.term(of: "k1"), "k1 was the least recently admitted")
        XCTAssertTrue(f.admit(DeliveryStamp(key: "new1", term: 1)))
        XCTAssertNil(f.term(of: "k2"))
        XCTAssertTrue(f.admit(DeliveryStamp(key: "k3", term: 3)), "k3 used again just in time")
        XCTAssertTrue(f.admit(DeliveryStamp(key: "new2", term: 1)))
        XCTAssertNil(f.term(of: "k4"), "k4, not k3")
        for key in ["k0", "k3", "k5", "k4095", "new0", "new1", "new2"] { XCTAssertNotNil(f.term(of: key), key) }
        XCTAssertEqual(f.count, 4096)
        XCTAssertEqual(f.dropped, 1)
    }

    func testEvictionFollowsAReferenceRecencyList() {
        // Seeded random stamps over more streams than fit: after every admit the fence holds
        // exactly the `capacity` streams most recently admitted, with their terms (the list is
        // the reference: O(capacity) per step, which the fence must not be).
        var rng = Raft.SplitMix64(seed: 7)
        for capacity in [1, 2, 3, 16] {
            var f = DeliveryTermFence(capacity: capacity)
            var recency: [(key: String, term: UInt64)] = []  // least recent first
            for step in 0..<3000 {
                let key = "s\(rng.next() % UInt64(capacity * 2 + 1))"
                let term = rng.next() % 6
                let at = recency.firstIndex { $0.key == key }
                let ok = f.admit(DeliveryStamp(key: key, term: term))
                XCTAssertEqual(ok, at.map { term >= recency[$0].term } ?? true, "capacity \(capacity) step \(step)")
                if ok {
                    if let at { recency.remove(at: at) } else if recency.count == capacity { recency.removeFirst() }
                    recency.append((key, term))
                }
                XCTAssertEqual(f.count, recency.count)
                for e in recency { XCTAssertEqual(f.term(of: e.key), e.term, "capacity \(capacity) step \(step) \(e.key)") }
            }
        }
    }

    // MARK: - the route frame

    private func message(account: String?) -> RoutedMessage {
        var m = RoutedMessage(subject: "orders.1", reply: "$JS.ACK.ORDERS.C.1.1.1.0.0", headers: ByteBuffer(string: "NATS/1.0\r\n\r\n"),
                              payload: ByteBuffer(string: "hello"))
        m.account = account
        return m
    }

    func testStampedFrameCarriesStampTargetAndAccount() throws {
        for account in [nil, "B"] as [String?] {
            let stamp = DeliveryStamp(key: "\(account ?? "$G")/ORDERS/g100", term: 1 << 40)
            let frame = StampedDeliverFrame.encode(message(account: account), stamp: stamp, target: "_INBOX.q", queues: ["w"])
            let (got, d) = try XCTUnwrap(StampedDeliverFrame.decode(frame))
            XCTAssertEqual(got, stamp)
            XCTAssertEqual(d.message.stamp, stamp)
            XCTAssertEqual(d.account, account)
            XCTAssertEqual(d.target, "_INBOX.q")
            XCTAssertEqual(d.queues, ["w"])
            XCTAssertEqual(d.message.subject, "orders.1")
            XCTAssertEqual(d.message.reply, "$JS.ACK.ORDERS.C.1.1.1.0.0")
            XCTAssertEqual(d.message.headers.map { String(buffer: $0) }, "NATS/1.0\r\n\r\n")
            XCTAssertEqual(String(buffer: d.message.payload), "hello")
            XCTAssertTrue(d.message.fromRoute)
        }
    }

    func testMalformedStampedFramesAreDropped() {
        let full = StampedDeliverFrame.encode(message(account: "B"), stamp: DeliveryStamp(key: "k", term: 2),
                                              target: "_INBOX.q", queues: [])
        for n in 0..<18 {
            XCTAssertNil(StampedDeliverFrame.decode(full.getSlice(at: 0, length: n)!), "truncated at \(n)")
        }
        var badFlag = full
        badFlag.setInteger(UInt8(7), at: 4 + 1 + 8)
        XCTAssertNil(StampedDeliverFrame.decode(badFlag), "unknown flags")
        var emptyKey = ByteBuffer()
        emptyKey.writeInteger(UInt32(0), endianness: .little)
        XCTAssertNil(StampedDeliverFrame.decode(emptyKey), "an empty key")
        var huge = ByteBuffer()
        huge.writeInteger(UInt32.max, endianness: .little)
        XCTAssertNil(StampedDeliverFrame.decode(huge), "a length past the frame")
    }

    func testRouteInfoAdvertisesStampsAndOlderPeersDoNot() throws {
        let info = RouteInfo(serverID: "S1", serverName: "n1", version: "2.10.0", cluster: "c", routeURL: "nats-route://h:1/",
                             connectURLs: [], jetstream: true)
        XCTAssertTrue(info.line().contains("\"js_delivery_stamps\":true"))
        let old = try JSONDecoder().decode(RouteInfo.self, from: Data(#"{"server_id":"S2","jetstream":true}"#.utf8))
        XCTAssertFalse(old.deliveryStamps, "an older clusterd gets plain deliver frames")
    }

    // MARK: - the local path (a successor leading on the client's own node)

    func testServerRefusesALocalDeliveryOfAnOlderTermAndCountsIt() throws {
        let server = try startTestServer { $0.threads = 1 }
        defer { server.shutdown(); server.waitUntilShutdown() }
        let got = NIOLockedValueBox<[String]>([])
        _ = server.subscribeInternal("_INBOX.t") { m in got.withLockedValue { $0.append(m.reply ?? "") } }
        func deliver(_ reply: String, term: UInt64?) -> Int {
            server.deliverAs(subject: "orders.1", to: "_INBOX.t", reply: reply, headers: nil, payload: [1],
                             stamp: term.map { DeliveryStamp(key: s, term: $0) })
        }
        XCTAssertEqual(deliver("new", term: 5), 1)
        XCTAssertEqual(deliver("held", term: 3), 0, "an older term after a newer one passed here")
        XCTAssertEqual(deliver("plain", term: nil), 1, "unstamped deliveries (no cluster, API replies) pass")
        XCTAssertEqual(deliver("late", term: 5), 1)
        XCTAssertEqual(got.withLockedValue { $0 }, ["new", "plain", "late"])
        XCTAssertEqual(server.staleDeliveries.dropped, 1)
        XCTAssertEqual(MonitoringEndpoints(server: server).varz()["stale_deliveries_dropped"] as? Int, 1)
    }
}
