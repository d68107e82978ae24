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
