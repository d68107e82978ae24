/// What a consumer needs from an ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
/// (9 tokens) or the v2 form with domain and account hash after `$JS.ACK` (11 tokens or more).
///
/// A byte scan: splitting the subject as a `String` (by `Character`) walks grapheme clusters,
/// and this runs for every ack a client sends — it was the largest single cost of a pull
/// consumer's leader.
/// (`init?(_:)` lives in an extension so the memberwise initializer stays synthesized.)
struct AckSubject: Equatable {
    let stream: String
    let consumer: String
    let streamSeq: UInt64
    let consumerSeq: UInt64
}

extension AckSubject {
    /// nil when `subject` has neither form's token count or a sequence is not a plain decimal
    /// number that fits in 64 bits (the ack is then ignored, as before).
    init?(_ subject: String) {
        var subject = subject
        guard let parsed = subject.withUTF8({ Self.parse($0, tail: false) }) else { return nil }
        self = parsed.ack
    }

    /// The ack and its last two numbers, the delivery's stream time (ns) and the messages
    /// pending after it (what a source reads; an ack does not need them).
    static func withTail(_ subject: String) -> (ack: AckSubject, timestamp: UInt64, pending: UInt64)? {
        var subject = subject
        guard let parsed = subject.withUTF8({ Self.parse($0, tail: true) }), let ts = parsed.timestamp,
              let pending = parsed.pending else { return nil }
        return (parsed.ack, ts, pending)
    }

    private static let dot = UInt8(ascii: ".")

    private static func parse(_ b: UnsafeBufferPointer<UInt8>, tail: Bool)
        -> (ack: AckSubject, timestamp: UInt64?, pending: UInt64?)? {
        let tokens = b.reduce(1) { $1 == dot ? $0 + 1 : $0 }
        let base: Int
        if tokens == 9 { base = 2 } else if tokens >= 11 { base = 4 } else { return nil }
        // Token n's bytes (subjects are short: a scan per token is cheaper than collecting them).
        func token(_ n: Int) -> UnsafeBufferPointer<UInt8> {
            var start = 0, seen = 0
            while seen < n { if b[start] == dot { seen += 1 }; start += 1 }
            var end = start
            while end < b.count, b[end] != dot { end += 1 }
            return UnsafeBufferPointer(rebasing: b[start..<end])
        }
        func number(_ n: Int) -> UInt64? {
            let t = token(n)
            guard !t.isEmpty else { return nil }
            var v: UInt64 = 0
            for d in t {
                guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { return nil }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(d - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                v = a
            }
            return v
        }
        guard let sseq = number(base + 3), let cseq = number(base + 4) else { return nil }
        let ack = AckSubject(stream: String(decoding: token(base), as: UTF8.self),
                             consumer: String(decoding: token(base + 1), as: UTF8.self), streamSeq: sseq, consumerSeq: cseq)
        return (ack, tail ? number(base + 5) : nil, tail ? number(base + 6) : nil)
    }
}

/// The kind of an ack body: the word before the first space, newline or `{` (`+ACK`, `-NAK`,
/// `+WPI`, `+NXT`, `+TERM`; an empty body acks), and where its argument starts.
enum AckVerb: Equatable {
    case ack, nak, inProgress, next, term

    /// nil for an unknown word (the ack is ignored). `argument` is what follows the 4-byte
    /// word for `-NAK` and `+NXT` (a delay, a pull request).
    static func parse(_ body: [UInt8]) -> (verb: AckVerb, argument: ArraySlice<UInt8>)? {
        var n = 0
        while n < body.count, body[n] != UInt8(ascii: " "), body[n] != UInt8(ascii: "\n"), body[n] != UInt8(ascii: "{") { n += 1 }
        let word = body[0..<n]
        let verb: AckVerb
        if word.isEmpty || word.elementsEqual("+ACK".utf8) || word.elementsEqual("+OK".utf8) {
            verb = .ack
        } else if word.elementsEqual("-NAK".utf8) {
            verb = .nak
        } else if word.elementsEqual("+WPI".utf8) {
            verb = .inProgress
        } else if word.elementsEqual("+NXT".utf8) {
            verb = .next
        } else if word.elementsEqual("+TERM".utf8) {
            verb = .term
        } else {
            return nil
        }
        return (verb, body[n...]) // after the word (`+TERM` is five bytes, the others four)
    }
}
