import Foundation

/// `$JS.API.DIRECT.GET.<stream>[.<subject>]` (streams with `allow_direct`): messages read
/// straight from a replica's store, answered as nats-server 2.15.1 answers them (checked side
/// by side, `Tests/compat/test_jetstream_direct_get.py`):
/// - one message: by `seq`, `last_by_subj`, `next_by_subj` (from `seq`), `start_time`, or the
///   last on the subject in the request subject; with its headers plus `Nats-Stream`,
///   `Nats-Subject`, `Nats-Sequence`, `Nats-Time-Stamp` (none at all with `no_hdr`);
/// - a batch (`batch` > 0, from `seq`, `start_time` or the first on `next_by_subj`, up to
///   `max_bytes`): each message also carries `Nats-Num-Pending` (matching messages after it) and
///   `Nats-Last-Sequence` (the one sent before it, 0 first), then a `204 EOB` status with both;
/// - `multi_last`: the last message of every subject matching the filters, at or below
///   `up_to_seq` / `up_to_time`, in sequence order, the same headers, and `Nats-UpTo-Sequence`
///   on the `204 EOB`.
/// Refusals are statuses: `408 Empty Request`, `408 Bad Request`, `408 Malformed Request`,
/// `404 Message Not Found`, `404 No Results`.
extension JetStreamService {
    func handleDirectGet(subject: String, reply: String?, body: [UInt8]) {
        guard let reply else { return }
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard tokens.count >= 5, let s = streams[tokens[4]] else { return }
        if tokens.count > 5 {
            guard body.allSatisfy({ $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }) else {
                return directStatus("408 Bad Request", reply)
            }
            return sendDirect(s.store.last(matching: tokens[5...].joined(separator: ".")), of: s, to: reply)
        }
        guard !body.isEmpty else { return directStatus("408 Empty Request", reply) }
        let req: DirectGetRequest
        do { req = try DirectGetRequest(body) } catch { return directStatus("408 Malformed Request", reply) }
        if let filters = req.multiLast { return sendMultiLast(filters, req, of: s, to: reply) }
        if let batch = req.batch, batch != 0 { return sendBatch(batch, req, of: s, to: reply) }
        if req.last != nil, req.seq != nil || req.next != nil { return directStatus("408 Bad Request", reply) }
        guard req.last != nil || req.next != nil || req.seq != nil || req.startTime != nil else {
            return directStatus("408 Empty Request", reply)
        }
        sendDirect(s.message(seq: req.seq, last: req.last, next: req.next, startTime: req.startTime), of: s, to: reply,
                   noHeaders: req.noHeaders)
    }

    private func directStatus(_ status: String, _ reply: String, _ fields: [(String, String)] = []) {
        bus.sendStatus(status, to: reply, fields: fields)
    }

    /// One message with the direct-get headers (`extra` after them), or `404 Message Not Found`.
    private func sendDirect(_ m: StreamMessage?, of s: Stream, to reply: String, noHeaders: Bool = false,
                            extra: [(String, String)] = []) {
        guard let m else { return directStatus("404 Message Not Found", reply) }
        let headers = noHeaders ? nil : NATSHeaderBlock.appending([
            ("Nats-Stream", s.name), ("Nats-Subject", m.subject), ("Nats-Sequence", "\(m.seq)"),
            ("Nats-Time-Stamp", JSTime.format(m.time)),
        ] + extra, to: m.headers)
        bus.deliverAs(subject: reply, to: reply, reply: nil, headers: headers, payload: m.payload)
    }

    /// Up to `batch` messages from the request's start (nothing for a negative batch), stopping
    /// once `max_bytes` of subjects, headers and payloads went out; then `204 EOB`.
    private func sendBatch(_ batch: Int, _ req: DirectGetRequest, of s: Stream, to reply: String) {
        guard req.last == nil else { return directStatus("408 Bad Request", reply) }
        let start: UInt64
        if let seq = req.seq, seq > 0 {
            start = seq
        } else if let t = req.startTime {
            start = s.store.firstSequence(atOrAfter: t)
        } else if req.next != nil {
            start = 1
        } else {
            return directStatus("408 Empty Request", reply)
        }
        let filters = req.next.map { [$0] } ?? []
        var pending = s.store.count(from: start, filters: filters)
        var lastSent: UInt64 = 0
        var sent = 0, bytes = 0
        var seq = start
        while sent < min(batch, directBatchLimit), let m = s.store.next(from: seq, filters: filters) {
            pending -= min(pending, 1)
            sendDirect(m, of: s, to: reply, extra: [("Nats-Num-Pending", "\(pending)"), ("Nats-Last-Sequence", "\(lastSent)")])
            lastSent = m.seq
            sent += 1
            seq = m.seq + 1
            bytes += m.subject.utf8.count + (m.headers?.count ?? 0) + m.payload.count
            if let max = req.maxBytes, max != 0, bytes >= max { break } // any non-zero max, as nats-server
        }
        if sent == 0 && batch > 0 { return directStatus("404 Message Not Found", reply) }
        directStatus("204 EOB", reply, [("Nats-Num-Pending", "\(pending)"), ("Nats-Last-Sequence", "\(lastSent)")])
    }

