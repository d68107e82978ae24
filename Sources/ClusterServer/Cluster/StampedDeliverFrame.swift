import NIOCore

/// A JetStream consumer delivery crossing a route with its sender's `DeliveryStamp`
/// (`XMSG sdeliver`), so that the receiving node can refuse a copy from a deposed leader
/// (`DeliveryTermFence`). Sent only to peers whose route INFO says `js_delivery_stamps`; older
/// peers get the plain `deliver`/`adeliver` frame (they would drop an unknown namespace).
///
/// Payload: u32 key len | key | u64 term | u8 flags (1: account present) | the
/// `DeliverAsFrame` payload (with the account first when flagged). Little-endian.
enum StampedDeliverFrame {
    static let namespace = "sdeliver"

    static func encode(_ message: RoutedMessage, stamp: DeliveryStamp, target: String, queues: [String]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 16 + stamp.key.utf8.count)
        b.writeInteger(UInt32(stamp.key.utf8.count), endianness: .little)
        b.writeString(stamp.key)
        b.writeInteger(stamp.term, endianness: .little)
        b.writeInteger(UInt8(message.account == nil ? 0 : 1))
        var inner = DeliverAsFrame.encode(message, target: target, queues: queues)
        b.writeBuffer(&inner)
        return b
    }

    /// nil for a malformed frame (dropped by the caller).
    static func decode(_ frame: ByteBuffer) -> (stamp: DeliveryStamp, delivery: DeliverAsFrame.Decoded)? {
        var b = frame
        guard let n = b.readInteger(endianness: .little, as: UInt32.self), n > 0, Int(n) <= b.readableBytes,
              let key = b.readString(length: Int(n)),
              let term = b.readInteger(endianness: .little, as: UInt64.self),
              let flags = b.readInteger(as: UInt8.self), flags <= 1,
              var d = DeliverAsFrame.decode(b, withAccount: flags == 1) else { return nil }
        let stamp = DeliveryStamp(key: key, term: term)
        d.message.stamp = stamp
        return (stamp, d)
    }
}
