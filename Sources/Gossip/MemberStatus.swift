/// SWIM's per-member incarnation number: only the member itself increments it, to refute
/// a suspicion (or a death) declared about itself (Das et al., SWIM, section 4.2).
public struct Incarnation: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Incarnation, b: Incarnation) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// What one member believes about another.
///
/// Statuses form a total order by (incarnation, rank) with rank alive < suspect < dead < left;
/// a status replaces another exactly when it is greater. That makes merging a join
/// semilattice, so every member that hears the same updates ends with the same view whatever
/// the order. It keeps SWIM's rules (suspect(i) overrides alive(i); alive needs a higher
/// incarnation to override suspect) and extends them as memberlist does: a member declared
/// dead by a partitioned side can refute with a higher incarnation once the partition heals,
/// instead of having to rejoin under a new identity.
public enum MemberStatus: Hashable, Sendable, CustomStringConvertible {
    case alive(Incarnation)
    case suspect(Incarnation)
    case dead(Incarnation)
    /// Left gracefully: not probed, not suspected, never refuted by others.
    case left(Incarnation)

    public var incarnation: Incarnation {
        switch self {
        case let .alive(i), let .suspect(i), let .dead(i), let .left(i): return i
        }
    }

    /// 0 alive, 1 suspect, 2 dead, 3 left (also the wire code).
    public var rank: UInt8 {
        switch self {
        case .alive: return 0
        case .suspect: return 1
        case .dead: return 2
        case .left: return 3
        }
    }

    /// Builds a status from its wire rank; nil for an unknown rank.
    public init?(rank: UInt8, incarnation: Incarnation) {
        switch rank {
        case 0: self = .alive(incarnation)
        case 1: self = .suspect(incarnation)
        case 2: self = .dead(incarnation)
        case 3: self = .left(incarnation)
        default: return nil
        }
    }

    /// Alive or suspect: still a member that is probed and counted.
    public var isLive: Bool { rank <= 1 }

    /// True when `self` should replace `other` (see the type comment).
    public func supersedes(_ other: MemberStatus) -> Bool {
        if incarnation != other.incarnation { return incarnation > other.incarnation }
        return rank > other.rank
    }

    public var description: String {
        switch self {
        case let .alive(i): return "alive(\(i))"
        case let .suspect(i): return "suspect(\(i))"
        case let .dead(i): return "dead(\(i))"
        case let .left(i): return "left(\(i))"
        }
    }
}
