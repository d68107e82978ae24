/// Parses a Go-style duration (`time.ParseDuration`): a sequence of decimal numbers, each
/// with an optional fraction and a unit, with an optional leading sign:
/// `"300ms"`, `"1h30m"`, `"1.5s"`, `"-2m"`. Units: ns, us (or µs), ms, s, m, h.
/// `"0"` alone needs no unit.
///
/// - Throws: `ConfigValueError` with reason `.invalidDuration`.
public func parseDuration(_ text: String) throws -> Duration {
    Duration.nanoseconds(try GoDuration.nanoseconds(text))
}

/// Parses a size given as a string the way nats-server's `getStorageSize` does: an
/// integer followed by `K`, `M`, `G` or `T` in binary units (`"1G"` = 1073741824).
/// A plain integer string and the empty string (0) are accepted too.
///
/// Note: unquoted sizes are converted by the parser itself, where `1G` is decimal
/// (10^9) and `1GB`/`1GiB` binary; see `SizeUnits` and docs/config.md.
///
/// - Throws: `ConfigValueError` with reason `.invalidSize`.
public func parseSize(_ text: String) throws -> Int64 {
    if text.isEmpty { return 0 }
    if let plain = Int64(text) { return plain }
    let shifts: [Character: Int64] = ["K": 10, "M": 20, "G": 30, "T": 40]
    let invalid = ConfigValueError(key: "", reason: .invalidSize(
        "invalid size \"\(Display.text(text))\": a size string must be an integer followed by K, M, G or T (binary units, \"1G\" = 1073741824); unquoted sizes such as 1G, 1GB or 1GiB are also accepted"))
    guard let suffix = text.last, let shift = shifts[suffix], let number = Int64(text.dropLast()) else {
        throw invalid
    }
    let (product, overflow) = number.multipliedReportingOverflow(by: Int64(1) << shift)
    if overflow {
        throw ConfigValueError(key: "", reason: .invalidSize("invalid size \"\(Display.text(text))\": does not fit in a 64-bit integer"))
    }
    return product
}

/// Go's duration grammar, computed in unsigned nanoseconds with overflow checks.
enum GoDuration {
    private static let units: [String: UInt64] = [
        "ns": 1, "us": 1_000, "\u{00B5}s": 1_000, "\u{03BC}s": 1_000,
        "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]
    private static let limit: UInt64 = 1 << 63

    static func nanoseconds(_ text: String) throws -> Int64 {
        func fail(_ detail: String) -> ConfigValueError {
            ConfigValueError(key: "", reason: .invalidDuration(detail))
        }
        let invalid = fail("invalid duration \"\(Display.text(text))\": use a number and a unit, e.g. \"500ms\", \"10s\", \"2m\" or \"1h30m\"")
        var scalars = Substring(text).unicodeScalars[...]
        var negative = false
        if let sign = scalars.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            scalars = scalars.dropFirst()
        }
        if String(scalars) == "0" { return 0 }
        if scalars.isEmpty { throw invalid }
        var total: UInt64 = 0
        // Each pass consumes at least one scalar (a digit or the unit), so this bounds it.
        while let first = scalars.first {
            guard first == "." || first.isDigit else { throw invalid }
            var whole: UInt64 = 0
            var sawDigits = false
            while let digit = scalars.first, digit.isDigit {
                let (times10, o1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(digit.value - 48))
                if o1 || o2 || sum > limit { throw fail("duration \"\(Display.text(text))\" is out of range") }
                whole = sum
                sawDigits = true
                scalars = scalars.dropFirst()
            }
            var fraction: UInt64 = 0
            var scale: Double = 1
            if scalars.first == "." {
                scalars = scalars.dropFirst()
                while let digit = scalars.first, digit.isDigit {
                    // Digits past what fits add nothing measurable; Go ignores them too.
                    if fraction < UInt64(Int64.max) / 10 {
                        fraction = fraction * 10 + UInt64(digit.value - 48)
                        scale *= 10
                    }
                    sawDigits = true
                    scalars = scalars.dropFirst()
                }
            }
            guard sawDigits else { throw invalid }
            let unitScalars = scalars.prefix { $0 != "." && !$0.isDigit }
            scalars = scalars.dropFirst(unitScalars.count)
            let unitName = String(String.UnicodeScalarView(unitScalars))
            if unitName.isEmpty { throw fail("missing unit in duration \"\(Display.text(text))\" (use ns, us, ms, s, m or h)") }
            guard let unit = units[unitName] else {
                throw fail("unknown unit \"\(Display.text(unitName))\" in duration \"\(Display.text(text))\" (use ns, us, ms, s, m or h)")
            }
            let (scaled, o1) = whole.multipliedReportingOverflow(by: unit)
            var part = scaled
            if fraction > 0 {
                let extra = Double(fraction) * (Double(unit) / scale)
                guard extra < Double(limit) else { throw fail("duration \"\(Display.text(text))\" is out of range") }
                part = part &+ UInt64(extra)
            }
            let (sum, o2) = total.addingReportingOverflow(part)
            if o1 || o2 || part < scaled || sum > limit { throw fail("duration \"\(Display.text(text))\" is out of range") }
            total = sum
        }
        if negative { return total == limit ? Int64.min : -Int64(total) }
        guard total < limit else { throw fail("duration \"\(Display.text(text))\" is out of range") }
        return Int64(total)
    }
}
