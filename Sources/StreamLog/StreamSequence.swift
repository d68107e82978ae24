/// A stream sequence number as clients see it (1-based, never reused).
public struct StreamSequence: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: StreamSequence, b: StreamSequence) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "s\(rawValue)" }
}
