/// One key/value pair of a block, in file order.
typealias ConfigEntry = (key: String, value: ConfigValue)

/// Recursive-descent parser for one source text (a file, an included file, or the value
/// of an environment variable). Blocks and arrays recurse; `scopes` mirrors the blocks
/// currently open so `$VAR` can see keys defined earlier in any enclosing block.
struct DocumentParser {
    var cursor: SourceCursor
    let file: String
    let settings: ConfigParser
    /// Files being parsed, outermost first; used to detect include cycles.
    let includeChain: [String]
    /// Environment variables being expanded, outermost first; detects `A=$B`, `B=$A`.
    var environmentChain: [String] = []
    /// Entries of each open block, outermost first.
    var scopes: [[ConfigEntry]] = []
    var depth = 0

    init(text: String, file: String, settings: ConfigParser, includeChain: [String]) {
        self.cursor = SourceCursor(text)
        self.file = file
        self.settings = settings
        self.includeChain = includeChain
    }

    /// How a block ends: at the end of the text (top level) or at a `}`.
    enum BlockEnd {
        case endOfText
        case brace(name: String?, openedAt: SourceLocation)
    }

    // MARK: - Errors

    func error(_ message: String, at location: SourceLocation? = nil) -> ConfigError {
        let where_ = location ?? cursor.location
        return ConfigError(file: file, line: where_.line, column: where_.column, message: message)
    }

    /// Quotes the scalar at the cursor for a message ("end of file" at the end).
    func describeCurrent() -> String {
        guard let scalar = cursor.peek() else { return "end of file" }
        switch scalar {
        case "\n", "\r": return "a newline"
        case "\t": return "a tab"
        default: return "'\(Display.escaped(scalar))'"
        }
    }

    static func unclosedBlockMessage(_ name: String?, _ openedAt: SourceLocation) -> String {
        if let name { return "expected '}' to close block '\(Display.text(name))' opened at \(openedAt)" }
        return "expected '}' to close block opened at \(openedAt)"
    }

    // MARK: - Whitespace and comments

    mutating func skipInlineSpace() {
        while let scalar = cursor.peek(), scalar.isInlineSpace { cursor.advance() }
    }

    var atComment: Bool {
        cursor.peek() == "#" || (cursor.peek() == "/" && cursor.peek(1) == "/")
    }

    /// Skips a `#` or `//` comment up to (not including) the end of its line.
    mutating func skipComment() {
        while let scalar = cursor.peek(), !scalar.isNewline { cursor.advance() }
    }

    /// Skips white space, newlines and comments.
    mutating func skipBlank() {
        while let scalar = cursor.peek() {
            if scalar.isBlank {
                cursor.advance()
            } else if atComment {
                skipComment()
            } else {
                return
            }
        }
    }

    // MARK: - Document and blocks

    /// Parses a whole file. A file may be wrapped in one pair of braces, JSON style,
    /// which nats-server also accepts.
    mutating func parseDocument() throws -> [ConfigEntry] {
        skipBlank()
        guard cursor.peek() == "{" else { return try parseBlockBody(end: .endOfText) }
        let openedAt = cursor.location
        cursor.advance()
        depth += 1
        let entries = try parseBlockBody(end: .brace(name: nil, openedAt: openedAt))
        depth -= 1
        skipBlank()
        while cursor.peek() == ";" || cursor.peek() == "," {
            cursor.advance()
            skipBlank()
        }
        if !cursor.isAtEnd {
            throw error("unexpected \(describeCurrent()) after the closing '}' of the top-level block")
        }
        return entries
    }

    /// Parses `key value` entries until `end`; consumes the closing `}` if there is one.
    mutating func parseBlockBody(end: BlockEnd) throws -> [ConfigEntry] {
        scopes.append([])
        // Every pass consumes at least one scalar or leaves the loop, so this bounds it.
        for _ in 0...cursor.count + 1 {
            skipBlank()
            guard let scalar = cursor.peek() else {
                if case let .brace(name, openedAt) = end {
                    throw error(Self.unclosedBlockMessage(name, openedAt))
                }
                break
            }
            if scalar == "}" {
                guard case .brace = end else {
                    throw error("unexpected '}' with no open block")
                }
                cursor.advance()
                break
            }
            if scalar == "]", case let .brace(name, openedAt) = end {
                throw error(Self.unclosedBlockMessage(name, openedAt) + ", found ']'")
            }
            try parseEntry(end: end)
        }
        return scopes.removeLast()
    }

    /// Adds or replaces `key` in the innermost open block. A repeated key replaces the
    /// earlier value in place, as nats-server's map assignment does (last one wins).
    mutating func setEntry(_ key: String, _ value: ConfigValue) {
        precondition(!scopes.isEmpty, "Internal inconsistency: entry outside of any block")
        let top = scopes.count - 1
        if let index = scopes[top].firstIndex(where: { $0.key == key }) {
            scopes[top][index].value = value
        } else {
            scopes[top].append((key: key, value: value))
        }
    }

    /// One `key [:|=] value` entry, an `include`, and what may follow it on the line.
    mutating func parseEntry(end: BlockEnd) throws {
        let keyAt = cursor.location
        let (key, quoted) = try parseKey()
        if !quoted, key.lowercased() == "include", isIncludeDirective() {
            try parseInclude(at: keyAt)
            try expectEntryEnd(after: "include", end: end)
            return
        }
        try skipSeparator(afterKey: key)
        let value = try parseValue(name: key, nameAt: keyAt)
        setEntry(key, value)
        try expectEntryEnd(after: "the value of '\(Display.text(key))'", end: end)
    }

