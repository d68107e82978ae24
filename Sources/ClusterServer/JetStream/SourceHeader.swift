/// The `Nats-Stream-Source` header a sourced message is stored with, in nats-server 2.15.1's
/// layout `<stream> <sequence> <filter> <destination> <original subject>` (`>` for no filter
/// or no transform). nats-server appends a hash after it that is not reproduced; both read
/// only the first two fields back. Pure.
enum SourceHeader {
    static let name = "Nats-Stream-Source"

    static func value(stream: String, seq: UInt64, filter: String?, destination: String?, subject: String) -> String {
        "\(stream) \(seq) \(filter ?? ">") \(destination ?? ">") \(subject)"
    }

    /// Which source a header names: its stream, filter and destination (a stream sourced
    /// twice with different filters is two sources).
    static func key(stream: String, filter: String?, destination: String?) -> String {
        "\(stream) \(filter ?? ">") \(destination ?? ">")"
    }

    /// The source (`key`) and its stream's sequence of a header value, in either layout
    /// nats-server reads: fields separated by spaces (the filter and destination default to
    /// `>` when only two are there), or the older whole `$JS.ACK.<stream>...` reply subject.
    static func parse(_ value: String) -> (key: String, seq: UInt64)? {
        if value.hasPrefix("$JS.ACK.") {
            guard let ack = AckSubject(value) else { return nil }
            return (key(stream: ack.stream, filter: nil, destination: nil), ack.streamSeq)
        }
        let fields = value.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 2, let seq = UInt64(fields[1]) else { return nil }
        return (key(stream: String(fields[0]), filter: fields.count > 2 ? String(fields[2]) : nil,
                    destination: fields.count > 3 ? String(fields[3]) : nil), seq)
    }
}

/// What a source reads from a delivery's reply subject,
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`.
struct SourcedDelivery: Equatable {
    let streamSeq: UInt64
    let consumerSeq: UInt64
    /// The message's time in its stream (ns since 1970): what a mirror stores it with.
    let timestamp: Int64
    /// Messages left after this one: the source's lag.
    let pending: UInt64

    init(streamSeq: UInt64, consumerSeq: UInt64, timestamp: Int64 = 0, pending: UInt64) {
        self.streamSeq = streamSeq
        self.consumerSeq = consumerSeq
        self.timestamp = timestamp
        self.pending = pending
    }

    /// The 9-token form only: clusterd's consumers hand out no other.
    init?(reply: String) {
        guard reply.hasPrefix("$JS.ACK."), let f = AckSubject.withTail(reply), let ts = Int64(exactly: f.timestamp),
              reply.utf8.reduce(0, { $1 == UInt8(ascii: ".") ? $0 + 1 : $0 }) == 8 else { return nil }
        self.init(streamSeq: f.ack.streamSeq, consumerSeq: f.ack.consumerSeq, timestamp: ts, pending: f.pending)
    }
}
