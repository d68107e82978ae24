import NIOCore
import NIOConcurrencyHelpers
import XCTest
@testable import ClusterServer

/// The service-import reply mapping on its own: fake clock, tiny limits, no sockets.
final class ServiceImportTests: XCTestCase {
    private final class Recorder: MessageSink, @unchecked Sendable {
        let lock = NIOLock()
        var got: [(subject: String, reply: String?)] = []
        func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool {
            lock.withLock { got.append((message.subject, message.reply)) }
            return true
        }
    }

    private var clock: UInt64 = 1_000
    private let importer = Account(config: AccountConfig(name: "B"), sublist: Sublist(account: "B"))
    private let exporter = Account(config: AccountConfig(name: "A"), sublist: Sublist(account: "A"))

    private func sink(streamed: Bool = false, maxPending: Int = 100) -> ServiceImportSink {
        let s = ServiceImportSink(importer: importer, exporter: exporter,
                                  spec: ImportConfig(kind: .service, account: "A", subject: "svc.time", to: "time"),
                                  streamedResponses: streamed, replyPrefix: "_R_.test", maxPending: maxPending,
                                  now: { [unowned self] in self.clock })
        _ = s.install()
        return s
    }

    private func request(_ reply: String) -> Bool {
        let m = RoutedMessage(subject: "time", reply: reply, headers: nil, payload: ByteBuffer())
        return importer.deliver(m, seed: 1) > 0
    }

    private func respond(to privateReply: String) -> Int {
        exporter.deliver(RoutedMessage(subject: privateReply, reply: nil, headers: nil, payload: ByteBuffer()), seed: 1)
    }

    func test_requestMappedToPrivateReply_responseBackOnce() {
        let s = sink()
        let responder = Recorder(), requester = Recorder()
        exporter.sublist.insert(Subscription(subject: "svc.time", queue: nil, sid: "1", sink: responder, ownerID: 7))
        importer.sublist.insert(Subscription(subject: "_INBOX.>", queue: nil, sid: "2", sink: requester, ownerID: 8))
        XCTAssertTrue(request("_INBOX.a"))
        XCTAssertEqual(responder.got.first?.subject, "svc.time")
        let privateReply = responder.got.first!.reply!
        XCTAssertTrue(privateReply.hasPrefix("_R_.test."))
        XCTAssertEqual(respond(to: privateReply), 1)
        XCTAssertEqual(respond(to: privateReply), 0, "singleton: the mapping is gone after one response")
        XCTAssertEqual(requester.got.map(\.subject), ["_INBOX.a"])
        XCTAssertEqual(s.pendingCount, 0)
        XCTAssertEqual(respond(to: "_R_.test.zzzz-not-a-token"), 0)
    }

    func test_noResponder_requestNotCounted_noMappingLeft() {
        let s = sink()
        XCTAssertFalse(request("_INBOX.a"))
        XCTAssertEqual(s.pendingCount, 0)
    }

    func test_streamedResponses_untilThreshold_andBoundedTable() {
        let s = sink(streamed: true, maxPending: 3)
        let responder = Recorder(), requester = Recorder()
        exporter.sublist.insert(Subscription(subject: "svc.time", queue: nil, sid: "1", sink: responder, ownerID: 7))
        importer.sublist.insert(Subscription(subject: "_INBOX.>", queue: nil, sid: "2", sink: requester, ownerID: 8))
        XCTAssertTrue(request("_INBOX.1"))
        let first = responder.got[0].reply!
        XCTAssertEqual(respond(to: first), 1)
        XCTAssertEqual(respond(to: first), 1, "stream responses keep the mapping")
        for i in 2...5 { XCTAssertTrue(request("_INBOX.\(i)")) }
        XCTAssertEqual(s.pendingCount, 3, "the oldest mappings make room")
        XCTAssertEqual(respond(to: first), 0, "request 1 was evicted")
        clock += UInt64(ServiceImportSink.responseThresholdSeconds * 1e9) + 1
        XCTAssertEqual(respond(to: responder.got[4].reply!), 0, "expired")
        XCTAssertTrue(request("_INBOX.6"))
        XCTAssertEqual(s.pendingCount, 1, "expired mappings are dropped on the next request")
    }
}
