import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import XCTest
@testable import ClusterServer

/// One message seen by the harness inbox subscription.
struct JSTestMessage {
    var subject: String
    var reply: String?
    var headers: String?
    var payload: String
    var status: String? {
        guard let h = headers, h.hasPrefix("NATS/1.0 ") else { return nil }
        return String(h.dropFirst(9).prefix(3))
    }
    func header(_ name: String) -> String? {
        NATSHeaderBlock.value(name, in: headers.map { Array($0.utf8) })
    }
}

/// An in-process clusterd node with JetStream, driven through the internal client API (no
/// sockets): requests go out with `publishInternal`, everything addressed to `_T.>` is
/// collected. Waits are bounded polls.
final class JSHarness {
    let dir: String
    private(set) var server: NATSServer
    private(set) var js: JetStreamService
    private let box = NIOLockedValueBox<[String: [JSTestMessage]]>([:])
    private var sub: Subscription?
    private var counter = 0

    /// Options applied over the harness's own (kept across `restart`).
    private let configure: (inout ServerOptions) -> Void

    init(dir: String? = nil, configure: @escaping (inout ServerOptions) -> Void = { _ in }) throws {
        self.dir = dir ?? (NSTemporaryDirectory() + "js-test-\(UUID().uuidString)")
        self.configure = configure
        (server, js) = try JSHarness.boot(dir: self.dir, configure: configure)
        subscribeInbox()
    }

    private static func boot(dir: String, configure: (inout ServerOptions) -> Void) throws -> (NATSServer, JetStreamService) {
        var o = ServerOptions()
        o.host = "127.0.0.1"
        o.port = -1
        o.threads = 1
        o.jetStream = true
        o.storeDirectory = dir
        configure(&o)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let s = NATSServer(options: o, logger: logger)
        let js = JetStreamService(server: s)
        try js.start()
        try s.start()
        return (s, js)
    }

    private func subscribeInbox() {
        sub = server.subscribeInternal("_T.>") { [box] msg in
            let m = JSTestMessage(subject: msg.subject, reply: msg.reply,
                                  headers: msg.headers.map { String(buffer: $0) }, payload: String(buffer: msg.payload))
            box.withLockedValue { $0[msg.subject.hasPrefix("_T.") ? msg.subject : "deliveries", default: []].append(m) }
        }
    }

    /// Messages are filed under their MSG subject; consumer deliveries (stored subjects) under
    /// the inbox they were sent to is not visible internally, so use `inbox(_:)` with the
    /// subject the test expects.
    func messages(_ key: String) -> [JSTestMessage] { box.withLockedValue { $0[key] ?? [] } }

    func clear() { box.withLockedValue { $0.removeAll() } }

    func stop() {
        server.shutdown()
        server.waitUntilShutdown()
    }

    /// Stops cleanly and boots a new node on the same directory; `whileStopped` runs in between
    /// (the node's files are closed).
    func restart(whileStopped: () throws -> Void = {}) throws {
        stop()
        try whileStopped()
        (server, js) = try JSHarness.boot(dir: dir, configure: configure)
        subscribeInbox()
    }

    func removeFiles() { try? FileManager.default.removeItem(atPath: dir) }

    func newInbox() -> String {
        counter += 1
        return "_T.r.\(counter)"
    }

    /// Waits until `key` has at least `count` messages, or 3 s passed.
    @discardableResult
    func wait(_ key: String, count: Int = 1, timeoutMs: Int = 3000) -> [JSTestMessage] {
        for _ in 0..<(timeoutMs / 2) {
            let m = messages(key)
            if m.count >= count { return m }
            usleep(2000)
        }
        return messages(key)
    }

    /// Publishes raw and returns the first reply.
    func requestRaw(_ subject: String, _ body: String, headers: [(String, String)] = [], timeoutMs: Int = 3000) -> JSTestMessage? {
        let inbox = newInbox()
        let h = headers.isEmpty ? nil : ByteBuffer(bytes: NATSHeaderBlock.make(headers))
        server.publishInternal(subject: subject, reply: inbox, headers: h, payload: ByteBuffer(string: body))
        return wait(inbox, timeoutMs: timeoutMs).first
    }

    /// An API call; returns the decoded JSON reply (empty when none came).
    @discardableResult
    func api(_ subject: String, _ body: String = "", headers: [(String, String)] = []) -> [String: Any] {
        guard let r = requestRaw(subject.hasPrefix("$") ? subject : "$JS.API." + subject, body, headers: headers),
              let o = try? JSONSerialization.jsonObject(with: Data(r.payload.utf8)) as? [String: Any] else { return [:] }
        return o
    }

    func createStream(_ config: String) -> [String: Any] {
        let o = try! JSONSerialization.jsonObject(with: Data(config.utf8)) as! [String: Any]
        return api("STREAM.CREATE.\(o["name"] as! String)", config)
    }

    func publish(_ subject: String, _ body: String, headers: [(String, String)] = []) -> [String: Any] {
        guard let r = requestRaw(subject, body, headers: headers) else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(r.payload.utf8)) as? [String: Any]) ?? [:]
    }

    /// Sends a pull request and collects until `count` messages arrived on the inbox.
    func pull(_ stream: String, _ consumer: String, _ body: String, expect count: Int, timeoutMs: Int = 3000) -> [JSTestMessage] {
        let inbox = newInbox()
        server.publishInternal(subject: "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(consumer)", reply: inbox,
                               payload: ByteBuffer(string: body))
        return pullInbox(inbox, count: count, timeoutMs: timeoutMs)
    }

    /// Deliveries keep the stored subject, so they are filed under "deliveries"; status
    /// messages (subject = inbox) under the inbox. Returns both, in arrival order per kind.
    func pullInbox(_ inbox: String, count: Int, timeoutMs: Int = 3000) -> [JSTestMessage] {
        for _ in 0..<(timeoutMs / 2) {
            let all = messages("deliveries") + messages(inbox)
            if all.count >= count { break }
            usleep(2000)
        }
        let out = messages("deliveries") + messages(inbox)
        box.withLockedValue { $0["deliveries"] = nil; $0[inbox] = nil }
        return out
    }

    func ack(_ m: JSTestMessage, _ body: String = "+ACK", sync: Bool = false) {
        guard let reply = m.reply else { return }
        if sync {
            _ = requestRaw(reply, body)
        } else {
            server.publishInternal(subject: reply, payload: ByteBuffer(string: body))
        }
    }

    func streamState(_ name: String) -> [String: Any] {
        (api("STREAM.INFO.\(name)")["state"] as? [String: Any]) ?? [:]
    }
}

func errCode(_ o: [String: Any]) -> Int? { (o["error"] as? [String: Any])?["err_code"] as? Int }
func intValue(_ o: [String: Any], _ key: String) -> Int? { (o[key] as? NSNumber)?.intValue }
