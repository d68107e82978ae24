/// Typed access for the server's mapping layer.
///
/// Key lookups are case-insensitive because nats-server matches option names with
/// `strings.ToLower` (`Server_Name` and `server_name` are the same option). Lookups return
/// nil when the key is absent and throw `ConfigValueError` when it has the wrong type.
/// (`$VAR` references, by contrast, are matched case-sensitively by the parser, as in nats.)
extension ConfigValue {
    /// The value of `key` in a block, ignoring case; the last one wins if the file spells
    /// a key two ways. Nil when absent or when `self` is not a block.
    public subscript(key: String) -> ConfigValue? {
        guard case let .map(entries) = self else { return nil }
        let wanted = key.lowercased()
        return entries.last(where: { $0.key.lowercased() == wanted })?.value
    }

    /// The entries of a block in file order, or nil if `self` is not a block.
    public var entries: [(key: String, value: ConfigValue)]? {
        if case let .map(entries) = self { return entries }
        return nil
    }

    public var stringValue: String? { if case let .string(v) = self { return v }; return nil }
    public var intValue: Int64? { if case let .integer(v) = self { return v }; return nil }
    public var boolValue: Bool? { if case let .bool(v) = self { return v }; return nil }
    public var arrayValue: [ConfigValue]? { if case let .array(v) = self { return v }; return nil }
    /// A double, or an integer widened to a double.
    public var doubleValue: Double? {
        switch self {
        case let .double(v): return v
        case let .integer(v): return Double(v)
        default: return nil
        }
    }

    /// Short description of the value for error messages, e.g. `string "abc"`.
    public var typeDescription: String {
        switch self {
        case let .string(v): return "string \"\(Display.text(v))\""
        case let .integer(v): return "integer \(v)"
        case let .double(v): return "float \(v)"
        case let .bool(v): return "boolean \(v)"
        case let .array(v): return "array of \(v.count) element\(v.count == 1 ? "" : "s")"
        case .map: return "block"
        }
    }

    /// The value of `key`, throwing `.missing` if absent.
    public func required(_ key: String) throws -> ConfigValue {
        guard let value = self[key] else { throw ConfigValueError(key: key, reason: .missing) }
        return value
    }

    public func string(_ key: String) throws -> String? {
        try typed(key, "a string") { $0.stringValue }
    }

    public func int(_ key: String) throws -> Int64? {
        try typed(key, "an integer") { $0.intValue }
    }

    public func bool(_ key: String) throws -> Bool? {
        try typed(key, "a boolean (true/false, yes/no, on/off)") { $0.boolValue }
    }

    public func double(_ key: String) throws -> Double? {
        try typed(key, "a number") { $0.doubleValue }
    }

    public func array(_ key: String) throws -> [ConfigValue]? {
        try typed(key, "an array") { $0.arrayValue }
    }

    /// A nested block (`key { ... }`), returned as a `.map` value for further lookups.
    public func block(_ key: String) throws -> ConfigValue? {
        try typed(key, "a block") { $0.entries == nil ? nil : $0 }
    }

    /// A duration option; see `asDuration(key:bareIntegerSeconds:)`.
    public func duration(_ key: String, bareIntegerSeconds: Bool = true) throws -> Duration? {
        guard let value = self[key] else { return nil }
        return try value.asDuration(key: key, bareIntegerSeconds: bareIntegerSeconds)
    }

    /// A size option in bytes; see `asSize(key:)`.
    public func size(_ key: String) throws -> Int64? {
        guard let value = self[key] else { return nil }
        return try value.asSize(key: key)
    }

    /// This value as a duration. Strings use Go syntax (`"2m"`, `"1h30m"`, `"500ms"`).
    /// With `bareIntegerSeconds` an integer counts as seconds, as nats-server does for
    /// `ping_interval` and `write_deadline`; without it (nats' `lame_duck_duration`) an
    /// integer is an error. Beware: an unquoted `2m` is the size 2000000, so nats (and
    /// this parser) read `ping_interval: 2m` as 2000000 seconds; quote durations.
    public func asDuration(key: String = "", bareIntegerSeconds: Bool = true) throws -> Duration {
        switch self {
        case let .string(text):
            do { return try parseDuration(text) } catch let problem as ConfigValueError { throw problem.withKey(key) }
        case let .integer(seconds) where bareIntegerSeconds:
            guard seconds.magnitude <= UInt64(Int64.max / 1_000_000_000) else {
                throw ConfigValueError(key: key, reason: .invalidDuration("\(seconds) seconds is out of range"))
            }
            return .seconds(seconds)
        case let .integer(number):
            throw ConfigValueError(key: key, reason: .invalidDuration(
                "expected a duration string such as \"30s\" or \"2m\", found integer \(number); write durations quoted (an unquoted 2m is the size 2000000)"))
        default:
            throw ConfigValueError(key: key, reason: .wrongType(expected: "a duration string such as \"30s\"", found: typeDescription))
        }
    }

    /// This value as a size in bytes: an integer (suffixes were applied by the parser) or a
    /// string in nats' `getStorageSize` form (`"10G"`, binary units; see `parseSize`).
    public func asSize(key: String = "") throws -> Int64 {
        switch self {
        case let .integer(bytes): return bytes
        case let .string(text):
            do { return try parseSize(text) } catch let problem as ConfigValueError { throw problem.withKey(key) }
        default:
            throw ConfigValueError(key: key, reason: .wrongType(expected: "a size such as 1GB or \"1G\"", found: typeDescription))
        }
    }

    private func typed<T>(_ key: String, _ expected: String, _ extract: (ConfigValue) -> T?) throws -> T? {
        guard let value = self[key] else { return nil }
        guard let typed = extract(value) else {
            throw ConfigValueError(key: key, reason: .wrongType(expected: expected, found: value.typeDescription))
        }
        return typed
    }
}
