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
