/// Strings and bare (unquoted) values.
extension DocumentParser {
    /// A `"..."` string. Escapes: `\t \n \r \" \\ \xHH`; it may span lines.
    mutating func parseDoubleQuoted() throws -> String {
        let openedAt = cursor.location
        cursor.advance()
        var bytes: [UInt8] = []
        while let scalar = cursor.peek() {
            if scalar == "\"" {
                cursor.advance()
                return String(decoding: bytes, as: UTF8.self)
            }
            if scalar == "\\" {
                try readEscape(into: &bytes)
            } else {
                UTF8.encode(scalar) { bytes.append($0) }
                cursor.advance()
            }
        }
        throw error("unterminated double-quoted string", at: openedAt)
    }

    /// A `'...'` string, taken literally (no escapes), as in nats-server.
    mutating func parseSingleQuoted() throws -> String {
        let openedAt = cursor.location
        cursor.advance()
        var scalars = String.UnicodeScalarView()
        while let scalar = cursor.peek() {
            cursor.advance()
            if scalar == "'" { return String(scalars) }
            scalars.append(scalar)
        }
        throw error("unterminated single-quoted string", at: openedAt)
    }

    /// A `( ... )` multi-line raw string: it ends at a `)` alone on its own line. The text
    /// runs from just after `(` to just before the newline that precedes that `)`.
    mutating func parseParenBlock() throws -> String {
        let openedAt = cursor.location
        cursor.advance()
        var scalars = String.UnicodeScalarView()
        while let scalar = cursor.peek() {
            if scalar == "\n", cursor.peek(1) == ")", cursor.peek(2).map({ $0.isNewline }) ?? true {
                cursor.advance()
                cursor.advance()
                return String(scalars)
            }
            scalars.append(scalar)
            cursor.advance()
        }
        throw error("unterminated '(' block: expected ')' alone on a line to close the block opened at \(openedAt)")
    }

    /// Consumes one backslash escape (cursor on the `\`) and appends its UTF-8 bytes.
    mutating func readEscape(into bytes: inout [UInt8]) throws {
        let escapeAt = cursor.location
        cursor.advance()
        guard let kind = cursor.peek() else { throw error("unterminated escape sequence", at: escapeAt) }
        cursor.advance()
        switch kind {
        case "t": bytes.append(0x09)
        case "n": bytes.append(0x0A)
        case "r": bytes.append(0x0D)
        case "\"": bytes.append(0x22)
        case "\\": bytes.append(0x5C)
        case "x":
            guard let high = cursor.peek().flatMap(Self.hexValue), let low = cursor.peek(1).flatMap(Self.hexValue) else {
                throw error("expected two hexadecimal digits after '\\x'", at: escapeAt)
            }
            cursor.advance()
            cursor.advance()
            bytes.append(high << 4 | low)
        default:
            throw error("invalid escape '\\\(Display.escaped(kind))': only \\xHH, \\t, \\n, \\r, \\\" and \\\\ are allowed", at: escapeAt)
        }
    }

    static func hexValue(_ scalar: Unicode.Scalar) -> UInt8? {
        switch scalar.value {
        case 0x30...0x39: return UInt8(scalar.value - 0x30)
        case 0x41...0x46: return UInt8(scalar.value - 0x41 + 10)
        case 0x61...0x66: return UInt8(scalar.value - 0x61 + 10)
        default: return nil
        }
    }

    /// A bare value runs to white space, a newline, `;`, `,`, `]` or `}`. It is then a
    /// boolean, number, size, variable reference or plain string (see `BareWord`).
    mutating func parseBareValue() throws -> ConfigValue {
        let startAt = cursor.location
        var bytes: [UInt8] = []
        var escaped = false
        while let scalar = cursor.peek(), !scalar.endsBareValue {
            if scalar == "\\" {
                escaped = true
                try readEscape(into: &bytes)
            } else {
                UTF8.encode(scalar) { bytes.append($0) }
                cursor.advance()
            }
        }
        let word = String(decoding: bytes, as: UTF8.self)
        // nats emits any bare word containing an escape as a plain string.
        if escaped { return .string(word) }
        switch BareWord.classify(word) {
        case let .success(.value(value)): return value
        case let .success(.variable(name)): return try resolveVariable(name, at: startAt)
        case let .failure(problem): throw error(problem.message, at: startAt)
        }
    }
}

/// What an unquoted word means, following nats-server's lexer.
enum BareWord: Equatable {
    case value(ConfigValue)
    case variable(String)

    struct Problem: Error, Equatable { let message: String }

