/// One gossip message between two members. Every message names its sender and the sender's
/// incarnation (receiving it is evidence the sender is alive) and piggybacks updates.
public struct GossipMessage: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Direct probe; answered with `ack(seq)`.
        case ping(seq: UInt64)
        /// Answer to a ping, or a relayed answer to a ping-req.
        case ack(seq: UInt64)
        /// "Please ping `target` for me and relay its ack as `ack(seq)`" (indirect probe).
        case pingReq(seq: UInt64, target: MemberID)
        /// Full-state push (join, anti-entropy, dead-member probe); answered with `syncReply`.
        case sync
        /// Full-state answer to `sync`; also used to tell a member it is considered dead.
        case syncReply
    }

    public var from: MemberID
    public var incarnation: Incarnation
    public var kind: Kind
    /// Piggybacked updates (for `sync`/`syncReply`: the sender's full view).
    public var updates: [MemberUpdate]

    public init(from: MemberID, incarnation: Incarnation, kind: Kind, updates: [MemberUpdate] = []) {
        self.from = from
        self.incarnation = incarnation
        self.kind = kind
        self.updates = updates
    }
}

/// What the state machine asks its shell to do.
public enum GossipDirective: Hashable, Sendable {
    /// Send `message` to `member` (best effort: a lost message is a normal event).
    case send(GossipMessage, to: MemberID)
    /// Open a transport to `address` (a discovery address that is not a live member yet, or a
    /// member just learned). When it is up, the shell sends `joinMessage()` over it.
    case connect(address: String)
    /// The view changed; observers (routes, the meta group, monitoring) react to it.
    case changed(MemberChange)
}
