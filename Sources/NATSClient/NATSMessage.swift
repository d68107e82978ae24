import Foundation
import NIOCore

/// A message delivered to a subscription or returned by a request.
public struct NATSMessage: Equatable, Sendable {
    public var subject: String
    public var reply: String?
    /// nil for a plain `MSG`; present for `HMSG`.
    public var headers: NATSHeaders?
    public var payload: ByteBuffer

    public init(subject: String, reply: String? = nil, headers: NATSHeaders? = nil, payload: ByteBuffer) {
        self.subject = subject
        self.reply = reply
        self.headers = headers
        self.payload = payload
    }

    /// Status code from the header line (`NATS/1.0 503` → 503), or nil.
    public var status: Int? { headers?.status }
    /// Payload decoded as UTF-8.
    public var string: String { String(buffer: payload) }
    /// Payload as bytes.
    public var bytes: [UInt8] { Array(payload.readableBytesView) }
    /// Payload as `Data`, convenient for `JSONDecoder`.
    public var data: Data { Data(payload.readableBytesView) }
}

/// Anything that can be a message payload without an intermediate copy.
public protocol NATSPayload {
    var natsByteCount: Int { get }
    func write(into buffer: inout ByteBuffer)
}

extension ByteBuffer: NATSPayload {
    public var natsByteCount: Int { readableBytes }
    public func write(into buffer: inout ByteBuffer) { var copy = self; buffer.writeBuffer(&copy) }
}

extension Array: NATSPayload where Element == UInt8 {
    public var natsByteCount: Int { count }
    public func write(into buffer: inout ByteBuffer) { buffer.writeBytes(self) }
}

extension String: NATSPayload {
    public var natsByteCount: Int { utf8.count }
    public func write(into buffer: inout ByteBuffer) { buffer.writeString(self) }
}

extension Data: NATSPayload {
    public var natsByteCount: Int { count }
    public func write(into buffer: inout ByteBuffer) { buffer.writeBytes(self) }
}
