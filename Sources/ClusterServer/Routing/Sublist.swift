import Atomics
import NIOConcurrencyHelpers

/// Told after every insert/remove of a subscription that `propagates` (the route manager
/// turns these into RS+/RS- for the other nodes). Called outside the sublist's lock.
protocol SublistObserver: AnyObject {
    func sublistDidInsert(_ sub: Subscription, account: String)
    func sublistDidRemove(_ sub: Subscription, account: String)
}

/// The subscription index: a trie over subject tokens with `*` and `>` branches (the shape
/// of nats-server's sublist), plus a bounded cache of match results.
///
/// Thread-safe. `generation` changes on every insert/remove so callers can keep lock-free
/// per-connection caches and drop them when it moves.
public final class Sublist: @unchecked Sendable {
    private final class Node {
        var next: Level?
        var plain: [ObjectIdentifier: Subscription] = [:]
        var queues: [String: [ObjectIdentifier: Subscription]] = [:]
        var isEmpty: Bool { plain.isEmpty && queues.isEmpty && (next?.isEmpty ?? true) }
    }

    private final class Level {
        var literal: [String: Node] = [:]
        var star: Node?
        var full: Node?
        var isEmpty: Bool { literal.isEmpty && star == nil && full == nil }
    }

    private let lock = ReadWriteLock()
    /// Set once before the server starts; nil on a node without routes.
    weak var observer: SublistObserver?
    private let root = Level()
    private var cache: [String: SublistResult] = [:]
    /// Guards `seenOnce` and the fan-out statistics: a miss of a subject never seen before
    /// (every ack subject on consume) takes only this, not the trie's write lock, so it does
    /// not stall matches on other event loops.
    private let admission = NIOLock()
    /// Results of trie walks by the leading tokens the walk read (`walk`'s `depth`) and the
    /// subject's token count: every subject with those first tokens and that count matches the
    /// same subscriptions. Unique subjects under a wildcard subscription (each ack,
    /// `$JS.ACK.<stream>.<consumer>.…` under `$JS.ACK.<stream>.>`; each PubAck's reply subject
    /// `_INBOX.<id>.<n>` under `_INBOX.<id>.*`) find their result here instead of being split
    /// into tokens and walked. Valid while the generation they were taken at holds.
    private var prefixes: [PrefixKey: (generation: UInt64, result: SublistResult)] = [:]
    /// The depths `prefixes` holds entries for (a lookup tries each).
    private var prefixDepths: [Int] = []
    private static let prefixLimit = 1024
    private static let prefixDepthLimit = 4

    private struct PrefixKey: Hashable {
        var prefix: Substring
        var count: Int
    }
    /// Hashes of subjects that missed once since the last reset (`matchAdmitting`).
    private var seenOnce: Set<Int> = []
    private let cacheLimit: Int
    private var subscriptionCount = 0
    private let generationCounter = ManagedAtomic<UInt64>(0)
    // Statistics for /subsz. Matches served from per-connection caches are not counted.
    private var inserts = 0
    private var removes = 0
    private let matches = ManagedAtomic<Int>(0)
    private let cacheHits = ManagedAtomic<Int>(0)
    private var maxFanout = 0
    private var fanoutSum = 0
    private var fanoutSamples = 0

    /// Counters in /subsz's shape.
    public struct Stats {
        public var inserts: Int
        public var removes: Int
        public var matches: Int
        public var cacheHitRate: Double
        public var maxFanout: Int
        public var averageFanout: Double
    }

    public var stats: Stats {
        let m = matches.load(ordering: .relaxed)
        let h = cacheHits.load(ordering: .relaxed)
        let (ins, rem) = lock.withReadLock { (inserts, removes) }
        return admission.withLock {
            Stats(inserts: ins, removes: rem, matches: m, cacheHitRate: m > 0 ? Double(h) / Double(m) : 0,
                  maxFanout: maxFanout, averageFanout: fanoutSamples > 0 ? Double(fanoutSum) / Double(fanoutSamples) : 0)
        }
    }

    /// The account whose subject namespace this is (named in RS+/RS- to other nodes).
    public let accountName: String

    /// - Parameter cacheLimit: match results kept; the cache is cleared when it fills.
    public init(cacheLimit: Int = 4096, account: String = globalAccountName) {
        precondition(cacheLimit > 0)
        self.cacheLimit = cacheLimit
        self.accountName = account
    }

