import Foundation
import NIOCore

/// `$JS.API.STREAM.SNAPSHOT.<stream>`: the stream's messages and durable consumers, sent to the
/// client's `deliver_subject` as a `SnapshotArchive` in chunks, as nats-server sends its own
/// archive: each chunk's reply is `$JS.SNAPSHOT.ACK.<stream>.<id>.<length>.<index>`, the client
/// answers it, and an empty message ends the snapshot. Unlike nats-server (which sends on after
/// 10 ms without acks), the sender waits for acks once `window` bytes are unacknowledged and
/// gives up, without the ending message, when none came for `stallNanos`: a client that went
/// away never receives a truncated archive that looks whole.
///
/// The archive holds what the store holds at the sequences up to its last one when the request
/// came; a message removed while the snapshot runs (limits, acks of a work queue) is left out.
/// In a cluster the stream's leader answers, from its applied store.
final class StreamSnapshotSender {
    static let defaultChunkBytes = 256 << 10
    static let window = 8 << 20
    static let stallNanos: Int64 = 10_000_000_000
    /// Message bytes per archive frame.
    static let frameBytes = 256 << 10

    private unowned let js: JetStreamService
    private weak var stream: Stream?
    private let deliverSubject: String
    private let ackPrefix: String
    private let chunkBytes: Int
    private var nextSeq: UInt64
    private let lastSeq: UInt64
    private var meta: [UInt8]?
    private var records: [[UInt8]]
    private var sentMessages: UInt64 = 0
    private var sentConsumers: UInt32 = 0
    private var ended = false
    private var out: [UInt8] = SnapshotArchive.magic
    private var index = 0
    private var unacked = 0
    private var lastAck = SourceSession.monoNanos()
    private var ackSub: Subscription?
    private(set) var finished = false

    init(js: JetStreamService, stream: Stream, deliverSubject: String, chunkBytes: Int, withConsumers: Bool, meta: [UInt8]) {
        self.js = js
        self.stream = stream
        self.deliverSubject = deliverSubject
        self.chunkBytes = chunkBytes
        let st = stream.store.state
        nextSeq = st.firstSeq
        lastSeq = st.lastSeq
        self.meta = meta
        // Durable consumers only: an ephemeral one belongs to a client's live session.
        records = withConsumers ? stream.consumers.values.filter { $0.config.durableName != nil }
            .sorted { $0.name < $1.name }.map(\.record) : []
        ackPrefix = "$JS.SNAPSHOT.ACK.\(stream.name).\(UInt64.random(in: 1...UInt64.max))"
    }

    /// Subscribes the acks and sends the first window.
    func start() {
        ackSub = js.bus.subscribeInternal(ackPrefix + ".>", propagates: js.cluster != nil) { [weak self, weak js] msg in
            guard let js, let self else { return }
            // `<prefix>.<length>.<index>`: the length is what the ack frees.
            let tokens = msg.subject.split(separator: ".")
            let length = tokens.count >= 2 ? Int(tokens[tokens.count - 2]) ?? 0 : 0
            js.queue.async { self.acked(length) }
        }
        pump()
        checkStall()
    }

    private func acked(_ length: Int) {
        guard !finished else { return }
        unacked = max(0, unacked - length)
        lastAck = SourceSession.monoNanos()
        pump()
    }

    private func pump() {
        while !finished && unacked < Self.window {
            guard let s = stream, js.streams[s.name] === s else { return abort("the stream is gone") }
            while out.count < chunkBytes && !ended { produce(from: s) }
            if out.isEmpty && ended {
                js.bus.publishInternal(subject: deliverSubject, payload: ByteBuffer())
                return finish()
            }
            let n = min(chunkBytes, out.count)
            index += 1
            js.bus.publishInternal(subject: deliverSubject, reply: "\(ackPrefix).\(n).\(index)", payload: ByteBuffer(bytes: out[0..<n]))
            out.removeFirst(n)
            unacked += n
        }
    }

    /// Appends the next archive frame to `out`.
    private func produce(from s: Stream) {
        if let m = meta {
            out += SnapshotArchive.encode(.meta(m))
            meta = nil
            return
        }
        if nextSeq <= lastSeq {
            let chunk = s.store.catchupMessages(from: nextSeq, through: lastSeq, budget: Self.frameBytes)
            nextSeq = chunk.resume
            if !chunk.messages.isEmpty {
                sentMessages += UInt64(chunk.messages.count)
                out += SnapshotArchive.encode(.messages(chunk.messages))
            }
            return
        }
        if let r = records.popLast() {
            sentConsumers += 1
            out += SnapshotArchive.encode(.consumer(r))
            return
        }
        out += SnapshotArchive.encode(.end(messages: sentMessages, consumers: sentConsumers))
        ended = true
    }

    private func checkStall() {
        guard !finished else { return }
        if unacked >= Self.window && SourceSession.monoNanos() - lastAck > Self.stallNanos {
            return abort("no acknowledgement for \(Self.stallNanos / 1_000_000_000) s")
        }
        js.queue.asyncAfter(deadline: .now() + .seconds(1)) { [weak self] in self?.checkStall() }
    }

    private func abort(_ why: String) {
        js.server.logger.warning("Snapshot of stream '\(stream?.name ?? "?")' to \(deliverSubject) stopped: \(why)")
        finish()
    }

    private func finish() {
        finished = true
        out = []
        if let s = ackSub { js.bus.unsubscribeInternal(s) }
        ackSub = nil
        js.snapshotSenders.removeAll { $0 === self }
    }
}

extension JetStreamService {
    /// A body that is empty or `{}` (nats-server's `isEmptyRequest`: 10003 for a snapshot or restore).
    static func isEmptyRequest(_ body: [UInt8]) -> Bool {
        let trimmed = body.filter { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }
        return trimmed.isEmpty || trimmed == Array("{}".utf8)
    }

    /// Answers a snapshot request and starts sending (checks in nats-server 2.15.1's order and
    /// codes, probed).
    func snapshotStream(_ name: String, body: [UInt8]) throws -> [String: Any] {
        if Self.isEmptyRequest(body) { throw JSAPIError.badRequest() }
        let s = try lookup(name)
        let o = try JSONObject.parse(body, typeName: "JSApiStreamSnapshotRequest")
        guard let deliver = try o.string("deliver_subject"), Subject.isValidLiteral(deliver) else {
            throw JSAPIError(400, 10015, "deliver subject not valid")
        }
        let maxPayload = account.maxPayload >= 0 ? account.maxPayload : server.options.maxPayload
        let chunk = min(max(try o.int("chunk_size") ?? StreamSnapshotSender.defaultChunkBytes, 1024), max(maxPayload, 1024))
        let info = s.infoJSON()
        let meta = JSJSON.encode(["config": info["config"] ?? [:], "state": info["state"] ?? [:], "created": info["created"] ?? ""])
        let sender = StreamSnapshotSender(js: self, stream: s, deliverSubject: deliver, chunkBytes: chunk,
                                          withConsumers: try o.bool("no_consumers") != true, meta: meta)
        snapshotSenders.append(sender)
        // After this answer: the client reads the answer before the chunks.
        queue.async { sender.start() }
        server.logger.info("Starting snapshot of stream '\(name)' to \(deliver)")
        return ["config": info["config"] ?? [:], "state": info["state"] ?? [:]]
    }
}
