/// Renders user text inside one-line messages: control characters and line separators
/// are escaped, and long text is cut to `limit` scalars with an ellipsis.
enum Display {
    static func text(_ text: String, limit: Int = 40) -> String {
        var out = ""
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if index == limit { return out + "…" }
            out += escaped(scalar)
        }
        return out
    }

    static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            let category = scalar.properties.generalCategory
            if category == .control || category == .lineSeparator || category == .paragraphSeparator || category == .format {
                return "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            }
            return String(scalar)
        }
    }
}
