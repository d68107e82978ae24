/// One single-server membership step.
///
/// Membership uses single-server changes (Raft dissertation §4.1), not joint consensus: any two
/// configurations that differ by one voter have overlapping majorities, so no two leaders can be
/// elected for one term across the change. As in the dissertation a configuration takes effect as
/// soon as its entry is *appended* to a log (not when committed), and a leader accepts a new change
/// only after the previous one committed and after it committed an entry of its own term (the fix
/// for the bug Ongaro described in 2015).
public enum ConfChangeKind: UInt8, Sendable {
    /// Add a non-voting member that receives the log and catches up.
    case addLearner = 0
    /// Make a learner (or a new node) a voter.
    case addVoter = 1
    /// Remove a voter or learner. A leader that removes itself steps down once the change commits.
    case remove = 2
}

/// A requested membership change.
public struct ConfChange: Equatable, Sendable {
    public var kind: ConfChangeKind
    public var node: NodeID
    public init(_ kind: ConfChangeKind, _ node: NodeID) {
        self.kind = kind
        self.node = node
    }

    /// Applies this change to `conf`, or nil when it would change nothing.
    public func applied(to conf: ConfState) -> ConfState? {
        switch kind {
        case .addLearner:
            if conf.contains(node) { return nil }
            return ConfState(voters: conf.voters, learners: conf.learners + [node])
        case .addVoter:
            if conf.isVoter(node) { return nil }
            return ConfState(voters: conf.voters + [node], learners: conf.learners.filter { $0 != node })
        case .remove:
            if !conf.contains(node) { return nil }
            return ConfState(voters: conf.voters.filter { $0 != node },
                             learners: conf.learners.filter { $0 != node })
        }
    }
}

/// The payload of a `.confChange` entry: the step and the complete resulting configuration.
/// Carrying the full configuration lets a node that joined later learn the membership from the
/// first configuration entry it receives, without the history before it.
public struct ConfChangeRecord: Equatable, Sendable {
    public var change: ConfChange
    public var result: ConfState

    public init(change: ConfChange, result: ConfState) {
        self.change = change
        self.result = result
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [change.kind.rawValue]
        out.reserveCapacity(1 + 8 + 8 + 8 * (result.voters.count + result.learners.count))
        Self.put(change.node.rawValue, into: &out)
        Self.put(UInt64(result.voters.count), into: &out)
        for v in result.voters { Self.put(v.rawValue, into: &out) }
        Self.put(UInt64(result.learners.count), into: &out)
        for l in result.learners { Self.put(l.rawValue, into: &out) }
        return out
    }

    public enum DecodeError: Error, Equatable { case truncated, badKind(UInt8), tooManyMembers }

    public static func decode(_ bytes: [UInt8]) throws -> ConfChangeRecord {
        var pos = 0
        guard let kindByte = bytes.first else { throw DecodeError.truncated }
        guard let kind = ConfChangeKind(rawValue: kindByte) else { throw DecodeError.badKind(kindByte) }
        pos = 1
        let node = try take(bytes, &pos)
        let voterCount = try take(bytes, &pos)
        guard voterCount <= 10_000 else { throw DecodeError.tooManyMembers }
        var voters: [NodeID] = []
        for _ in 0..<voterCount { voters.append(NodeID(try take(bytes, &pos))) }
        let learnerCount = try take(bytes, &pos)
        guard learnerCount <= 10_000 else { throw DecodeError.tooManyMembers }
        var learners: [NodeID] = []
        for _ in 0..<learnerCount { learners.append(NodeID(try take(bytes, &pos))) }
        return ConfChangeRecord(change: ConfChange(kind, NodeID(node)),
                                result: ConfState(voters: voters, learners: learners))
    }

    private static func put(_ v: UInt64, into out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    private static func take(_ bytes: [UInt8], _ pos: inout Int) throws -> UInt64 {
        guard pos + 8 <= bytes.count else { throw DecodeError.truncated }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[pos + i]) }
        pos += 8
        return v
    }
}
