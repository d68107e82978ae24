/// A mapping of subjects from a source pattern to a destination template, as nats-server's
/// subject transforms (stream `subject_transform` and `republish`): the destination's tokens
/// are literals, a trailing `>` (the source's remaining tokens), or a function of the source's
/// `*` tokens (`$1` or `{{wildcard(1)}}`, `partition`, `split`, `splitFromLeft`,
/// `splitFromRight`, `sliceFromLeft`, `sliceFromRight`, `left`, `right`, `random`). Pure: no
/// I/O; `random` draws from the generator it is given.
public struct SubjectTransform: Sendable, Equatable {
    /// The source as configured ("" stands for `>`).
    public let source: String
    public let destination: String
    private let sourceTokenCount: Int
    private let parts: [Part]

    enum Part: Sendable, Equatable {
        case literal(String)
        /// `>`: the source tokens from the source's `>` on.
        case tail
        /// Token positions are 0-based positions in the subject (resolved from 1-based
        /// wildcard numbers when the transform is built).
        case wildcard(Int)
        /// Empty positions: the whole subject is hashed.
        case partition(buckets: UInt32, positions: [Int])
        case split(Int, String)
        case splitFromLeft(Int, Int)
        case splitFromRight(Int, Int)
        case sliceFromLeft(Int, Int)
        case sliceFromRight(Int, Int)
        case left(Int, Int)
        case right(Int, Int)
        case random(UInt32)
    }

    /// Why a transform cannot be built, in nats-server's words (`description`).
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Source or destination is not a subject, the destination has `*`, or only one of them
        /// ends in `>`.
        case badSubject
        case destination(Reason, token: String)
        /// A mapping destination with an empty token, a token after `>` or whitespace.
        case invalidTransform(token: String?)

        public enum Reason: String, Sendable {
            case indexOutOfRange = "wildcard index out of range"
            case notEnoughArguments = "not enough arguments passed to the function"
            case invalidArgument = "function argument is invalid or in the wrong format"
            case tooManyArguments = "too many arguments passed to the function"
            case unknownFunction = "unknown function"
        }

