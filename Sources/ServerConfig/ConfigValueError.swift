/// A value has the wrong type or an unparsable duration/size, for the mapping layer.
///
/// `description` reads `cluster_port: expected an integer, found string "abc"`.
public struct ConfigValueError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// `found` describes the actual value, e.g. `string "abc"`.
        case wrongType(expected: String, found: String)
        case invalidDuration(String)
        case invalidSize(String)
        /// A required key is absent.
        case missing
    }

    /// The key the value was read for; empty when a bare text was parsed.
    public let key: String
    public let reason: Reason

    public init(key: String, reason: Reason) {
        self.key = key
        self.reason = reason
    }

    public var message: String {
        switch reason {
        case let .wrongType(expected, found): return "expected \(expected), found \(found)"
        case let .invalidDuration(detail): return detail
        case let .invalidSize(detail): return detail
        case .missing: return "required key is missing"
        }
    }

    public var description: String { key.isEmpty ? message : "\(key): \(message)" }

    func withKey(_ key: String) -> ConfigValueError {
        ConfigValueError(key: key, reason: reason)
    }
}
