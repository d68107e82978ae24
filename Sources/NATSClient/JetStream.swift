import Foundation
import NIOCore

/// The acknowledgement of a JetStream publish.
public struct JetStreamPubAck: Decodable, Equatable, Sendable {
    public var stream: String
    public var seq: UInt64
    /// true when the server recognised `Nats-Msg-Id` inside the duplicate window.
    public var duplicate: Bool
    public var domain: String?

    public init(stream: String, seq: UInt64, duplicate: Bool = false, domain: String? = nil) {
        self.stream = stream
        self.seq = seq
        self.duplicate = duplicate
        self.domain = domain
    }

    enum CodingKeys: String, CodingKey { case stream, seq, duplicate, domain }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        seq = try c.decode(UInt64.self, forKey: .seq)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
    }
}

/// The `error` object of a JetStream API response. Branch on `errCode`, never on text.
public struct JetStreamAPIError: Error, Decodable, Equatable, Sendable, CustomStringConvertible {
    /// HTTP-like status, e.g. 404, 503.
    public var code: Int
    /// JetStream error code, e.g. 10059 (stream not found), 10071 (wrong last sequence).
    public var errCode: Int
    public var errorDescription: String

    public init(code: Int, errCode: Int, description: String) {
        self.code = code
        self.errCode = errCode
        self.errorDescription = description
    }

    enum CodingKeys: String, CodingKey { case code, errCode = "err_code", errorDescription = "description" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        code = try c.decode(Int.self, forKey: .code)
        errCode = try c.decodeIfPresent(Int.self, forKey: .errCode) ?? 0
        errorDescription = try c.decodeIfPresent(String.self, forKey: .errorDescription) ?? ""
    }

    public var description: String { "JetStream API error \(code)/\(errCode): \(errorDescription)" }
}

/// Only the `error` member, to tell failures from successes without knowing the type.
private struct ErrorEnvelope: Decodable {
    var error: JetStreamAPIError?
}

extension NATSConnection {
    /// Sends a JetStream API request and returns the raw JSON reply body. `api` is a full
    /// subject (`$JS.API.STREAM.INFO.ORDERS`) or the part after `$JS.API.` (`STREAM.INFO.ORDERS`).
    /// Throws `noResponders` when JetStream is not reachable.
    public func jsRequest(_ api: String, json: some NATSPayload, timeout: TimeAmount = .seconds(5)) async throws -> Data {
        let subject = api.hasPrefix("$JS.") ? api : "$JS.API." + api
        return try await request(subject, payload: json, timeout: timeout).data
    }

    /// Like `jsRequest`, then decodes the reply as `Response`, throwing `JetStreamAPIError`
    /// when the reply carries an `error` object.
    public func jsRequest<Response: Decodable>(_ api: String, json: some NATSPayload, as type: Response.Type,
                                               timeout: TimeAmount = .seconds(5)) async throws -> Response {
        let body = try await jsRequest(api, json: json, timeout: timeout)
        return try Self.decodeJetStreamResponse(body, as: type)
    }

    /// Publishes to a stream subject and waits for its PubAck. `msgId` sets `Nats-Msg-Id`
    /// (deduplication). A 503 "no responders" (stream leader being elected) is retried
    /// `noResponderRetries` times, 250 ms apart, as ADR-22 asks of clients.
    public func jsPublish(_ subject: String, payload: some NATSPayload, headers: NATSHeaders? = nil,
                          msgId: String? = nil, timeout: TimeAmount = .seconds(5),
                          noResponderRetries: Int = 2) async throws -> JetStreamPubAck {
        var headers = headers
        if let msgId {
            var h = headers ?? NATSHeaders()
            h["Nats-Msg-Id"] = msgId
            headers = h
        }
        var attempt = 0
        while true {
            do {
                let reply = try await request(subject, payload: payload, headers: headers, timeout: timeout)
                return try Self.decodeJetStreamResponse(reply.data, as: JetStreamPubAck.self)
            } catch NATSError.noResponders(let s) {
                guard attempt < noResponderRetries else { throw NATSError.noResponders(subject: s) }
                attempt += 1
                try await Task.sleep(nanoseconds: 250_000_000)
            }
        }
    }

    /// Decodes a JetStream reply: the `error` object wins, otherwise `Response`.
    public static func decodeJetStreamResponse<Response: Decodable>(_ body: Data, as type: Response.Type) throws -> Response {
        let decoder = JSONDecoder()
        do {
            if let error = try decoder.decode(ErrorEnvelope.self, from: body).error { throw error }
            return try decoder.decode(Response.self, from: body)
        } catch let error as JetStreamAPIError {
            throw error
        } catch {
            throw NATSError.protocolError("unexpected JetStream reply '\(String(decoding: body.prefix(200), as: UTF8.self))': \(error)")
        }
    }
}