    /// Moves on every change; a cached result taken at generation g is valid while it stays g.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    public var count: Int { lock.withReadLock { subscriptionCount } }

    public var cacheCount: Int { lock.withReadLock { cache.count } }

    /// Adds `sub`. Its subject must be a valid subscription subject.
    public func insert(_ sub: Subscription) {
        let tokens = Self.tokens(sub.subject)
        precondition(!tokens.isEmpty, "insert of an empty subject")
        lock.withWriteLock {
            var level = root
            var node: Node! = nil
            for (i, token) in tokens.enumerated() {
                switch token {
                case "*":
                    if level.star == nil { level.star = Node() }
                    node = level.star
                case ">":
                    if level.full == nil { level.full = Node() }
                    node = level.full
                default:
                    if let n = level.literal[token] { node = n } else {
                        node = Node()
                        level.literal[token] = node
                    }
                }
                if i < tokens.count - 1 {
                    if node.next == nil { node.next = Level() }
                    level = node.next!
                }
            }
            let key = ObjectIdentifier(sub)
            if let q = sub.queue {
                node.queues[q, default: [:]][key] = sub
            } else {
                node.plain[key] = sub
            }
            subscriptionCount += 1
            inserts += 1
            invalidateCache(for: sub.subject)
            generationCounter.wrappingIncrement(ordering: .releasing)
        }
        if sub.propagates, let o = observer { o.sublistDidInsert(sub, account: accountName) }
    }

    /// Stops announcing `sub` to the other nodes, as its removal would, while it stays here and
    /// keeps receiving what still reaches this node (messages peers routed before they heard);
    /// a later `remove` does not announce it again. For a stopping node's JetStream ingest.
    public func withdrawInterest(_ sub: Subscription) {
        let first: Bool = lock.withWriteLock {
            guard sub.propagates, !sub.interestWithdrawn else { return false }
            sub.interestWithdrawn = true
            return true
        }
        if first, let o = observer { o.sublistDidRemove(sub, account: accountName) }
    }

    /// Removes `sub`; returns false when it was not present.
    @discardableResult
    public func remove(_ sub: Subscription) -> Bool {
        let tokens = Self.tokens(sub.subject)
        var announce = false
        let removed: Bool = lock.withWriteLock {
            announce = sub.propagates && !sub.interestWithdrawn
            var path: [(Level, String)] = []
            var level = root
            var node: Node?
            for (i, token) in tokens.enumerated() {
                switch token {
                case "*": node = level.star
                case ">": node = level.full
                default: node = level.literal[token]
                }
                guard let n = node else { return false }
                path.append((level, token))
                if i < tokens.count - 1 {
                    guard let next = n.next else { return false }
                    level = next
                }
            }
            guard let n = node else { return false }
            let key = ObjectIdentifier(sub)
            if let q = sub.queue {
                guard n.queues[q]?.removeValue(forKey: key) != nil else { return false }
                if n.queues[q]?.isEmpty == true { n.queues[q] = nil }
            } else {
                guard n.plain.removeValue(forKey: key) != nil else { return false }
            }
            subscriptionCount -= 1
            removes += 1
            prune(path)
            invalidateCache(for: sub.subject)
            generationCounter.wrappingIncrement(ordering: .releasing)
            return true
        }
        if removed, announce, let o = observer { o.sublistDidRemove(sub, account: accountName) }
        return removed
    }

    /// The subscriptions interested in the literal `subject`.
    public func match(_ subject: String) -> SublistResult { matchAdmitting(subject).result }

    /// `match`, and whether the result is in the shared cache now (a per-connection cache keeps
    /// only those, `MatchCache`). A subject enters the cache on its second miss: subjects used
    /// once (ack subjects, reply inboxes) then cost one trie walk instead of a cache insert and
    /// the wholesale clears a full cache needs, and do not push hot subjects out; a target that
    /// repeats (a pull request's inbox, a push consumer's deliver subject) is cached from its
    /// second message on. Every caller gets this admission, so none has to say which kind of
    /// subject it passes.
    public func matchAdmitting(_ subject: String) -> (result: SublistResult, cached: Bool) {
        matches.wrappingIncrement(ordering: .relaxed)
        if let hit = lock.withReadLock({ cache[subject] }) {
            cacheHits.wrappingIncrement(ordering: .relaxed)
            return (hit, true)
        }
        // A subject with an empty token (`a..b`, `.a`) is not a subject: nothing matches it.
        guard let count = Self.tokenCount(subject) else { return (.empty, false) }
        let (result, seenGeneration, _) = walkOrPrefix(subject, count: count)
        let admitted: Bool = admission.withLock {
            let fanout = result.plain.count + result.queues.count
            maxFanout = max(maxFanout, fanout)
            fanoutSum += fanout
            fanoutSamples += 1
            if seenOnce.count >= 4 * cacheLimit { seenOnce.removeAll(keepingCapacity: true) }
            return !seenOnce.insert(subject.hashValue).inserted
        }
        guard admitted else { return (result, false) }
        let cached: Bool = lock.withWriteLock {
            guard generationCounter.load(ordering: .relaxed) == seenGeneration else { return false }
            // Clearing wholesale is far cheaper than evicting key by key; hot subjects are
            // still in `seenOnce`, so they are re-cached on their next miss.
            if cache.count >= cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[subject] = result
            return true
        }
        return (result, cached)
    }

