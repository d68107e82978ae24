import Foundation

/// The decisions of declarative streams, without I/O: which JetStream API call comes next
/// for one declared stream, given what the previous call answered.
///
/// The sequence is INFO -> (not found) CREATE | (found) UPDATE. A CREATE that finds the name
/// taken (another node created it first, with an older config) turns into an UPDATE. Answers
/// that mean "JetStream is not there yet" (no responders, timeouts, status 503/408, and the
/// cluster-forming errors in `transientErrCodes`) are retried from INFO; every other refusal
/// is definitive (a bad config will not get better).
public enum DeclaredStreamPlan {
    public enum Call: String, Equatable, Sendable {
        case info = "INFO", create = "CREATE", update = "UPDATE"

        public func subject(stream: String) -> String { "$JS.API.STREAM.\(rawValue).\(stream)" }
    }

    /// What an API call answered, reduced to what the decision needs.
    public enum Reply: Equatable, Sendable {
        /// Success; `config` is the stream's config object as canonical JSON ("" if absent).
        case ok(config: String)
        case error(code: Int, errCode: Int, description: String)
        case noResponders
        case timeout
        case malformed(String)
    }

    public enum Outcome: String, Equatable, Sendable {
        case created, updated, unchanged
    }

    public enum Decision: Equatable, Sendable {
        case call(Call)
        /// Transient: wait (with backoff), then start over with INFO.
        case retry(reason: String)
        case done(Outcome)
        case failed(reason: String)
    }

    /// JetStream errors that a forming or recovering cluster answers and that go away by
    /// themselves: 10005 no suitable peers for placement (an R3 stream before the third node
    /// joined), 10008 system temporarily unavailable, 10009 cluster can not handle request
    /// (no meta leader yet), 10118/10194 stream is offline.
    public static let transientErrCodes: Set<Int> = [10005, 10008, 10009, 10118, 10194]

    /// The next step after `call` answered `reply`. `configBefore` is the config INFO reported
    /// (used to tell an UPDATE that changed something from one that did not).
    public static func next(after call: Call, reply: Reply, configBefore: String?) -> Decision {
        switch reply {
        case .noResponders:
            return .retry(reason: "no JetStream API responder yet")
        case .timeout:
            return .retry(reason: "STREAM.\(call.rawValue) request timed out")
        case let .malformed(why):
            return .failed(reason: "unreadable STREAM.\(call.rawValue) reply: \(why)")
        case let .error(code, errCode, description):
            if code == 503 || code == 408 || transientErrCodes.contains(errCode) {
                return .retry(reason: "\(description) (\(code)/\(errCode))")
            }
            if call == .info && errCode == 10059 { return .call(.create) }
            if call == .create && errCode == 10058 { return .call(.update) }
            return .failed(reason: "STREAM.\(call.rawValue) refused: \(description) (\(code)/\(errCode))")
        case let .ok(config):
            switch call {
            case .info: return .call(.update)
            case .create: return .done(.created)
            case .update: return .done(config == configBefore ? .unchanged : .updated)
            }
        }
    }

    /// Decodes a JetStream API reply body.
    public static func decode(_ reply: InternalReply) -> Reply {
        switch reply {
        case .noResponders: return .noResponders
        case .timeout: return .timeout
        case let .message(_, payload):
            guard let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else {
                return .malformed("not a JSON object")
            }
            if let error = object["error"] as? [String: Any] {
                return .error(code: (error["code"] as? NSNumber)?.intValue ?? 0,
                              errCode: (error["err_code"] as? NSNumber)?.intValue ?? 0,
                              description: error["description"] as? String ?? "")
            }
            guard let config = object["config"] as? [String: Any] else { return .ok(config: "") }
            return .ok(config: String(decoding: JSJSON.encode(config), as: UTF8.self))
        }
    }

    /// Backoff before retry number `attempt` (1-based): `initial` doubling up to `maximum`.
    public static func backoff(attempt: Int, initial: Double, maximum: Double) -> Double {
        let shift = Double(min(max(attempt - 1, 0), 30))
        return min(initial * pow(2, shift), maximum)
    }
}