    /// The last message of each subject matching `filters` at or below the request's bound.
    private func sendMultiLast(_ filters: [String], _ req: DirectGetRequest, of s: Stream, to reply: String) {
        guard !filters.isEmpty else { return directStatus("408 Empty Request", reply) }
        var upTo = s.store.state.lastSeq
        if let u = req.upToSeq, u > 0 { upTo = min(upTo, u) } // 0: no bound
        if let t = req.upToTime { upTo = min(upTo, s.store.firstSequence(atOrAfter: saturatingAdd(t, 1)) &- 1) }
        var lasts = Set<UInt64>()
        for f in filters where !f.isEmpty {
            for subject in s.store.subjectCounts(matching: f).keys {
                if let seq = lastSequence(of: subject, atOrBelow: upTo, in: s.store) { lasts.insert(seq) }
            }
        }
        guard !lasts.isEmpty else { return directStatus("404 No Results", reply) }
        var order = lasts.sorted()
        let most = min(req.batch.flatMap { $0 > 0 ? $0 : nil } ?? Int.max, directBatchLimit)
        if order.count > most { order = Array(order.prefix(most)) }
        var lastSent: UInt64 = 0
        for (i, seq) in order.enumerated() {
            let left = lasts.count - i - 1
            guard let m = s.store.load(seq) else { continue }
            sendDirect(m, of: s, to: reply, extra: [("Nats-Num-Pending", "\(left)"), ("Nats-Last-Sequence", "\(lastSent)")])
            lastSent = seq
        }
        directStatus("204 EOB", reply, [("Nats-Num-Pending", "\(lasts.count - order.count)"),
                                        ("Nats-Last-Sequence", "\(lastSent)"), ("Nats-UpTo-Sequence", "\(upTo)")])
    }

    /// The last sequence of a literal subject at or below `upTo` (a forward scan of that subject
    /// when its newest message is above the bound).
    private func lastSequence(of subject: String, atOrBelow upTo: UInt64, in store: MessageStore) -> UInt64? {
        guard let newest = store.lastSequence(forSubject: subject) else { return nil }
        if newest <= upTo { return newest }
        var found: UInt64?
        var seq: UInt64 = 1
        while let m = store.next(from: seq, filters: [subject]), m.seq <= upTo {
            found = m.seq
            seq = m.seq + 1
        }
        return found
    }
}

/// A direct get's JSON body (`JSApiMsgGetRequest`).
struct DirectGetRequest {
    var seq: UInt64?
    var last: String?
    var next: String?
    var batch: Int?
    var maxBytes: Int?
    var multiLast: [String]?
    var upToSeq: UInt64?
    var upToTime: Int64?
    var startTime: Int64?
    var noHeaders: Bool

    init(_ body: [UInt8]) throws {
        let o = try JSONObject.parse(body, typeName: "JSApiMsgGetRequest")
        seq = try o.uint64("seq")
        // An empty subject is no subject (nats-server then finds the request empty).
        last = try o.string("last_by_subj").flatMap { $0.isEmpty ? nil : $0 }
        next = try o.string("next_by_subj").flatMap { $0.isEmpty ? nil : $0 }
        batch = try o.int("batch")
        maxBytes = try o.int("max_bytes")
        multiLast = try o.stringArray("multi_last")
        upToSeq = try o.uint64("up_to_seq")
        upToTime = try o.time("up_to_time")
        startTime = try o.time("start_time")
        noHeaders = try o.bool("no_hdr") ?? false
    }
}

extension Stream {
    /// The one message a get asks for (`STREAM.MSG.GET`, a direct get): the last on `last`, else
    /// the first on `next` from `seq` (at least 1), else the one at `seq`, else the first at or
    /// after `startTime`; nil when there is none or nothing was asked.
    func message(seq: UInt64?, last: String?, next: String?, startTime: Int64? = nil) -> StreamMessage? {
        if let last { return store.last(matching: last) }
        if let next { return store.next(from: max(seq ?? 0, 1), filters: [next]) }
        if let seq { return store.load(seq) }
        if let startTime { return store.next(from: store.firstSequence(atOrAfter: startTime), filters: []) }
        return nil
    }
}
