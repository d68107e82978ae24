extension SWIM {
    /// The configured seed addresses (`host:port`), replacing the previous list.
    public mutating func setSeeds(_ addresses: [String]) -> [GossipDirective] {
        setDiscovery("seeds", addresses)
    }

    /// The addresses a DNS name resolved to this time (the shell re-resolves periodically);
    /// an empty answer forgets the name's previous addresses.
    public mutating func dnsAnswer(name: String, addresses: [String]) -> [GossipDirective] {
        setDiscovery("dns:" + name, addresses)
    }

    /// Forgets a DNS name that is no longer configured.
    public mutating func forgetDNSName(_ name: String) {
        discovery["dns:" + name] = nil
    }

    /// Every discovery address currently known, sorted.
    public var discoveryAddresses: [String] {
        Array(discovery.values.reduce(into: Set<String>()) { $0.formUnion($1) }).sorted()
    }

    private mutating func setDiscovery(_ source: String, _ addresses: [String]) -> [GossipDirective] {
        let new = Set(addresses.filter { !$0.isEmpty })
        let old = Set(discoveryAddresses)
        discovery[source] = new.isEmpty ? nil : new
        guard !hasLeft else { return [] }
        let known = knownAddresses()
        return new.subtracting(old).subtracting(known).sorted().map { .connect(address: $0) }
    }

    /// Addresses of this node and of live members.
    func knownAddresses() -> Set<String> {
        var s: Set<String> = [myself.address]
        for (id, e) in members where e.status.isLive { s.insert(id.address) }
        return s
    }

    /// Periodic: connect to discovery addresses that are no live member's, and push full state
    /// to one dead member (which refutes if it is in fact alive behind a healed partition).
    mutating func rejoin(into out: inout [GossipDirective]) {
        let known = knownAddresses()
        for a in discoveryAddresses where !known.contains(a) { out.append(.connect(address: a)) }
        if let dead = randomMember(where: { $0.rank == 2 }) {
            if !known.contains(dead.address) { out.append(.connect(address: dead.address)) }
            out.append(.send(GossipMessage(from: myself, incarnation: incarnation, kind: .sync, updates: fullState()), to: dead))
        }
    }
}
