import Foundation

/// A consumer's record — config and ack state — as the JSON bytes of
/// `<stream>/consumers/<name>.json` (read back by `loadConsumers`).
///
/// Written by hand: in a cluster the record is encoded on every double ack and every 100 ms
/// while a consumer delivers, with a pending list of up to `max_ack_pending` entries. Going
/// through `JSONSerialization` (a dictionary of `NSNumber` arrays bridged one by one) took most of
/// a stream leader's CPU and made each acknowledgement wait on it (chaos soak: a durable draining
/// at under 10 acks/s with 900 messages pending).
enum ConsumerRecord {
    /// The record of `c`; `config` is its config's JSON (cached by the consumer).
    static func encode(_ c: Consumer, config: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + config.count + c.pending.count * 24)
        out += Array(#"{"config":"#.utf8)
        out += config
        out += Array(#","created":"#.utf8)
        appendInt(c.created, to: &out)
        if c.isInternal { out += Array(#","internal":true"#.utf8) }
        out += Array(#","name":"#.utf8)
        appendString(c.name, to: &out)
        out += Array(#","state":{"ack_floor_consumer_seq":"#.utf8)
        appendUInt(c.ackFloorConsumerSeq, to: &out)
        out += Array(#","ack_floor_stream_seq":"#.utf8)
        appendUInt(c.ackFloorStreamSeq, to: &out)
        out += Array(#","cursor":"#.utf8)
        appendUInt(c.cursor, to: &out)
        out += Array(#","delivered_consumer_seq":"#.utf8)
        appendUInt(c.deliveredConsumerSeq, to: &out)
        out += Array(#","delivered_stream_seq":"#.utf8)
        appendUInt(c.deliveredStreamSeq, to: &out)
        if let b = c.lastPerSubjectBoundary {
            out += Array(#","last_per_subject_boundary":"#.utf8)
            appendUInt(b, to: &out)
        }
        if !c.ackedAhead.isEmpty {
            out += Array(#","acked_ahead":["#.utf8)
            for (i, s) in c.ackedAhead.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendUInt(s, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out += Array(#","pending":["#.utf8)
        var first = true
        for s in c.pending.keys.sorted() {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "["))
            appendUInt(s, to: &out)
            out.append(UInt8(ascii: ","))
            appendUInt(c.pending[s]!.cseq, to: &out)
            out.append(UInt8(ascii: ","))
            appendUInt(UInt64(max(c.deliveries[s] ?? 1, 0)), to: &out)
            out.append(UInt8(ascii: "]"))
        }
        out += Array("]}}".utf8)
        return out
    }

    static func appendUInt(_ v: UInt64, to out: inout [UInt8]) {
        if v == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var digits: [UInt8] = []
        var n = v
        while n > 0 {
            digits.append(UInt8(ascii: "0") + UInt8(n % 10))
            n /= 10
        }
        out += digits.reversed()
    }

    static func appendInt(_ v: Int64, to out: inout [UInt8]) {
        if v < 0 { out.append(UInt8(ascii: "-")) }
        appendUInt(v.magnitude, to: &out)
    }

    /// A JSON string literal (quotes, backslashes and control characters escaped).
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension Consumer {
    /// A record's consumer name, checked: it names the record's file.
    static func recordName(_ o: JSONObject) throws -> String {
        guard let name = try o.string("name") else { throw JSAPIError.badRequest("consumer record without a name") }
        guard !name.isEmpty, name.utf8.count <= 255, !name.contains(where: { $0 == "/" || $0 == "\\" || $0 == "\0" }) else {
            throw JSAPIError.consumerNameInvalid
        }
        return name
    }

    /// The consumer a record describes (`ConsumerRecord.encode`; read at start, from a stream
    /// copy, from a snapshot archive), with its unacked deliveries due again after `ack_wait`.
    /// `trusted`: the record was written by a server (its `internal` mark counts), not read
    /// from a client's archive.
    static func restored(from record: [UInt8], stream s: Stream, now: Int64, trusted: Bool = true) throws -> Consumer {
        let o = try JSONObject.parse(record, typeName: "ConsumerMeta")
        let name = try recordName(o)
        guard let cfgObj = try o.object("config", typeName: "ConsumerConfig"),
              let st = try o.object("state", typeName: "ConsumerState") else {
            throw JSAPIError.badRequest("consumer record without config or state")
        }
        let cfg = try ConsumerConfig.decode(cfgObj)
        let c = Consumer(stream: s, name: name, config: cfg, created: try o.int64("created") ?? now)
        c.isInternal = try trusted && o.bool("internal") == true
        c.cursor = try st.uint64("cursor") ?? 1
        c.deliveredConsumerSeq = try st.uint64("delivered_consumer_seq") ?? 0
        c.deliveredStreamSeq = try st.uint64("delivered_stream_seq") ?? 0
        c.ackFloorConsumerSeq = try st.uint64("ack_floor_consumer_seq") ?? 0
        c.ackFloorStreamSeq = try st.uint64("ack_floor_stream_seq") ?? 0
        c.lastPerSubjectBoundary = try st.uint64("last_per_subject_boundary")
        // A record past its stream's end: the record was fsync'd when applied, the store
        // and its log were not (`sync_interval`), and after a power loss the store was
        // trimmed to its log (`StreamReplica.reconcileStoreAhead`). The stream's next
        // messages take those sequences again and must be delivered: the consumer
        // resumes at the stream's end.
        let last = s.store.state.lastSeq
        if c.cursor > last + 1 {
            s.service.server.logger.warning("Consumer '\(s.name) > \(name)': its state is past the stream's last sequence \(last) (at \(c.cursor - 1)); it resumes after \(last)")
            c.cursor = last + 1
            c.deliveredStreamSeq = min(c.deliveredStreamSeq, last)
            c.ackFloorStreamSeq = min(c.ackFloorStreamSeq, last)
        }
        if let p = st.fields["pending"] as? [[NSNumber]] {
            for e in p where e.count == 3 {
                let seq = e[0].uint64Value
                guard s.store.load(seq) != nil else { continue }
                // Unacked deliveries from before are redelivered after ack_wait.
                c.pending.deliver(seq, cseq: e[1].uint64Value,
                                  deadline: saturatingAdd(Consumer.ackClockNanos(), c.ackWait(forDelivery: max(Int(e[2].intValue), 1))))
                c.deliveries[seq] = Int(e[2].intValue)
            }
        }
        if let ahead = st.fields["acked_ahead"] as? [NSNumber] {
            c.ackedAhead = Set(ahead.prefix(Consumer.maxAckedAhead).map(\.uint64Value))
            c.pruneAckedAhead()
        }
        c.lastActive = now
        return c
    }
}