    static func classify(_ word: String) -> Result<BareWord, Problem> {
        guard let first = word.unicodeScalars.first else { return .success(.value(.string(""))) }
        if first == "$" { return .success(.variable(String(word.dropFirst()))) }
        switch word.lowercased() {
        case "true", "yes", "on": return .success(.value(.bool(true)))
        case "false", "no", "off": return .success(.value(.bool(false)))
        default: break
        }
        if first == "." {
            return .failure(Problem(message: "floats must start with a digit: '\(Display.text(word))'"))
        }
        if first == "-" || first.isDigit { return classifyNumeric(word) }
        return .success(.value(.string(word)))
    }

    /// Words starting with a digit or `-`: integers, sizes (`1k`, `2GB`, `512MiB`),
    /// floats, IP addresses and Zulu dates (kept as strings), or strings like `10s`.
    private static func classifyNumeric(_ word: String) -> Result<BareWord, Problem> {
        let scalars = Array(word.unicodeScalars)
        let negative = scalars[0] == "-"
        var index = negative ? 1 : 0
        let digitsStart = index
        while index < scalars.count, scalars[index].isDigit { index += 1 }
        let digits = String(String.UnicodeScalarView(scalars[digitsStart..<index]))
        if digits.isEmpty {
            return .failure(Problem(message: "expected a digit after '-' in '\(Display.text(word))'"))
        }
        let integerText = (negative ? "-" : "") + digits
        guard index < scalars.count else {
            guard let number = Int64(integerText) else {
                return .failure(Problem(message: "integer '\(Display.text(word))' is out of range"))
            }
            return .success(.value(.integer(number)))
        }
        let rest = String(String.UnicodeScalarView(scalars[index...]))
        let next = scalars[index]
        if SizeUnits.isSuffixStart(next), rest.unicodeScalars.dropFirst().allSatisfy(SizeUnits.isSuffixTail) {
            guard let number = Int64(integerText) else {
                return .failure(Problem(message: "integer '\(Display.text(word))' is out of range"))
            }
            guard let multiplier = SizeUnits.multiplier(forSuffix: rest) else {
                return .failure(Problem(message: "unknown size suffix '\(Display.text(rest))' in '\(Display.text(word))'; use \(SizeUnits.suffixList)"))
            }
            let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
            if overflow { return .failure(Problem(message: "size '\(Display.text(word))' does not fit in a 64-bit integer")) }
            return .success(.value(.integer(product)))
        }
        if next == "." { return classifyAfterDot(word, scalars, index) }
        if next == "-", !negative {
            return isZuluDate(scalars)
                ? .success(.value(.string(word)))
                : .failure(Problem(message: "dates must be in full Zulu form (YYYY-MM-DDTHH:MM:SSZ): '\(Display.text(word))'"))
        }
        if negative {
            return .failure(Problem(message: "unexpected '\(Display.escaped(next))' after the number in '\(Display.text(word))'"))
        }
        // nats-server lexes a bare word that starts with digits and goes on with other
        // characters (`10s`, `1h30m`, `4222abc`) as a plain string.
        return .success(.value(.string(word)))
    }

    private static func classifyAfterDot(_ word: String, _ scalars: [Unicode.Scalar], _ dot: Int) -> Result<BareWord, Problem> {
        var index = dot + 1
        while index < scalars.count, scalars[index].isDigit { index += 1 }
        if index == dot + 1 {
            return .failure(Problem(message: "expected a digit after '.' in '\(Display.text(word))'"))
        }
        guard index < scalars.count else {
            guard let number = Double(word), number.isFinite else {
                return .failure(Problem(message: "float '\(Display.text(word))' is out of range"))
            }
            return .success(.value(.double(number)))
        }
        // A second dot means an IP address or similar (`127.0.0.1:4222`): a string.
        if scalars[index] == "." { return .success(.value(.string(word))) }
        let numberText = String(String.UnicodeScalarView(scalars[..<index]))
        return .failure(Problem(message:
            "unexpected '\(Display.escaped(scalars[index]))' after the number '\(Display.text(numberText))' in '\(Display.text(word))'; quote the value if it is text"))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` exactly.
    private static func isZuluDate(_ scalars: [Unicode.Scalar]) -> Bool {
        let pattern = Array("0000-00-00T00:00:00Z".unicodeScalars)
        guard scalars.count == pattern.count else { return false }
        return zip(scalars, pattern).allSatisfy { actual, expected in
            expected == "0" ? actual.isDigit : actual == expected
        }
    }
}
