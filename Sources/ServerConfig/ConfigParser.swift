/// Parses the nats-server configuration file format into a `ConfigValue`.
///
/// The parser is pure: it never touches the file system or the process environment.
/// Included files are read through `readFile`, and `$VAR` references that are not keys
/// fall back to `environment`. It is a value type with no shared state, so one parser can
/// be used from any thread (one parse call at a time per copy, like any struct).
///
/// ```swift
/// let parser = ConfigParser(environment: ProcessInfo.processInfo.environment,
///                           readFile: { try String(contentsOfFile: $0, encoding: .utf8) })
/// let root = try parser.parseFile(atPath: "/etc/clusterd/clusterd.conf")
/// let name = try root.string("server_name")
/// ```
///
/// Semantics follow nats-server's `conf` package (lex.go + parse.go); see docs/config.md for
/// the syntax and the few places this parser is stricter (it reports an error where nats
/// silently drops a value or crashes, e.g. unknown size suffixes or include cycles).
public struct ConfigParser {
    /// Returns the text of the file at `path`; throw to report it unreadable.
    public typealias FileReader = (_ path: String) throws -> String

    /// Variables that are not keys of an enclosing block are looked up here.
    public var environment: [String: String]
    /// Reads included files (and the root file for `parseFile`). Nil forbids `include`.
    public var readFile: FileReader?
    /// Deepest allowed nesting of blocks and arrays; deeper input is an error, not a crash.
    public var maxNestingDepth: Int = 128
    /// Longest allowed chain of nested includes.
    public var maxIncludeDepth: Int = 16

    public init(environment: [String: String] = [:], readFile: FileReader? = nil) {
        self.environment = environment
        self.readFile = readFile
    }

    /// Parses `text` as a whole configuration file and returns the top-level `.map`.
    ///
    /// - Parameter fileName: used in error messages and as the base for relative includes.
    /// - Throws: `ConfigError` with the file, line and column of the first problem.
    public func parse(_ text: String, fileName: String = "<config>") throws -> ConfigValue {
        let name = ConfigPath.clean(fileName)
        // Editors on some systems prepend a byte-order mark; it would otherwise become
        // part of the first key and hide that option.
        let body = text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
        var document = DocumentParser(text: body, file: name, settings: self, includeChain: [name])
        return .map(try document.parseDocument())
    }

    /// Reads `path` with `readFile` and parses it (see `parse(_:fileName:)`).
    public func parseFile(atPath path: String) throws -> ConfigValue {
        guard let readFile else {
            throw ConfigError(file: path, line: 0, column: 0, message: "cannot read config file: no file reader was provided")
        }
        let text: String
        do {
            text = try readFile(path)
        } catch {
            throw ConfigError(file: path, line: 0, column: 0, message: "cannot read config file: \(error)")
        }
        return try parse(text, fileName: path)
    }
}

/// Path arithmetic for includes, done on strings so the parser needs no file system.
enum ConfigPath {
    /// Lexical clean-up like Go's `filepath.Clean`: drops `.` and empty parts, folds `..`.
    static func clean(_ path: String) -> String {
        if path.isEmpty { return "." }
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !absolute {
                    parts.append(part)
                }
                continue
            }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// The directory part of `path` ("." when there is none), like `filepath.Dir`.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = path[..<slash]
        return dir.isEmpty ? "/" : clean(String(dir))
    }

    /// Resolves an include target relative to the directory of the including file,
    /// as nats-server does (`filepath.Join(filepath.Dir(includer), target)`).
    static func resolve(_ target: String, includedFrom includer: String) -> String {
        if target.hasPrefix("/") { return clean(target) }
        return clean(directory(of: includer) + "/" + target)
    }
}
