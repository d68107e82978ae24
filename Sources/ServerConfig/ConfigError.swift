/// A syntax or resolution error in a configuration file, with the place it was found.
///
/// `description` is the one-line form editors and humans expect:
/// `clusterd.conf:12:7: expected '}' to close block 'cluster' opened at 3:1`.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file the error is in (the path as the parser resolved it, e.g. for includes).
    public let file: String
    /// 1-based line; 0 when the error is about the file as a whole (e.g. it cannot be read).
    public let line: Int
    /// 1-based column, counted in Unicode scalars (a tab counts as one).
    public let column: Int
    /// What is wrong, without the location prefix.
    public let message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        let name = Display.text(file, limit: 300)
        return line > 0 ? "\(name):\(line):\(column): \(message)" : "\(name): \(message)"
    }
}

/// A position in a source text (1-based line and column).
struct SourceLocation: Equatable, Sendable, CustomStringConvertible {
    var line: Int
    var column: Int
    var description: String { "\(line):\(column)" }
}

/// Walks the Unicode scalars of a source text, keeping line and column current.
///
/// `\n`, `\r\n` and a lone `\r` each end a line, as nats-server's lexer treats both
/// `\n` and `\r` as newlines.
struct SourceCursor {
    private let scalars: [Unicode.Scalar]
    private(set) var offset = 0
    private(set) var line = 1
    private(set) var column = 1

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
    }

    var isAtEnd: Bool { offset >= scalars.count }
    var location: SourceLocation { SourceLocation(line: line, column: column) }
    var count: Int { scalars.count }

    /// The scalar `ahead` positions from the current one, or nil past the end.
    func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        let index = offset + ahead
        return index < scalars.count ? scalars[index] : nil
    }

    /// Moves past the current scalar (no-op at the end).
    mutating func advance() {
        guard offset < scalars.count else { return }
        let scalar = scalars[offset]
        offset += 1
        if scalar == "\n" || (scalar == "\r" && peek() != "\n") {
            line += 1
            column = 1
        } else {
            column += 1
        }
    }
}

extension Unicode.Scalar {
    /// Space or tab: the separators nats allows inside a line.
    var isInlineSpace: Bool { self == " " || self == "\t" }
    var isNewline: Bool { self == "\n" || self == "\r" }
    /// Any Unicode white space, newlines included (nats skips these between keys).
    var isBlank: Bool {
        if value < 0x80 { return value == 0x20 || (0x09...0x0D).contains(value) }
        return properties.isWhitespace
    }
    var isDigit: Bool { ("0"..."9").contains(self) }

    /// Ends an unquoted value: white space, newline, `;`, `,`, `]` or `}` (nats' lexString).
    var endsBareValue: Bool {
        switch self {
        case " ", "\t", "\n", "\r", ";", ",", "]", "}": return true
        default: return false
        }
    }

    /// Ends an unquoted key (white space is checked separately).
    var endsBareKey: Bool {
        switch self {
        case "{", "}", "[", "]", ",", ";", ":", "=": return true
        default: return false
        }
    }

    var cannotStartKey: Bool {
        switch self {
        case "[", "]", "{", ",", ";", ":", "=", ")": return true
        default: return false
        }
    }
}

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
