import Foundation
@testable import ClusterServer

// JetStream API request bodies arrive from any client on `$JS.API.>`. The first input byte
// picks the decoder; the rest is the body. Decoding, validation and re-encoding must return
// a value or a JSAPIError, never trap (integer overflow on a huge duration, a bad cast).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJetStreamJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    do {
        switch data[0] % 4 {
        case 0: // $JS.API.STREAM.CREATE.<name>
            var cfg = try StreamConfig.decode(JSONObject.parse(body, typeName: "StreamConfig"))
            try cfg.normalize()
            _ = try JSONSerialization.data(withJSONObject: cfg.json)
        case 1: // $JS.API.CONSUMER.CREATE.<stream>
            let req = try JSONObject.parse(body, typeName: "CreateConsumerRequest")
            guard let obj = try req.object("config", typeName: "ConsumerConfig") else { return 0 }
            var cfg = try ConsumerConfig.decode(obj)
            var stream = StreamConfig.decodeDefault()
            try stream.normalize()
            try cfg.normalize(stream: stream, isCreate: true)
            _ = try JSONSerialization.data(withJSONObject: cfg.json)
        case 2: // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
            _ = try PullRequest.parse(body, reply: "_INBOX.x", now: 1_700_000_000_000_000_000)
        default: // -NAK bodies
            _ = JetStreamService.parseNakDelay(String(decoding: body, as: UTF8.self))
        }
    } catch is JSAPIError {
        return 0 // answered to the client as an API error
    } catch {
        preconditionFailure("unexpected error type \(type(of: error)): \(error)")
    }
    return 0
}

extension StreamConfig {
    /// A minimal valid stream for consumer validation.
    static func decodeDefault() -> StreamConfig {
        try! StreamConfig.decode(JSONObject(["name": "S", "subjects": ["s.>"]], typeName: "StreamConfig"))
    }
}
