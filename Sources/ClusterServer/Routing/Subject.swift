/// Subject rules of the NATS protocol: dot-separated non-empty tokens without whitespace;
/// `*` matches exactly one token and `>` one or more trailing tokens, only as whole tokens
/// (`foo*` is a literal token, as in nats-server's `isValidSubject`).
public enum Subject {
    private static let dot = UInt8(ascii: ".")
    private static let star = UInt8(ascii: "*")
    private static let gt = UInt8(ascii: ">")

    /// True when `subject` is a valid subscription subject (wildcards allowed).
    public static func isValidSubscription(_ subject: String) -> Bool {
        validate(subject, allowWildcards: true)
    }

    /// True when `subject` is a valid literal subject (what a publish must use).
    public static func isValidLiteral(_ subject: String) -> Bool {
        validate(subject, allowWildcards: false)
    }

    /// True when `subject` contains a whole-token `*` or `>`.
    public static func hasWildcard(_ subject: String) -> Bool {
        for token in subject.utf8.split(separator: dot, omittingEmptySubsequences: false)
        where token.count == 1 && (token.first == star || token.first == gt) {
            return true
        }
        return false
    }

    private static func validate(_ subject: String, allowWildcards: Bool) -> Bool {
        let utf8 = subject.utf8
        if utf8.isEmpty { return false }
        for b in utf8 where b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r")
            || b == UInt8(ascii: "\n") || b == 0x0C || b == 0x0B {
            return false
        }
        let tokens = utf8.split(separator: dot, omittingEmptySubsequences: false)
        for (i, token) in tokens.enumerated() {
            if token.isEmpty { return false }
            guard token.count == 1, let b = token.first, b == star || b == gt else { continue }
            if !allowWildcards { return false }
            if b == gt && i != tokens.count - 1 { return false }
        }
        return true
    }

    /// True when the literal `subject` is matched by the (possibly wildcard) `pattern`.
    public static func matches(pattern: String, subject: String) -> Bool {
        var p = pattern.utf8.split(separator: dot, omittingEmptySubsequences: false)[...]
        var s = subject.utf8.split(separator: dot, omittingEmptySubsequences: false)[...]
        while let pt = p.first {
            if pt.count == 1 && pt.first == gt { return !s.isEmpty }
            guard let st = s.first else { return false }
            if !(pt.count == 1 && pt.first == star) && !pt.elementsEqual(st) { return false }
            p = p.dropFirst()
            s = s.dropFirst()
        }
        return s.isEmpty
    }

    /// True when some literal subject could match both patterns (streams with overlapping
    /// subjects are refused).
    public static func overlaps(_ a: String, _ b: String) -> Bool {
        let at = a.split(separator: ".", omittingEmptySubsequences: false)
        let bt = b.split(separator: ".", omittingEmptySubsequences: false)
        var i = 0
        while i < at.count && i < bt.count {
            if at[i] == ">" || bt[i] == ">" { return true }
            if at[i] != "*" && bt[i] != "*" && at[i] != bt[i] { return false }
            i += 1
        }
        return at.count == bt.count
    }
}