    /// `include` is a directive when followed by white space and then not by a separator
    /// (`include: 1` is an ordinary key), matching nats' keyword check.
    func isIncludeDirective() -> Bool {
        guard let next = cursor.peek(), next.isInlineSpace else { return false }
        var ahead = 1
        while let scalar = cursor.peek(ahead), scalar.isInlineSpace { ahead += 1 }
        guard let first = cursor.peek(ahead) else { return true }
        return first != ":" && first != "="
    }

    /// Reads a key: quoted with `"` or `'` (taken literally), or bare up to white space,
    /// a separator or a structural character.
    mutating func parseKey() throws -> (String, quoted: Bool) {
        let startAt = cursor.location
        guard let first = cursor.peek() else { throw error("expected a key, found end of file") }
        if first == "\"" || first == "'" {
            cursor.advance()
            var scalars = String.UnicodeScalarView()
            while let scalar = cursor.peek(), scalar != first {
                scalars.append(scalar)
                cursor.advance()
            }
            guard !cursor.isAtEnd else { throw error("unterminated quoted key", at: startAt) }
            cursor.advance()
            return (String(scalars), true)
        }
        if first.cannotStartKey {
            throw error("expected a key, found \(describeCurrent())")
        }
        var scalars = String.UnicodeScalarView()
        while let scalar = cursor.peek(), !scalar.isBlank, !scalar.endsBareKey {
            scalars.append(scalar)
            cursor.advance()
        }
        return (String(scalars), false)
    }

    /// Consumes `:`, `=` or plain white space between a key and its value. A value must
    /// start on the key's line, except a block's `{` or an array's `[`, which may be on a
    /// later line (nats-server is looser inside blocks; this keeps typos diagnosable).
    mutating func skipSeparator(afterKey key: String) throws {
        skipInlineSpace()
        if cursor.peek() == ":" || cursor.peek() == "=" {
            cursor.advance()
            skipInlineSpace()
        }
        let lineEnd = cursor.location
        guard let next = cursor.peek(), !next.isNewline, !atComment else {
            skipBlank()
            if cursor.peek() == "{" || cursor.peek() == "[" { return }
            throw error("expected a value for key '\(Display.text(key))'", at: lineEnd)
        }
    }

    /// After an entry: only spaces, then a newline, `;`, `,`, a comment, `}` or the end.
    mutating func expectEntryEnd(after what: @autoclosure () -> String, end: BlockEnd) throws {
        skipInlineSpace()
        guard let scalar = cursor.peek() else { return }
        if scalar.isNewline || atComment || scalar == "}" { return }
        if scalar == ";" || scalar == "," {
            cursor.advance()
            return
        }
        let closer: String
        if case .brace = end { closer = "'}'" } else { closer = "end of file" }
        throw error("expected a newline, ';' or \(closer) after \(what()), found \(describeCurrent())")
    }

    // MARK: - Values

    /// Parses any value. `name` (the key, if any) and `nameAt` make messages about
    /// unclosed blocks and arrays point at where they were opened.
    mutating func parseValue(name: String?, nameAt: SourceLocation) throws -> ConfigValue {
        guard let first = cursor.peek() else {
            throw error(name.map { "expected a value for key '\(Display.text($0))'" } ?? "expected a value, found end of file")
        }
        if first == "{" || first == "[" {
            guard depth < settings.maxNestingDepth else {
                throw error("blocks and arrays are nested deeper than \(settings.maxNestingDepth) levels")
            }
            depth += 1
            defer { depth -= 1 }
            let openedAt = name == nil ? cursor.location : nameAt
            cursor.advance()
            if first == "{" {
                return .map(try parseBlockBody(end: .brace(name: name, openedAt: openedAt)))
            }
            return .array(try parseArrayBody(name: name, openedAt: openedAt))
        }
        switch first {
        case "\"": return .string(try parseDoubleQuoted())
        case "'": return .string(try parseSingleQuoted())
        case "(": return .string(try parseParenBlock())
        default:
            if first.isNewline || first == "]" || first == "}" || first == "," || first == ";" {
                throw error(name.map { "expected a value for key '\(Display.text($0))', found \(describeCurrent())" }
                    ?? "expected a value, found \(describeCurrent())")
            }
            return try parseBareValue()
        }
    }

    /// Elements separated by commas and/or newlines; a trailing comma is allowed, an
    /// empty element (`[a,,b]`) is not — both as in nats-server.
    mutating func parseArrayBody(name: String?, openedAt: SourceLocation) throws -> [ConfigValue] {
        var items: [ConfigValue] = []
        let label = name.map { "array '\(Display.text($0))'" } ?? "array"
        for _ in 0...cursor.count + 1 {
            skipBlank()
            guard let scalar = cursor.peek() else {
                throw error("expected ']' to close \(label) opened at \(openedAt)")
            }
            if scalar == "]" {
                cursor.advance()
                return items
            }
            if scalar == "," { throw error("unexpected ',' in \(label): empty element") }
            if scalar == "}" || scalar == ";" {
                throw error("expected ']' to close \(label) opened at \(openedAt), found \(describeCurrent())")
            }
            items.append(try parseValue(name: nil, nameAt: cursor.location))
            skipInlineSpace()
            if atComment { skipComment() }
            guard let next = cursor.peek() else { continue }
            if next == "," {
                cursor.advance()
            } else if !next.isNewline && next != "]" {
                throw error("expected ',', a newline or ']' after an element of \(label), found \(describeCurrent())")
            }
        }
        throw error("expected ']' to close \(label) opened at \(openedAt)")
    }
}
