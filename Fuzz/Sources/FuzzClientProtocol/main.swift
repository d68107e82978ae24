import Foundation
import NIOCore
@testable import ClusterServer

// The client protocol parser sees every byte a hostile client sends. The input is fed in
// chunks whose sizes come from the first byte (splits anywhere are legal on TCP); the
// parser must return ops, ask for more, or throw — never trap — and must always make
// progress. CONNECT JSON goes through the same decoder the server uses.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientProtocol(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let chunk = Int(first % 64) + 1
    // Small limits so the limit paths are reachable with small inputs.
    var parser = ClientProtocolParser(maxControlLine: 256, maxPayload: 1024)
    var pending = ByteBuffer()
    var offset = 1
    var ops = 0
    while offset < bytes.count {
        let end = min(offset + chunk, bytes.count)
        pending.writeBytes(bytes[offset..<end])
        offset = end
        do {
            while let op = try parser.next(&pending) {
                ops += 1
                precondition(ops <= bytes.count, "more ops than input bytes")
                if case let .connect(json) = op {
                    _ = try? JSONDecoder().decode(ConnectOptions.self, from: Data(json.readableBytesView))
                }
            }
        } catch is ClientProtocolError {
            return 0 // the server closes the connection here
        } catch {
            preconditionFailure("unexpected error type \(error)")
        }
        // What is left is a partial op: bounded by the limits, as the server's buffer is.
        precondition(pending.readableBytes <= 256 + 1024 + 2 + chunk, "parser kept \(pending.readableBytes) bytes")
        pending.discardReadBytes()
    }
    return 0
}
