/// The dissemination queue: the newest update per member, each piggybacked a bounded number
/// of times, least-sent first (SWIM section 4.1, infection-style dissemination).
struct Broadcasts: Sendable {
    private struct Item: Sendable {
        var status: MemberStatus
        var transmits: Int
        var order: UInt64
    }

    private var items: [MemberID: Item] = [:]
    private var nextOrder: UInt64 = 0

    var count: Int { items.count }

    /// Queues `status` for `member`, replacing an older queued update for it.
    mutating func enqueue(_ member: MemberID, _ status: MemberStatus) {
        nextOrder += 1
        items[member] = Item(status: status, transmits: 0, order: nextOrder)
    }

    /// Takes up to `limit` updates for one message (counting a transmission for each) and
    /// retires those sent `maxTransmits` times.
    mutating func take(limit: Int, maxTransmits: Int) -> [MemberUpdate] {
        guard limit > 0, !items.isEmpty else { return [] }
        // Least transmitted first, newest first among equals; member order breaks the last
        // ties so the choice does not depend on hashing.
        let chosen = items.sorted {
            ($0.value.transmits, ~$0.value.order) < ($1.value.transmits, ~$1.value.order)
        }.prefix(limit)
        var out: [MemberUpdate] = []
        out.reserveCapacity(chosen.count)
        for (member, item) in chosen {
            out.append(MemberUpdate(member: member, status: item.status))
            if item.transmits + 1 >= maxTransmits {
                items[member] = nil
            } else {
                items[member]?.transmits += 1
            }
        }
        return out
    }
}
