/// `include` directives and `$VAR` references.
extension DocumentParser {
    /// Parses the file name after `include` and merges the included file's top-level
    /// entries into the current block, in their file order (later keys replace earlier).
    ///
    /// As in nats-server, the included file is parsed on its own: it cannot reference
    /// keys of the including file, but keys it defines are visible to later lines.
    mutating func parseInclude(at includeAt: SourceLocation) throws {
        skipInlineSpace()
        let pathAt = cursor.location
        let target: String
        switch cursor.peek() {
        case "\"": target = try parseSingleLineLiteral(quote: "\"")
        case "'": target = try parseSingleLineLiteral(quote: "'")
        default:
            var scalars = String.UnicodeScalarView()
            // Unlike nats, a bare path also ends at ',' so JSON-style files can write
            // `include auth.conf,`.
            while let scalar = cursor.peek(), !scalar.isInlineSpace, !scalar.isNewline,
                  scalar != ";", scalar != "}", scalar != "," {
                scalars.append(scalar)
                cursor.advance()
            }
            target = String(scalars)
        }
        if target.isEmpty { throw error("expected a file name after 'include'", at: pathAt) }
        try include(target, at: includeAt)
    }

    /// A quoted include path: no escapes, like nats-server's include lexer.
    private mutating func parseSingleLineLiteral(quote: Unicode.Scalar) throws -> String {
        let openedAt = cursor.location
        cursor.advance()
        var scalars = String.UnicodeScalarView()
        while let scalar = cursor.peek(), scalar != quote {
            if scalar.isNewline { break }
            scalars.append(scalar)
            cursor.advance()
        }
        guard cursor.peek() == quote else { throw error("unterminated include file name", at: openedAt) }
        cursor.advance()
        return String(scalars)
    }

    private mutating func include(_ target: String, at includeAt: SourceLocation) throws {
        let path = ConfigPath.resolve(target, includedFrom: file)
        if includeChain.contains(path) {
            let cycle = (includeChain.drop(while: { $0 != path }) + [path]).map { Display.text($0, limit: 200) }.joined(separator: " -> ")
            throw error("include cycle: \(cycle)", at: includeAt)
        }
        guard includeChain.count <= settings.maxIncludeDepth else {
            throw error("includes are nested deeper than \(settings.maxIncludeDepth) files", at: includeAt)
        }
        guard let readFile = settings.readFile else {
            throw error("cannot include '\(Display.text(target))': no file reader was provided", at: includeAt)
        }
        let text: String
        do {
            text = try readFile(path)
        } catch {
            throw self.error("cannot read included file '\(Display.text(path, limit: 200))': \(error)", at: includeAt)
        }
        var included = DocumentParser(text: text, file: path, settings: settings, includeChain: includeChain + [path])
        included.environmentChain = environmentChain
        for entry in try included.parseDocument() {
            setEntry(entry.key, entry.value)
        }
    }

    /// Resolves `$name`: the nearest key of that exact name defined earlier in this or an
    /// enclosing block, else the environment variable, else an error. Environment values
    /// are parsed as config values (`"10"` becomes an integer), as nats-server does.
    mutating func resolveVariable(_ name: String, at referenceAt: SourceLocation) throws -> ConfigValue {
        // nats keeps bare bcrypt hashes (`$2a$11$...`) as strings instead of variables.
        if name.hasPrefix("2a$") { return .string("$" + name) }
        if name.isEmpty { throw error("expected a variable name after '$'", at: referenceAt) }
        for scope in scopes.reversed() {
            if let entry = scope.last(where: { $0.key == name }) { return entry.value }
        }
        guard let raw = settings.environment[name] else {
            throw error("unknown variable '$\(Display.text(name))': not a key defined earlier in this or an enclosing block, nor an environment variable", at: referenceAt)
        }
        if environmentChain.contains(name) {
            let cycle = (environmentChain.drop(while: { $0 != name }) + [name]).map { "$" + Display.text($0) }.joined(separator: " -> ")
            throw error("environment variable cycle: \(cycle)", at: referenceAt)
        }
        var valueParser = DocumentParser(text: raw, file: "$\(name)", settings: settings, includeChain: includeChain)
        valueParser.environmentChain = environmentChain + [name]
        valueParser.depth = depth
        do {
            return try valueParser.parseStandaloneValue(name: name)
        } catch let problem as ConfigError {
            guard problem.file == "$\(name)" else { throw problem }
            // Inside another variable's value, pass the reason up unchanged so the
            // message names only the variable the file referenced.
            if !environmentChain.isEmpty { throw error(problem.message, at: referenceAt) }
            throw error("environment variable '\(Display.text(name))' does not hold a valid value: \(problem.message)", at: referenceAt)
        }
    }

    /// The whole text is one value (used for environment variables); empty text is "".
    mutating func parseStandaloneValue(name: String) throws -> ConfigValue {
        scopes.append([])
        skipInlineSpace()
        if cursor.isAtEnd { return .string("") }
        let value = try parseValue(name: name, nameAt: cursor.location)
        skipInlineSpace()
        if !cursor.isAtEnd {
            throw error("unexpected \(describeCurrent()) after the value")
        }
        return value
    }
}