    /// Matches without touching the shared cache or its admission: for server-originated
    /// publishes (PubAcks, API replies), whose reply subjects are unique by construction, so
    /// even remembering them once (`matchAdmitting`) is work for nothing on the hottest path.
    /// Such subjects usually differ only in their last token under one wildcard subscription
    /// (`_INBOX.<id>.*`), so most are answered by `prefixes`.
    public func matchUncached(_ subject: String) -> SublistResult {
        matches.wrappingIncrement(ordering: .relaxed)
        guard let count = Self.tokenCount(subject) else { return .empty }
        let (result, _, fromPrefix) = walkOrPrefix(subject, count: count)
        if fromPrefix { cacheHits.wrappingIncrement(ordering: .relaxed) }
        return result
    }

    /// The subscriptions matching `subject` (`count` tokens, none empty) from `prefixes`, else
    /// by a trie walk whose result is kept there when it did not read every token; with the
    /// generation it holds for.
    private func walkOrPrefix(_ subject: String, count: Int) -> (SublistResult, UInt64, fromPrefix: Bool) {
        if let (result, generation) = prefixMatch(subject, count: count) { return (result, generation, true) }
        // Walk the trie under the read lock (matches run in parallel); a result is kept only if
        // no subscription changed meanwhile, so a stale result is never kept.
        let tokens = Self.tokens(subject)
        var depth = 0
        let (result, generation) = lock.withReadLock {
            (walk(tokens, depth: &depth), generationCounter.load(ordering: .relaxed))
        }
        if depth < count { keepPrefix(subject, depth: depth, count: count, result: result, generation: generation) }
        return (result, generation, false)
    }

    /// The number of tokens of `subject`, nil when one is empty (`a..b`, `.a`, `a.`, ``).
    static func tokenCount(_ subject: String) -> Int? {
        var count = 1
        var tokenEmpty = true
        for b in subject.utf8 {
            if b == UInt8(ascii: ".") {
                if tokenEmpty { return nil }
                count += 1
                tokenEmpty = true
            } else {
                tokenEmpty = false
            }
        }
        return tokenEmpty ? nil : count
    }

    /// The first `depth` tokens of `subject` (with no trailing `.`).
    private static func leadingTokens(_ subject: String, _ depth: Int) -> Substring {
        var dots = 0
        let bytes = subject.utf8
        var i = bytes.startIndex
        while i != bytes.endIndex {
            if bytes[i] == UInt8(ascii: ".") {
                dots += 1
                if dots == depth { return subject[..<i] }
            }
            bytes.formIndex(after: &i)
        }
        return subject[...]
    }

    /// A result `prefixes` holds for `subject` (`count` tokens), with its generation.
    private func prefixMatch(_ subject: String, count: Int) -> (SublistResult, UInt64)? {
        lock.withReadLock {
            let generation = generationCounter.load(ordering: .relaxed)
            for depth in prefixDepths where depth < count {
                if let e = prefixes[PrefixKey(prefix: Self.leadingTokens(subject, depth), count: count)], e.generation == generation {
                    return (e.result, generation)
                }
            }
            return nil
        }
    }

    private func keepPrefix(_ subject: String, depth: Int, count: Int, result: SublistResult, generation: UInt64) {
        lock.withWriteLock {
            guard generationCounter.load(ordering: .relaxed) == generation else { return }
            if prefixes.count >= Self.prefixLimit || (!prefixDepths.contains(depth) && prefixDepths.count >= Self.prefixDepthLimit) {
                prefixes.removeAll(keepingCapacity: true)
                prefixDepths.removeAll()
            }
            if !prefixDepths.contains(depth) { prefixDepths.append(depth) }
            prefixes[PrefixKey(prefix: Self.leadingTokens(subject, depth), count: count)] = (generation, result)
        }
    }

