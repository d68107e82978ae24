import Foundation

/// A decoded JSON object with typed, Go-style field access: a field of the wrong type fails
/// with the message Go's `encoding/json` gives (`json: cannot unmarshal string into Go struct
/// field StreamConfig.max_msgs of type int64`), so refusals read like nats-server's.
struct JSONObject {
    let fields: [String: Any]
    /// The Go struct name used in error texts.
    let typeName: String

    init(_ fields: [String: Any], typeName: String) {
        self.fields = fields
        self.typeName = typeName
    }

    /// Parses a request body; an empty body (or only whitespace) is `{}`.
    static func parse(_ bytes: [UInt8], typeName: String) throws -> JSONObject {
        let trimmed = bytes.drop { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
        if trimmed.isEmpty { return JSONObject([:], typeName: typeName) }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(trimmed), options: [.fragmentsAllowed])
        } catch {
            throw JSAPIError.invalidJSON("invalid character looking for beginning of value")
        }
        guard let dict = value as? [String: Any] else {
            throw JSAPIError.invalidJSON("json: cannot unmarshal \(JSONObject.kind(of: value)) into Go value of type server.\(typeName)")
        }
        return JSONObject(dict, typeName: typeName)
    }

    /// Refuses fields nats-server does not know (its `strict` default since 2.11).
    func rejectUnknown(_ known: Set<String>) throws {
        for key in fields.keys.sorted() where !known.contains(key) {
            throw JSAPIError.invalidJSON("json: unknown field \"\(key)\"")
        }
    }

    func has(_ key: String) -> Bool {
        guard let v = fields[key] else { return false }
        return !(v is NSNull)
    }

    private func mismatch(_ key: String, _ value: Any, _ goType: String) -> JSAPIError {
        .invalidJSON("json: cannot unmarshal \(JSONObject.kind(of: value)) into Go struct field \(typeName).\(key) of type \(goType)")
    }

    static func kind(of value: Any) -> String {
        if isBool(value) { return "bool" }
        if value is String { return "string" }
        if value is NSNumber { return "number" }
        if value is [Any] { return "array" }
        if value is [String: Any] { return "object" }
        return "value"
    }

    /// JSONSerialization hands booleans back as NSNumber subclasses; tell them from numbers by
    /// their class so `1` is not taken for `true` (nor `true` for 1).
    static func isBool(_ value: Any) -> Bool {
        if let n = value as? NSNumber {
            let name = String(describing: type(of: n))
            return name.contains("Boolean")
        }
        return value is Bool
    }

    func string(_ key: String) throws -> String? {
        guard has(key), let v = fields[key] else { return nil }
        guard let s = v as? String else { throw mismatch(key, v, "string") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard has(key), let v = fields[key] else { return nil }
        guard JSONObject.isBool(v), let b = v as? Bool else { throw mismatch(key, v, "bool") }
        return b
    }

    func int64(_ key: String, goType: String = "int64") throws -> Int64? {
        guard has(key), let v = fields[key] else { return nil }
        guard !JSONObject.isBool(v), let n = v as? NSNumber else { throw mismatch(key, v, goType) }
        let d = n.doubleValue
        guard d == d.rounded(), d >= -9.2e18, d <= 9.2e18 else { throw mismatch(key, v, goType) }
        return n.int64Value
    }

    func uint64(_ key: String) throws -> UInt64? {
        guard has(key), let v = fields[key] else { return nil }
        guard !JSONObject.isBool(v), let n = v as? NSNumber else { throw mismatch(key, v, "uint64") }
        let d = n.doubleValue
        guard d == d.rounded(), d >= 0, d < 1.8e19 else { throw mismatch(key, v, "uint64") }
        return n.uint64Value
    }

    func int(_ key: String) throws -> Int? {
        try int64(key, goType: "int").map { Int($0) }
    }

    func stringArray(_ key: String) throws -> [String]? {
        guard has(key), let v = fields[key] else { return nil }
        guard let a = v as? [Any] else { throw mismatch(key, v, "[]string") }
        return try a.map { e in
            guard let s = e as? String else { throw mismatch(key, e, "string") }
            return s
        }
    }

    /// An array of objects (Go `[]T`), each read as `typeName`.
    func objectArray(_ key: String, typeName: String) throws -> [JSONObject]? {
        guard has(key), let v = fields[key] else { return nil }
        guard let a = v as? [Any] else { throw mismatch(key, v, "[]server.\(typeName)") }
        return try a.map { e in
            guard let m = e as? [String: Any] else { throw mismatch(key, e, "server.\(typeName)") }
            return JSONObject(m, typeName: typeName)
        }
    }

    func int64Array(_ key: String) throws -> [Int64]? {
        guard has(key), let v = fields[key] else { return nil }
        guard let a = v as? [Any] else { throw mismatch(key, v, "[]time.Duration") }
        return try a.map { e in
            guard !JSONObject.isBool(e), let n = e as? NSNumber else { throw mismatch(key, e, "time.Duration") }
            return n.int64Value
        }
    }

    func stringMap(_ key: String) throws -> [String: String]? {
        guard has(key), let v = fields[key] else { return nil }
        guard let m = v as? [String: Any] else { throw mismatch(key, v, "map[string]string") }
        var out: [String: String] = [:]
        for (k, e) in m {
            guard let s = e as? String else { throw mismatch(key, e, "string") }
            out[k] = s
        }
        return out
    }

    func object(_ key: String, typeName: String) throws -> JSONObject? {
        guard has(key), let v = fields[key] else { return nil }
        guard let m = v as? [String: Any] else { throw mismatch(key, v, typeName) }
        return JSONObject(m, typeName: typeName)
    }

    /// A time field (RFC 3339).
    func time(_ key: String) throws -> Int64? {
        guard let s = try string(key) else { return nil }
        guard let ns = JSTime.parse(s) else {
            throw JSAPIError.invalidJSON("parsing time \"\(s)\" as \"2006-01-02T15:04:05Z07:00\": cannot parse")
        }
        return ns
    }
}

