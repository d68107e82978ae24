/// A Raft term. Terms only grow; a message from an older term is stale.
public struct Term: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Term, b: Term) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "t\(rawValue)" }
    public static let zero = Term(0)
    /// The term after this one.
    public var next: Term { Term(rawValue + 1) }
}

/// A position in the replicated log (1-based; 0 means "before the first entry").
public struct LogIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: LogIndex, b: LogIndex) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "i\(rawValue)" }
    public static let zero = LogIndex(0)
    /// The following index.
    public var next: LogIndex { LogIndex(rawValue + 1) }
    /// The preceding index (saturating at 0).
    public var prev: LogIndex { LogIndex(rawValue == 0 ? 0 : rawValue - 1) }
    public static func + (a: LogIndex, b: Int) -> LogIndex { LogIndex(a.rawValue + UInt64(b)) }
    /// The number of indexes from `b` up to `a` (0 when `a <= b`).
    public static func - (a: LogIndex, b: LogIndex) -> Int { a > b ? Int(a.rawValue - b.rawValue) : 0 }
}

/// The identity of a node in a Raft group.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: NodeID, b: NodeID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "n\(rawValue)" }
}

/// The identity of one Raft group (the meta group or one stream's group) on a multi-group node.
public struct GroupID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: GroupID, b: GroupID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "g\(rawValue)" }
}