    /// The trie walk (caller holds the lock). `depth` becomes the number of leading tokens the
    /// result depends on: past it, no level the walk visited had a literal token to compare
    /// (`*` and `>` match any token; the token count still matters, and is part of the key).
    private func walk(_ tokens: [String], depth: inout Int) -> SublistResult {
        var plain: [Subscription] = []
        var queues: [String: [Subscription]] = [:]
        Self.collect(level: root, tokens: tokens[...], plain: &plain, queues: &queues, depth: &depth)
        return plain.isEmpty && queues.isEmpty
            ? SublistResult.empty
            : SublistResult(plain: plain, queues: queues.keys.sorted().map { queues[$0]! })
    }

    /// Every subscription, for monitoring (`/subsz?subs=1`).
    public func all() -> [Subscription] {
        lock.withReadLock {
            var out: [Subscription] = []
            Self.gather(root, into: &out)
            return out
        }
    }

    // MARK: - internals (callers hold the lock)

    /// The subject's tokens, split at every `.` byte (as nats-server and `Subject` validation
    /// do). A byte scan: splitting by `Character` walks grapheme clusters, and this runs for every
    /// PubAck and API reply (`matchUncached`).
    static func tokens(_ subject: String) -> [String] {
        var out: [String] = []
        out.reserveCapacity(8)
        let bytes = subject.utf8
        var start = bytes.startIndex
        var i = start
        while i != bytes.endIndex {
            if bytes[i] == UInt8(ascii: ".") {
                out.append(String(decoding: bytes[start..<i], as: UTF8.self))
                start = bytes.index(after: i)
            }
            bytes.formIndex(after: &i)
        }
        out.append(String(decoding: bytes[start..<bytes.endIndex], as: UTF8.self))
        return out
    }

    private static func collect(level: Level, tokens: ArraySlice<String>, plain: inout [Subscription],
                                queues: inout [String: [Subscription]], depth: inout Int) {
        guard let token = tokens.first else { return }
        let rest = tokens.dropFirst()
        if !level.literal.isEmpty {
            // The token is compared here (a slice keeps its indices: this is its position).
            depth = max(depth, tokens.startIndex + 1)
        }
        if let full = level.full { add(full, &plain, &queues) }
        if let star = level.star { descend(star, rest, &plain, &queues, &depth) }
        if let lit = level.literal[token] { descend(lit, rest, &plain, &queues, &depth) }
    }

    private static func descend(_ node: Node, _ rest: ArraySlice<String>, _ plain: inout [Subscription],
                                _ queues: inout [String: [Subscription]], _ depth: inout Int) {
        if rest.isEmpty {
            add(node, &plain, &queues)
        } else if let next = node.next {
            collect(level: next, tokens: rest, plain: &plain, queues: &queues, depth: &depth)
        }
    }

    private static func add(_ node: Node, _ plain: inout [Subscription], _ queues: inout [String: [Subscription]]) {
        plain.append(contentsOf: node.plain.values)
        for (q, members) in node.queues { queues[q, default: []].append(contentsOf: members.values) }
    }

    private static func gather(_ level: Level, into out: inout [Subscription]) {
        var nodes = Array(level.literal.values)
        if let s = level.star { nodes.append(s) }
        if let f = level.full { nodes.append(f) }
        for n in nodes {
            out.append(contentsOf: n.plain.values)
            for members in n.queues.values { out.append(contentsOf: members.values) }
            if let next = n.next { gather(next, into: &out) }
        }
    }

    private func prune(_ path: [(Level, String)]) {
        for (level, token) in path.reversed() {
            let node: Node?
            switch token {
            case "*": node = level.star
            case ">": node = level.full
            default: node = level.literal[token]
            }
            guard let n = node, n.isEmpty else { return }
            switch token {
            case "*": level.star = nil
            case ">": level.full = nil
            default: level.literal[token] = nil
            }
        }
    }

    private func invalidateCache(for subject: String) {
        if cache.isEmpty { return }
        if !Subject.hasWildcard(subject) {
            cache[subject] = nil
            return
        }
        for key in cache.keys where Subject.matches(pattern: subject, subject: key) {
            cache[key] = nil
        }
    }
}
