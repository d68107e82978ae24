/// A publish on its way to a stream's leader over a route (namespace `jsforward`):
/// - from the stream's former leader: it arrived while leadership moved (Raft refuses proposals
///   during a transfer). Forwarded once, never again;
/// - from a node without a replica that found no interest for it (`relay`,
///   `JetStreamService+Unrouted.swift`): sent to a replica, which proposes it as leader or, as
///   follower, forwards it once more, to the leader it knows. So at most two hops.
/// The receiver proposes it as if its publisher had reached it directly: the entry carries the
/// publisher's reply subject, so the PubAck goes straight back.
///
/// Layout: `CatchupWire`'s byte strings — version byte, stream, subject, reply, headers,
/// payload (u32 length each, 0xFFFFFFFF = absent). Version 2 (a relay) has a flags byte after
/// the version (bit 0: relay); a relay is the only thing sent as version 2, so a node of an
/// older version refuses only relays (it logs and drops them; the publisher times out and
/// retries, as it did before relays).
struct ForwardedPublish: Equatable {
    var stream: String
    var subject: String
    var reply: String?
    var headers: [UInt8]?
    var payload: [UInt8]
    /// Sent by a node without a replica: a follower that receives it may forward it once more.
    var relay = false

    static let namespace = "jsforward"

    func encode() -> [UInt8] {
        var w = CatchupWire.Writer()
        if relay { w.bytes += [2, 1] } else { w.bytes.append(1) }
        w.data(Array(stream.utf8))
        w.data(Array(subject.utf8))
        if let reply { w.data(Array(reply.utf8)) } else { w.u32(CatchupWire.absent) }
        if let headers { w.data(headers) } else { w.u32(CatchupWire.absent) }
        w.data(payload)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> ForwardedPublish {
        var r = CatchupWire.Reader(bytes: bytes)
        var relay = false
        switch try r.byte() {
        case 1: break
        case 2: relay = try r.byte() & 1 != 0
        default: throw CatchupWireError(description: "unknown forwarded-publish version")
        }
        guard let stream = try r.data(), let subject = try r.data(), !stream.isEmpty, !subject.isEmpty else {
            throw CatchupWireError(description: "forwarded publish without stream or subject")
        }
        let reply = try r.data()
        let headers = try r.data()
        guard let payload = try r.data(), r.at == bytes.count else {
            throw CatchupWireError(description: "malformed forwarded publish")
        }
        return ForwardedPublish(stream: String(decoding: stream, as: UTF8.self), subject: String(decoding: subject, as: UTF8.self),
                                reply: reply.map { String(decoding: $0, as: UTF8.self) }, headers: headers, payload: payload,
                                relay: relay)
    }
}
