import NIOCore

/// A message delivered to subscriptions of one subject (`target`, e.g. a pull request's inbox)
/// while it carries another (`subject`, the stored subject), as JetStream consumers deliver
/// (ADR-13). RMSG can only say one subject, so such deliveries cross a route as an `XMSG deliver`
/// frame and the receiving node matches `target` locally but hands out `subject`.
///
/// Payload: u32 target len | target | u32 subject len | subject | u32 reply len (max = none) |
/// reply | u32 queue count | (u32 len | queue)* | u32 headers len (max = none) | headers | payload.
/// A delivery in an account other than `$G` travels as `XMSG adeliver`, whose payload starts
/// with u32 account len | account (the `deliver` frame stays as it was for `$G`).
enum DeliverAsFrame {
    static let namespace = "deliver"
    static let accountNamespace = "adeliver"

    struct Decoded {
        /// nil: the global account.
        var account: String?
        var target: String
        var message: RoutedMessage
        var queues: [String]
    }

    /// The namespace `message` travels in (by its account).
    static func namespace(of message: RoutedMessage) -> String { message.account == nil ? namespace : accountNamespace }

    static func encode(_ message: RoutedMessage, target: String, queues: [String]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 64 + target.utf8.count + message.subject.utf8.count
                                             + (message.headers?.readableBytes ?? 0) + message.payload.readableBytes)
        func put(_ s: String?) {
            guard let s else { b.writeInteger(UInt32.max, endianness: .little); return }
            b.writeInteger(UInt32(s.utf8.count), endianness: .little)
            b.writeString(s)
        }
        if let account = message.account { put(account) }
        put(target)
        put(message.subject)
        put(message.reply)
        b.writeInteger(UInt32(queues.count), endianness: .little)
        for q in queues { put(q) }
        if let h = message.headers {
            b.writeInteger(UInt32(h.readableBytes), endianness: .little)
            b.writeImmutableBuffer(h)
        } else {
            b.writeInteger(UInt32.max, endianness: .little)
        }
        b.writeImmutableBuffer(message.payload)
        return b
    }

    /// nil for a malformed frame (a peer bug or a hostile peer): it is dropped. `withAccount`:
    /// an `adeliver` frame (the account comes first).
    static func decode(_ frame: ByteBuffer, withAccount: Bool = false) -> Decoded? {
        var b = frame
        func take() -> String?? {
            guard let n = b.readInteger(endianness: .little, as: UInt32.self) else { return .none }
            if n == UInt32.max { return .some(nil) }
            guard Int(n) <= b.readableBytes, let s = b.readString(length: Int(n)) else { return .none }
            return .some(s)
        }
        var account: String?
        if withAccount {
            guard case let a?? = take(), !a.isEmpty else { return nil }
            account = a
        }
        guard case let target?? = take(), case let subject?? = take(), case let reply? = take(),
              let count = b.readInteger(endianness: .little, as: UInt32.self), Int(count) <= b.readableBytes else { return nil }
        var queues: [String] = []
        for _ in 0..<count {
            guard case let q?? = take() else { return nil }
            queues.append(q)
        }
        guard let hlen = b.readInteger(endianness: .little, as: UInt32.self) else { return nil }
        var headers: ByteBuffer?
        if hlen != UInt32.max {
            guard Int(hlen) <= b.readableBytes, let h = b.readSlice(length: Int(hlen)) else { return nil }
            headers = h
        }
        guard Subject.isValidLiteral(target) else { return nil }
        let message = RoutedMessage(subject: subject, reply: reply, headers: headers, payload: b, fromRoute: true)
        return Decoded(account: account, target: target, message: message, queues: queues)
    }
}
