/// Size suffixes of the nats-server configuration format.
///
/// For bare (unquoted) numbers nats-server's parser uses decimal units for a single
/// letter and binary units when a `b`, `i` or `ib` follows, case-insensitively:
/// `1k` = 1000, `1kb` = `1ki` = `1kib` = 1024, and the same for m, g, t, p, e.
enum SizeUnits {
    static let suffixList = "k, kb, ki, kib, m, mb, mi, mib, g, gb, gi, gib, t, tb, ti, tib, p, pb, pi, pib, e, eb, ei, eib"

    static func isSuffixStart(_ scalar: Unicode.Scalar) -> Bool {
        "kmgtpeKMGTPE".unicodeScalars.contains(scalar)
    }

    static func isSuffixTail(_ scalar: Unicode.Scalar) -> Bool {
        "biBI".unicodeScalars.contains(scalar)
    }

    /// The multiplier for a suffix such as `k`, `MB` or `GiB`; nil if unknown.
    static func multiplier(forSuffix suffix: String) -> Int64? {
        let lower = suffix.lowercased()
        guard let letter = lower.first, let power = "kmgtpe".firstIndex(of: letter) else { return nil }
        let exponent = "kmgtpe".distance(from: "kmgtpe".startIndex, to: power) + 1
        switch lower.dropFirst() {
        case "": return power10(exponent)
        case "b", "i", "ib": return Int64(1) << (10 * exponent)
        default: return nil
        }
    }

    private static func power10(_ exponent: Int) -> Int64 {
        var value: Int64 = 1
        for _ in 0..<exponent { value *= 1000 }
        return value
    }
}