        public var description: String {
            switch self {
            case .badSubject: return "invalid subject"
            case let .destination(reason, token): return "invalid mapping destination: \(reason.rawValue) in \(token)"
            case let .invalidTransform(token): return "invalid mapping destination: invalid transform" + (token.map { " in \($0)" } ?? "")
            }
        }
    }

    /// A transform for an account's `mappings`, checked as nats-server's `ValidateMapping`
    /// does first: no empty token or token after `>`, no whitespace in a literal token, no
    /// unknown function.
    public static func mapping(source: String, destination: String) throws -> SubjectTransform? {
        var afterTail = false
        for t in destination.split(separator: ".", omittingEmptySubsequences: false) {
            if t.isEmpty || afterTail { throw Failure.invalidTransform(token: String(t)) }
            if t.count > 4 && t.hasPrefix("{{") && t.hasSuffix("}}") {
                _ = try function(String(t))
                continue
            }
            if t == ">" { afterTail = true } else if t.contains(where: \.isWhitespace) { throw Failure.invalidTransform(token: nil) }
        }
        return try SubjectTransform(source: source, destination: destination)
    }

    /// Builds the transform, or nil for an empty destination (nats-server: no transform).
    /// - Throws: `Failure` for what nats-server refuses.
    public init?(source: String, destination: String) throws {
        guard !destination.isEmpty else { return nil }
        let src = source.isEmpty ? ">" : source
        let sTokens = src.split(separator: ".", omittingEmptySubsequences: false)
        let dTokens = destination.split(separator: ".", omittingEmptySubsequences: false)
        // The destination's function tokens may hold spaces (`{{ wildcard( 1 ) }}`), so only
        // its token structure is checked, as nats-server does.
        guard Subject.isValidSubscription(src), !dTokens.contains(where: \.isEmpty), !dTokens.dropLast().contains(">"),
              !dTokens.contains("*"), (sTokens.last == ">") == (dTokens.last == ">") else { throw Failure.badSubject }
        // The subject position of the n-th `*` (1-based), as the functions name them.
        let stars = sTokens.indices.filter { sTokens[$0] == "*" }
        func position(_ n: Int, _ token: String) throws -> Int {
            guard n >= 1, n <= stars.count else {
                // nats-server names the index only when the source has wildcards.
                throw Failure.destination(.indexOutOfRange, token: stars.isEmpty ? token : "\(token): [\(n)]")
            }
            return stars[n - 1]
        }
        var parts: [Part] = []
        for t in dTokens {
            let token = String(t)
            if token == ">" { parts.append(.tail); continue }
            guard let call = try Self.function(token) else { parts.append(.literal(token)); continue }
            switch call {
            case let .wildcard(n): parts.append(.wildcard(try position(n, token)))
            case let .partition(buckets, ns): parts.append(.partition(buckets: buckets, positions: try ns.map { try position($0, token) }))
            case let .split(n, delimiter): parts.append(.split(try position(n, token), delimiter))
            case let .splitFromLeft(n, at): parts.append(.splitFromLeft(try position(n, token), at))
            case let .splitFromRight(n, at): parts.append(.splitFromRight(try position(n, token), at))
            case let .sliceFromLeft(n, size): parts.append(.sliceFromLeft(try position(n, token), size))
            case let .sliceFromRight(n, size): parts.append(.sliceFromRight(try position(n, token), size))
            case let .left(n, size): parts.append(.left(try position(n, token), size))
            case let .right(n, size): parts.append(.right(try position(n, token), size))
            case let .random(buckets): parts.append(.random(buckets))
            }
        }
        self.source = source
        self.destination = destination
        sourceTokenCount = sTokens.count
        self.parts = parts
    }

    /// The mapped subject when the literal `subject` matches the source, else nil. The result
    /// can be an invalid subject (a `split` that leaves an empty token): callers check.
    /// - Parameter random: draws a number below its argument (only `{{random(n)}}` calls it).
    public func apply(_ subject: String, random: (UInt32) -> UInt32 = { UInt32.random(in: 0..<$0) }) -> String? {
        guard Subject.matches(pattern: source.isEmpty ? ">" : source, subject: subject) else { return nil }
        return map(matched: subject, random: random)
    }

    /// `apply` for a subject the caller already matched against the source.
    func map(matched subject: String, random: (UInt32) -> UInt32) -> String {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        var out = ""
        for (i, part) in parts.enumerated() {
            if i > 0 { out += "." }
            switch part {
            case let .literal(s): out += s
            case .tail: out += tokens[(sourceTokenCount - 1)...].joined(separator: ".")
            case let .wildcard(p): out += tokens[p]
            case let .partition(buckets, positions):
                let key = positions.isEmpty ? Substring(subject) : Substring(positions.map { tokens[$0] }.joined())
                out += String(Self.fnv1a(key) % buckets)
            case let .split(p, delimiter): out += Self.split(tokens[p], by: delimiter)
            case let .splitFromLeft(p, at): out += Self.cut(tokens[p], at: at)
            case let .splitFromRight(p, at): out += Self.cut(tokens[p], at: tokens[p].count - at, when: at)
            case let .sliceFromLeft(p, size): out += Self.sliceFromLeft(tokens[p], size)
            case let .sliceFromRight(p, size): out += Self.sliceFromRight(tokens[p], size)
            case let .left(p, size): out += size > 0 && size < tokens[p].count ? String(tokens[p].prefix(size)) : String(tokens[p])
            case let .right(p, size): out += size > 0 && size < tokens[p].count ? String(tokens[p].suffix(size)) : String(tokens[p])
            case let .random(buckets): out += String(random(buckets))
            }
        }
        return out
    }

    // MARK: - destination functions

    enum Call: Equatable {
        case wildcard(Int)
        case partition(UInt32, [Int])
        case split(Int, String)
        case splitFromLeft(Int, Int), splitFromRight(Int, Int), sliceFromLeft(Int, Int), sliceFromRight(Int, Int)
        case left(Int, Int), right(Int, Int)
        case random(UInt32)
    }

    /// The function a destination token calls (`$N`, `{{name(args)}}`), nil for a literal.
    static func function(_ token: String) throws -> Call? {
        if token.count > 1, token.hasPrefix("$") {
            // `$` tokens that are not numbers stay literals (other subjects start with `$`).
            return Int(token.dropFirst()).map { .wildcard($0) }
        }
        guard token.count > 4, token.hasPrefix("{{"), token.hasSuffix("}}") else { return nil }
        guard let (name, args) = call(in: token) else {
            throw Failure.destination(.unknownFunction, token: token)
        }
        func fail(_ reason: Failure.Reason) -> Failure { .destination(reason, token: token) }
        func int(_ s: String) throws -> Int {
            guard let v = Int(s.trimmingCharacters(in: [" "])) else { throw fail(.invalidArgument) }
            return v
        }
        func buckets(_ s: String) throws -> UInt32 {
            // Zero buckets would divide by zero; nats-server does not check.
            guard let v = Int(s.trimmingCharacters(in: [" "])), v > 0, v <= Int(Int32.max) else { throw fail(.invalidArgument) }
            return UInt32(v)
        }
        func indexAndInt() throws -> (Int, Int) {
            if args.count < 2 { throw fail(.notEnoughArguments) }
            if args.count > 2 { throw fail(.tooManyArguments) }
            let n = try int(args[1])
            guard n >= Int(Int32.min), n <= Int(Int32.max) else { throw fail(.invalidArgument) }
            return (try int(args[0]), n)
        }
        switch name {
        case "wildcard":
            if args == [""] { throw fail(.notEnoughArguments) }
            if args.count > 1 { throw fail(.tooManyArguments) }
            return .wildcard(try int(args[0]))
        case "partition":
            return .partition(try buckets(args[0]), try args.dropFirst().map(int))
        case "splitfromleft": let (n, v) = try indexAndInt(); return .splitFromLeft(n, v)
        case "splitfromright": let (n, v) = try indexAndInt(); return .splitFromRight(n, v)
        case "slicefromleft": let (n, v) = try indexAndInt(); return .sliceFromLeft(n, v)
        case "slicefromright": let (n, v) = try indexAndInt(); return .sliceFromRight(n, v)
        case "left": let (n, v) = try indexAndInt(); return .left(n, v)
        case "right": let (n, v) = try indexAndInt(); return .right(n, v)
        case "split":
            if args.count < 2 { throw fail(.notEnoughArguments) }
            if args.count > 2 { throw fail(.tooManyArguments) }
            let delimiter = args[1]
            guard !delimiter.isEmpty, !delimiter.contains(" "), !delimiter.contains(".") else { throw fail(.invalidArgument) }
            return .split(try int(args[0]), delimiter)
        case "random":
            if args.count != 1 { throw fail(.notEnoughArguments) }
            return .random(try buckets(args[0]))
        default:
            throw fail(.unknownFunction)
        }
    }

    /// `{{ name ( args ) }}` → the lower-cased name and the comma-separated arguments (as
    /// nats-server: `,` followed by any spaces separates; each argument is trimmed of spaces
    /// where it is read). nats-server accepts only the first letter of each word in either case.
    private static func call(in token: String) -> (String, [String])? {
        var body = Substring(token.dropFirst(2).dropLast(2))
        body = body.drop { $0 == " " || $0 == "\t" }
        while let last = body.last, last == " " || last == "\t" { body = body.dropLast() }
        guard body.last == ")", let open = body.firstIndex(of: "(") else { return nil }
        let rawName = body[..<open].trimmingCharacters(in: [" ", "\t"])
        let names = ["wildcard", "partition", "splitFromLeft", "splitFromRight", "sliceFromLeft", "sliceFromRight",
                     "split", "left", "right", "random"]
        guard let name = names.first(where: { Self.sameName(rawName, $0) }) else { return nil }
        let inner = body[body.index(after: open)..<body.index(before: body.endIndex)]
        var args: [String] = []
        var current = ""
        var afterComma = false
        for ch in inner {
            if ch == "," { args.append(current); current = ""; afterComma = true; continue }
            if afterComma && ch.isWhitespace { continue }
            afterComma = false
            current.append(ch)
        }
        args.append(current)
        return (name.lowercased(), args)
    }

    /// nats-server's regular expressions take `[wW]ildcard`, `[sS]plit[fF]rom[lL]eft`: each
    /// capital of the canonical name may be either case, the other letters must match.
    private static func sameName(_ given: String, _ canonical: String) -> Bool {
        guard given.count == canonical.count else { return false }
        for (i, (g, c)) in zip(given, canonical).enumerated() {
            let wordStart = i == 0 || c.isUppercase
            if wordStart ? g.lowercased() != c.lowercased() : g != c { return false }
        }
        return true
    }

    // MARK: - token functions (nats-server's results, edge cases included)

    static func fnv1a<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == Character {
        var h: UInt32 = 0x811c_9dc5
        for ch in bytes {
            for b in ch.utf8 {
                h ^= UInt32(b)
                h = h &* 0x0100_0193
            }
        }
        return h
    }

    /// Non-empty pieces joined by `.` (empty pieces, from leading, trailing or doubled
    /// delimiters, are dropped).
    static func split(_ token: Substring, by delimiter: String) -> String {
        token.components(separatedBy: delimiter).filter { !$0.isEmpty }.joined(separator: ".")
    }

    /// The token cut in two at `at` characters from its start, if that is inside it. `when`:
    /// the count the caller asked for (for cuts counted from the end).
    static func cut(_ token: Substring, at: Int, when requested: Int? = nil) -> String {
        let n = requested ?? at
        guard n > 0, n < token.count else { return String(token) }
        return token.prefix(at) + "." + token.dropFirst(at)
    }

    /// Pieces of `size` from the start; the remainder is the last piece.
    static func sliceFromLeft(_ token: Substring, _ size: Int) -> String {
        guard size > 0, size < token.count else { return String(token) }
        var pieces: [Substring] = []
        var rest = token
        while !rest.isEmpty {
            pieces.append(rest.prefix(size))
            rest = rest.dropFirst(size)
        }
        return pieces.joined(separator: ".")
    }

    /// Pieces of `size` from the end; the remainder is the first piece.
    static func sliceFromRight(_ token: Substring, _ size: Int) -> String {
        guard size > 0, size < token.count else { return String(token) }
        var pieces: [Substring] = []
        var rest = token
        while !rest.isEmpty {
            pieces.insert(rest.suffix(size), at: 0)
            rest = rest.dropLast(size)
        }
        return pieces.joined(separator: ".")
    }
}
