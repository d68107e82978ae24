/// Protocol timing, in ticks of the shell's timer, and dissemination limits.
public struct GossipConfig: Hashable, Sendable {
    /// Ticks per protocol period (one probe per period).
    public var periodTicks = 10
    /// Ticks to wait for a direct ack before asking `indirectProbes` members to probe.
    public var pingTimeoutTicks = 3
    /// k: members asked to probe indirectly (ping-req).
    public var indirectProbes = 3
    /// Suspicion lasts `suspicionMultiplier * ceil(log2(n + 1))` periods before death.
    public var suspicionMultiplier = 3
    /// lambda: an update is piggybacked `retransmitMultiplier * ceil(log2(n + 1))` times.
    public var retransmitMultiplier = 3
    /// Most updates piggybacked on one ping/ack/ping-req.
    public var maxPiggyback = 8
    /// Every this many periods, a full-state push-pull with one random live member
    /// (anti-entropy: repairs what bounded retransmission missed).
    public var syncPeriods = 10
    /// Every this many periods: connect to discovery addresses that are not live members
    /// yet, and push full state to one random dead member (so a healed partition reunites).
    public var rejoinPeriods = 5
    /// Dead and left members are forgotten after this many periods.
    public var tombstonePeriods = 3600

    public init() {}

    /// Checks the values make sense; nil when they do, else the reason.
    public var problem: String? {
        if periodTicks < 2 { return "period must be at least 2 ticks" }
        if pingTimeoutTicks < 1 || pingTimeoutTicks >= periodTicks { return "ping timeout must be within the period" }
        if indirectProbes < 0 || suspicionMultiplier < 1 || retransmitMultiplier < 1 || maxPiggyback < 1 {
            return "multipliers and limits must be positive"
        }
        if syncPeriods < 1 || rejoinPeriods < 1 || tombstonePeriods < 1 { return "periods must be positive" }
        return nil
    }

    /// ceil(log2(n + 1)), at least 1.
    static func scale(_ n: Int) -> Int {
        var bits = 0
        var v = max(n, 1)
        while v > 0 { bits += 1; v >>= 1 }
        return max(1, bits)
    }
}
