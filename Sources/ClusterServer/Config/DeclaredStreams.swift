import Foundation
import ServerConfig

/// One stream declared in the config file's `streams` list: its name and the JSON body of the
/// `$JS.API.STREAM.CREATE/UPDATE` request that creates or updates it.
public struct DeclaredStream: Sendable, Equatable {
    public var name: String
    /// The stream config as JSON (keys sorted), exactly what a client would send.
    public var configJSON: [UInt8]

    public init(name: String, configJSON: [UInt8]) {
        self.name = name
        self.configJSON = configJSON
    }
}

/// Maps the `streams: [ { name: ..., subjects: [...], ... } ]` config list to stream config
/// JSON. Keys and values are those of the JetStream stream config JSON; only the forms that
/// config files write differently are converted:
///
/// - durations (`max_age`, `duplicate_window`, `subject_delete_marker_ttl`): a Go duration
///   string (`"72h"`, `"2m"`) or an integer of nanoseconds as in the JSON. Integers between 0
///   and one second are refused: an unquoted `2m` is the *size* 2,000,000 in this format;
/// - sizes (`max_bytes`, `max_msg_size`): `10GB`, `"512M"` or a plain integer.
///
/// Everything else (enums like `retention`, `storage`, `discard`; `placement`, `metadata`,
/// unknown keys) is passed through as JSON; the JetStream API validates it, as it would a
/// client's request, and its refusal is logged at boot. Top-level keys are matched
/// case-insensitively (as every config key); nested keys keep their case.
public enum DeclaredStreamsParser {
    static let durationKeys: Set<String> = ["max_age", "duplicate_window", "subject_delete_marker_ttl"]
    static let sizeKeys: Set<String> = ["max_bytes", "max_msg_size"]

    public static func parse(_ value: ConfigValue) throws -> [DeclaredStream] {
        guard case let .array(items) = value else {
            throw ConfigLoader.LoadError(description: "streams: expected a list of stream configs ([ { name: ..., subjects: [...] } ])")
        }
        var seen = Set<String>()
        return try items.enumerated().map { index, item in
            let stream = try parseOne(item, index: index)
            guard seen.insert(stream.name).inserted else {
                throw ConfigLoader.LoadError(description: "streams[\(index)]: stream '\(stream.name)' is declared twice")
            }
            return stream
        }
    }

    static func parseOne(_ item: ConfigValue, index: Int) throws -> DeclaredStream {
        guard case let .map(entries) = item else {
            throw ConfigLoader.LoadError(description: "streams[\(index)]: expected a block { name: ..., subjects: [...] }")
        }
        var fields: [String: Any] = [:]
        for (rawKey, v) in entries {
            let key = rawKey.lowercased()
            let path = "streams[\(index)].\(key)"
            if durationKeys.contains(key) {
                fields[key] = try durationNanos(v, path)
            } else if sizeKeys.contains(key) {
                fields[key] = try sizeBytes(v, path)
            } else {
                fields[key] = try json(v, path)
            }
        }
        guard let name = fields["name"] as? String else {
            throw ConfigLoader.LoadError(description: "streams[\(index)]: every stream needs a name")
        }
        if let problem = nameProblem(name) {
            throw ConfigLoader.LoadError(description: "streams[\(index)]: stream name '\(name)' \(problem)")
        }
        return DeclaredStream(name: name, configJSON: JSJSON.encode(fields))
    }

    /// Stream names become a token of the API subject (and a directory name), so they must
    /// not contain subject or path syntax.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > 255 { return "is longer than 255 bytes" }
        for ch in name.unicodeScalars {
            if ch == "." || ch == "*" || ch == ">" || ch == "/" || ch == "\\" { return "can not contain '\(ch)'" }
            if ch.value <= 32 || ch.value == 127 { return "can not contain whitespace or control characters" }
        }
        return nil
    }

    /// A config value as a JSONSerialization value.
    static func json(_ v: ConfigValue, _ path: String) throws -> Any {
        switch v {
        case let .string(s): return s
        case let .integer(i): return i
        case let .double(d):
            guard d.isFinite else { throw ConfigLoader.LoadError(description: "\(path): not a finite number") }
            return d
        case let .bool(b): return b
        case let .array(items): return try items.enumerated().map { try json($1, "\(path)[\($0)]") }
        case let .map(entries):
            var out: [String: Any] = [:]
            for (k, item) in entries { out[k] = try json(item, "\(path).\(k)") }
            return out
        }
    }

    /// Sizes: what `ConfigLoader.size` accepts, plus quoted forms of unquoted sizes
    /// (`"1GiB"`, `"512MB"`: Helm's JSON rendering quotes every string), read with the
    /// parser's own unquoted-size rules.
    static func sizeBytes(_ v: ConfigValue, _ path: String) throws -> Int64 {
        if case let .string(text) = v, (try? v.asSize(key: path)) == nil,
           !text.isEmpty, text.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) }),
           case let .integer(n)? = (try? ConfigParser().parse("v: \(text)", fileName: path))?["v"] {
            return n
        }
        return try ConfigLoader.size(v, path)
    }

    /// Nanoseconds, as the stream config JSON carries durations.
    static func durationNanos(_ v: ConfigValue, _ path: String) throws -> Int64 {
        if case let .integer(n) = v {
            guard n == 0 || n >= 1_000_000_000 else {
                throw ConfigLoader.LoadError(description:
                    "\(path): \(n) is \(n < 0 ? "negative" : "less than a second") in nanoseconds; write durations as quoted strings (\"2m\", \"72h\"): an unquoted 2m is the number 2000000")
            }
            return n
        }
        guard case .string = v else {
            throw ConfigLoader.LoadError(description: "\(path): expected a duration string like \"72h\"")
        }
        let d: Duration
        do { d = try v.asDuration(key: path, bareIntegerSeconds: false) } catch {
            throw ConfigLoader.LoadError(description: "\(error)")
        }
        let (seconds, atto) = d.components
        guard seconds >= 0, seconds < Int64.max / 1_000_000_000 else {
            throw ConfigLoader.LoadError(description: "\(path): duration out of range")
        }
        return seconds * 1_000_000_000 + atto / 1_000_000_000
    }
}