/// Response encoding and time formats of the JetStream API.
enum JSJSON {
    /// `s` as a JSON string literal, escaped as JSONSerialization (without slash escaping)
    /// does it. Hand-written because it runs for every PubAck: JSONSerialization was a fifth
    /// of the publish path's CPU.
    static func string(_ s: String) -> String {
        var needsEscape = false
        for b in s.utf8 where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
            needsEscape = true
            break
        }
        if !needsEscape { return "\"" + s + "\"" }
        var out = "\""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func encode(_ object: [String: Any]) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return Array("{}".utf8)
        }
        return Array(data)
    }
}

/// Nanosecond wall-clock timestamps and their RFC 3339 form (`2026-01-02T03:04:05.123456789Z`).
enum JSTime {
    /// The wall clock of JetStream, nanoseconds since the Unix epoch: every wall-clock read of
    /// streams and consumers comes through here (plus the test-only `TestClock` offset).
    static func nowNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec) + TestClock.offsetNanos
    }

    static func format(_ nanos: Int64) -> String {
        if nanos == 0 { return "0001-01-01T00:00:00Z" }
        var secs = time_t(nanos / 1_000_000_000)
        let frac = Int(nanos % 1_000_000_000)
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        var s = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                       Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
        if frac > 0 {
            var f = String(format: "%09d", frac)
            while f.hasSuffix("0") { f.removeLast() }
            s += "." + f
        }
        return s + "Z"
    }

    /// Parses RFC 3339 with optional fraction and offset; nil when malformed.
    static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count >= 20, u[4] == 45, u[7] == 45, u[10] == 84 || u[10] == 116, u[13] == 58, u[16] == 58 else { return nil }
        func num(_ a: Int, _ b: Int) -> Int? {
            var v = 0
            for i in a..<b { guard u[i] >= 48 && u[i] <= 57 else { return nil }; v = v * 10 + Int(u[i] - 48) }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13),
              let mi = num(14, 16), let s = num(17, 19) else { return nil }
        var i = 19
        var fracNs = 0
        if i < u.count && u[i] == 46 {
            i += 1
            var digits = 0
            while i < u.count && u[i] >= 48 && u[i] <= 57 {
                if digits < 9 { fracNs = fracNs * 10 + Int(u[i] - 48); digits += 1 }
                i += 1
            }
            while digits < 9 { fracNs *= 10; digits += 1 }
        }
        guard i < u.count else { return nil }
        var offset = 0
        if u[i] == 90 || u[i] == 122 {
            i += 1
        } else if u[i] == 43 || u[i] == 45, i + 6 <= u.count, u[i + 3] == 58, let oh = num(i + 1, i + 3), let om = num(i + 4, i + 6) {
            offset = (oh * 3600 + om * 60) * (u[i] == 43 ? 1 : -1)
            i += 6
        } else { return nil }
        guard i == u.count else { return nil }
        var tmv = tm()
        tmv.tm_year = Int32(y - 1900); tmv.tm_mon = Int32(mo - 1); tmv.tm_mday = Int32(d)
        tmv.tm_hour = Int32(h); tmv.tm_min = Int32(mi); tmv.tm_sec = Int32(s)
        let secs = Int64(timegm(&tmv)) - Int64(offset)
        return secs * 1_000_000_000 + Int64(fracNs)
    }
}

/// `a + b` clamped to the type's range: deadlines from client-given durations must not trap,
/// and byte counts and reservations from configs and peers' reports must not wrap into "fits".
@inline(__always) func saturatingAdd<T: FixedWidthInteger>(_ a: T, _ b: T) -> T {
    let (r, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b > 0 ? T.max : T.min) : r
}
