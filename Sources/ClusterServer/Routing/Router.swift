/// A per-connection memo of match results, valid while the sublist's generation holds:
/// the hot publish path then needs no lock at all.
struct MatchCache {
    private var generation: UInt64 = .max
    /// Only results the sublist admitted to its shared cache (`Sublist.matchAdmitting`: a
    /// subject's second miss), so subjects used once do not churn this memo either.
    private var entries: [String: SublistResult] = [:]
    private let limit = 256

    mutating func result(for subject: String, in sublist: Sublist) -> SublistResult {
        // Read the generation before matching: a change racing with us leaves the stored
        // generation behind, so the next lookup discards what we cached now.
        let g = sublist.generation
        if g != generation {
            entries.removeAll(keepingCapacity: true)
            generation = g
        }
        if let hit = entries[subject] { return hit }
        let (result, cached) = sublist.matchAdmitting(subject)
        guard cached else { return result }
        if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
        entries[subject] = result
        return result
    }

    /// Whether `subject` is cached here (tests).
    func holds(_ subject: String) -> Bool { entries[subject] != nil }
}

/// SplitMix64: a tiny fast generator for picking queue-group members (not for secrets).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Fan-out of one message to the subscriptions of a match result: every plain subscription,
/// and one member of each queue group (weighted random start, skipping members that refuse).
///
/// Remote interest (subscriptions owned by a route) is collected per route, so a message
/// crosses each route at most once however many remote subscriptions match; the route is
/// told which queue groups it was picked for. A message that came from a route goes to local
/// subscriptions only, and to queue groups only when the sender named them.
enum Fanout {
    /// Returns how many subscriptions accepted the message (a route counts once for its plain
    /// interest plus once per queue group it was picked for).
    @inline(__always)
    static func deliver(_ message: RoutedMessage, to result: SublistResult, skipOwner: UInt64?,
                        rng: inout SplitMix64, queueFilter: [String] = []) -> Int {
        var delivered = 0
        var targets = RouteTargets()
        let fromRoute = message.fromRoute
        for sub in result.plain {
            if let route = sub.route {
                if !fromRoute { targets.addPlain(route) }
                continue
            }
            if fromRoute && !sub.propagates { continue }
            if let skip = skipOwner, sub.ownerID == skip { continue }
            if sub.sink.deliver(message, to: sub) { delivered += 1 }
        }
        for group in result.queues {
            if fromRoute, let name = group.first?.queue, !queueFilter.contains(name) { continue }
            if !fromRoute && deliverLocalFirst(message, group, skipOwner: skipOwner) {
                delivered += 1
                continue
            }
            let n = group.count
            var total = 0
            for sub in group { total += sub.weight }
            // Weighted pick of the first candidate: a remote entry stands for its node's members.
            var r = Int(rng.next() % UInt64(max(total, 1)))
            var start = 0
            while start < n - 1 && r >= group[start].weight {
                r -= group[start].weight
                start += 1
            }
            for k in 0..<n {
                let sub = group[(start + k) % n]
                if let route = sub.route {
                    if fromRoute || route.isClosed { continue }
                    targets.addQueue(route, sub.queue!)
                    delivered += 1
                    break
                }
                if fromRoute && !sub.propagates { continue }
                if let skip = skipOwner, sub.ownerID == skip { continue }
                if sub.sink.deliver(message, to: sub) {
                    delivered += 1
                    break
                }
            }
        }
        if !targets.isEmpty { delivered += targets.send(message) }
        return delivered
    }

    /// Offers the message to the group's local members that prefer local delivery; true when
    /// one took it. Plain queue groups have none and go straight to the weighted pick.
    @inline(__always)
    private static func deliverLocalFirst(_ message: RoutedMessage, _ group: [Subscription], skipOwner: UInt64?) -> Bool {
        for sub in group where sub.prefersLocal && sub.route == nil && sub.ownerID != skipOwner {
            if sub.sink.deliver(message, to: sub) { return true }
        }
        return false
    }
}

/// The routes one message goes to, each with the queue groups it was picked for. Almost
/// always zero to a handful of routes: a linear array beats a dictionary.
struct RouteTargets {
    private var routes: [(route: RouteConnection, plain: Bool, queues: [String])] = []

    var isEmpty: Bool { routes.isEmpty }

    mutating func addPlain(_ route: RouteConnection) {
        if let i = routes.firstIndex(where: { $0.route === route }) {
            routes[i].plain = true
        } else {
            routes.append((route, true, []))
        }
    }

    mutating func addQueue(_ route: RouteConnection, _ queue: String) {
        if let i = routes.firstIndex(where: { $0.route === route }) {
            if !routes[i].queues.contains(queue) { routes[i].queues.append(queue) }
        } else {
            routes.append((route, false, [queue]))
        }
    }

    /// Forwards once per route; returns the plain deliveries counted (queue picks were counted
    /// when made).
    func send(_ message: RoutedMessage) -> Int {
        var plainAccepted = 0
        for t in routes where t.route.forward(message, queues: t.queues) && t.plain {
            plainAccepted += 1
        }
        return plainAccepted
    }
}
