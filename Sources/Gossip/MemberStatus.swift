/// SWIM's per-member incarnation number: only the member itself increments it, to refute
/// a suspicion about itself (Das et al., SWIM, section 4.2).
public struct Incarnation: Hashable, Comparable, Sendable {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Incarnation, b: Incarnation) -> Bool { a.rawValue < b.rawValue }
}

/// What one member believes about another.
public enum MemberStatus: Hashable, Sendable {
    case alive(Incarnation)
    case suspect(Incarnation)
    case dead

    /// SWIM's override rules (section 4.2): `dead` overrides everything; `suspect(i)` overrides
    /// `alive(j)` when i >= j and `suspect(j)` when i > j; `alive(i)` overrides `suspect(j)` and
    /// `alive(j)` only when i > j. Returns true when `self` should replace `other`.
    public func supersedes(_ other: MemberStatus) -> Bool {
        switch (self, other) {
        case (.dead, .dead): return false
        case (.dead, _): return true
        case (_, .dead): return false
        case let (.suspect(i), .alive(j)): return i >= j
        case let (.suspect(i), .suspect(j)): return i > j
        case let (.alive(i), .suspect(j)): return i > j
        case let (.alive(i), .alive(j)): return i > j
        }
    }
}
