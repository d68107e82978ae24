/// The few objects, out of many, that need a periodic visit now. An object enters when its
/// state changes in a way the visit has to act on, and leaves after a visit that finds nothing
/// more to do, so a tick costs what the busy objects need instead of a pass over all of them
/// (10,000 idle streams on a node otherwise cost a pass each per tick).
struct AttentionSet<Element: AnyObject> {
    private var members: [ObjectIdentifier: Element] = [:]

    var count: Int { members.count }
    var isEmpty: Bool { members.isEmpty }

    func contains(_ e: Element) -> Bool { members[ObjectIdentifier(e)] != nil }

    /// Visited from the next pass on, until a visit says it is done (inserting twice is once).
    mutating func insert(_ e: Element) { members[ObjectIdentifier(e)] = e }

    mutating func remove(_ e: Element) { members[ObjectIdentifier(e)] = nil }

    /// The members now, for a pass that keeps them all.
    var elements: [Element] { Array(members.values) }

    /// Empties the set and returns what it held, for a pass: the pass inserts back each member
    /// that still needs visits (work done in the pass may insert members too; never mutate
    /// the set from inside a closure over it: the pass owns no access to it meanwhile).
    mutating func takeAll() -> [Element] {
        guard !members.isEmpty else { return [] }
        let pass = Array(members.values)
        members.removeAll(keepingCapacity: true)
        return pass
    }
}
