/// A publish a stream's former leader hands to the new one (route namespace `jsforward`): it
/// arrived while leadership moved (Raft refuses proposals during a transfer), and the new
/// leader proposes it as if its publisher had reached it directly — the entry carries the
/// publisher's reply subject, so the PubAck goes straight back. Forwarded once, never again.
///
/// Layout: `CatchupWire`'s byte strings — version byte, stream, subject, reply, headers,
/// payload (u32 length each, 0xFFFFFFFF = absent).
struct ForwardedPublish: Equatable {
    var stream: String
    var subject: String
    var reply: String?
    var headers: [UInt8]?
    var payload: [UInt8]

    static let namespace = "jsforward"
    static let version: UInt8 = 1

    func encode() -> [UInt8] {
        var w = CatchupWire.Writer()
        w.bytes.append(Self.version)
        w.data(Array(stream.utf8))
        w.data(Array(subject.utf8))
        if let reply { w.data(Array(reply.utf8)) } else { w.u32(CatchupWire.absent) }
        if let headers { w.data(headers) } else { w.u32(CatchupWire.absent) }
        w.data(payload)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> ForwardedPublish {
        var r = CatchupWire.Reader(bytes: bytes)
        guard try r.byte() == version else { throw CatchupWireError(description: "unknown forwarded-publish version") }
        guard let stream = try r.data(), let subject = try r.data(), !stream.isEmpty, !subject.isEmpty else {
            throw CatchupWireError(description: "forwarded publish without stream or subject")
        }
        let reply = try r.data()
        let headers = try r.data()
        guard let payload = try r.data(), r.at == bytes.count else {
            throw CatchupWireError(description: "malformed forwarded publish")
        }
        return ForwardedPublish(stream: String(decoding: stream, as: UTF8.self), subject: String(decoding: subject, as: UTF8.self),
                                reply: reply.map { String(decoding: $0, as: UTF8.self) }, headers: headers, payload: payload)
    }
}
