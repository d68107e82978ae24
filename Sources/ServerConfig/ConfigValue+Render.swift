/// Writes a `ConfigValue` back as configuration text that parses to the same value.
///
/// Used to show the effective configuration (e.g. after variables and includes were
/// resolved) and by the fuzz tests as a round-trip check of the parser.
extension ConfigValue {
    /// The value as config text. A top-level `.map` renders as `key: value` lines without
    /// braces, so the result is a whole config file. Non-finite doubles have no syntax and
    /// render as quoted strings (see `isExactlyRenderable`).
    /// False when some key cannot be written so that it parses back exactly (a key that
    /// needs quoting yet contains both `"` and `'`); `rendered()` is then approximate.
    public var isExactlyRenderable: Bool {
        switch self {
        case let .map(entries): return entries.allSatisfy { Renderer.canRender(key: $0.key) && $0.value.isExactlyRenderable }
        case let .array(items): return items.allSatisfy(\.isExactlyRenderable)
        case let .double(number): return number.isFinite
        default: return true
        }
    }

    public func rendered() -> String {
        var out = ""
        if case let .map(entries) = self {
            Renderer.entries(entries, indent: "", into: &out)
        } else {
            Renderer.value(self, indent: "", into: &out)
            out += "\n"
        }
        return out
    }
}

enum Renderer {
    static func entries(_ entries: [(key: String, value: ConfigValue)], indent: String, into out: inout String) {
        for entry in entries {
            out += indent + key(entry.key)
            out += entry.value.entries == nil ? ": " : " "
            value(entry.value, indent: indent, into: &out)
            out += "\n"
        }
    }

    static func value(_ value: ConfigValue, indent: String, into out: inout String) {
        switch value {
        case let .string(text): out += quoted(text)
        case let .integer(number): out += String(number)
        case let .double(number): out += number.isFinite ? decimal(number) : quoted(String(describing: number))
        case let .bool(flag): out += flag ? "true" : "false"
        case let .array(items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "[\n"
            for item in items {
                out += indent + "  "
                Renderer.value(item, indent: indent + "  ", into: &out)
                out += "\n"
            }
            out += indent + "]"
        case let .map(pairs):
            out += "{\n"
            entries(pairs, indent: indent + "  ", into: &out)
            out += indent + "}"
        }
    }

    /// Bare when the parser would read it back as the same bare key, else quoted. Quoted
    /// keys have no escapes, so a key that must be quoted but holds both quote characters
    /// cannot be written exactly (`canRender` is false; it is written double-quoted).
    static func key(_ key: String) -> String {
        if isBareKey(key) { return key }
        return key.contains("\"") && !key.contains("'") ? "'\(key)'" : "\"\(key)\""
    }

    static func canRender(key: String) -> Bool {
        isBareKey(key) || !key.contains("\"") || !key.contains("'")
    }

    private static func isBareKey(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first else { return false }
        if first == "\"" || first == "'" || first == "#" || first == "\u{FEFF}" || first.cannotStartKey || key.hasPrefix("//") {
            return false
        }
        if key.lowercased() == "include" { return false }
        return key.unicodeScalars.allSatisfy { !$0.isBlank && !$0.endsBareKey }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Plain `digits.digits` (the only float syntax the format has), from Swift's shortest
    /// round-trip form, moving the decimal point instead of writing an exponent.
    static func decimal(_ number: Double) -> String {
        let text = String(describing: number)
        let negative = text.hasPrefix("-")
        let unsigned = negative ? String(text.dropFirst()) : text
        let parts = unsigned.split(separator: "e", maxSplits: 1)
        let mantissa = parts[0]
        let exponent = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        let pieces = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = String(pieces[0])
        let fraction = pieces.count > 1 ? String(pieces[1]) : ""
        var digits = whole + fraction
        var point = whole.count + exponent
        if point <= 0 {
            digits = String(repeating: "0", count: 1 - point) + digits
            point = 1
        }
        if point >= digits.count { digits += String(repeating: "0", count: point - digits.count + 1) }
        let integerPart = String(digits.prefix(point))
        var fractionPart = String(digits.dropFirst(point))
        while fractionPart.count > 1 && fractionPart.hasSuffix("0") { fractionPart.removeLast() }
        return (negative ? "-" : "") + integerPart + "." + fractionPart
    }
}
