/// A member's identity: its server name, the route address others dial to reach it
/// (`host:port`), and a token that changes on every boot (or storage reset). A restarted
/// process is a new member; the old identity is declared dead.
public struct MemberID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var name: String
    public var address: String
    public var token: String

    public init(name: String, address: String, token: String) {
        self.name = name
        self.address = address
        self.token = token
    }

    /// Same server name and address, different token: a newer (or older) boot of one server.
    public func isOtherBoot(of other: MemberID) -> Bool {
        name == other.name && address == other.address && token != other.token
    }

    /// Hashes the token only (it is unique per boot; equality still compares every field):
    /// member dictionaries are on every message's path.
    public func hash(into hasher: inout Hasher) { hasher.combine(token) }

    public static func < (a: MemberID, b: MemberID) -> Bool {
        (a.name, a.address, a.token) < (b.name, b.address, b.token)
    }

    public var description: String { "\(name)@\(address)#\(token)" }
}

/// One entry of disseminated membership state.
public struct MemberUpdate: Hashable, Sendable {
    public var member: MemberID
    public var status: MemberStatus
    public init(member: MemberID, status: MemberStatus) {
        self.member = member
        self.status = status
    }
}

/// A member's status changed in this node's view (`previous` nil: newly learned).
public struct MemberChange: Hashable, Sendable {
    public var member: MemberID
    public var previous: MemberStatus?
    public var status: MemberStatus
}
