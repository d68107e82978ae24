import Foundation
import XCTest
@testable import ClusterServer

/// A sink that records deliveries, for index tests.
final class RecordingSink: MessageSink, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var received: [String] = []
    func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool {
        lock.lock(); defer { lock.unlock() }
        received.append(message.subject)
        return true
    }
}

final class SublistTests: XCTestCase {
    private let sink = RecordingSink()

    private func sub(_ subject: String, queue: String? = nil, sid: String = "1") -> Subscription {
        Subscription(subject: subject, queue: queue, sid: sid, sink: sink, ownerID: 1)
    }

    func test_match_literalAndWildcards() {
        let list = Sublist()
        let a = sub("foo.bar"), b = sub("foo.*"), c = sub("foo.>"), d = sub(">"), e = sub("bar.*")
        for s in [a, b, c, d, e] { list.insert(s) }
        let r = list.match("foo.bar")
        XCTAssertEqual(Set(r.plain.map { ObjectIdentifier($0) }), Set([a, b, c, d].map { ObjectIdentifier($0) }))
        XCTAssertEqual(list.match("foo.bar.baz").plain.count, 2) // foo.> and >
        XCTAssertEqual(list.match("baz").plain.count, 1)
    }

    func test_match_queueGroupsAreGroupedByName() {
        let list = Sublist()
        list.insert(sub("q", queue: "w")); list.insert(sub("q", queue: "w")); list.insert(sub("q.>", queue: "x"))
        list.insert(sub("q"))
        let r = list.match("q")
        XCTAssertEqual(r.plain.count, 1)
        XCTAssertEqual(r.queues.count, 1)
        XCTAssertEqual(r.queues[0].count, 2)
    }

    func test_remove_dropsFromResultsAndInvalidatesCache() {
        let list = Sublist()
        let a = sub("foo.*")
        list.insert(a)
        XCTAssertEqual(list.match("foo.x").plain.count, 1)
        let g = list.generation
        XCTAssertTrue(list.remove(a))
        XCTAssertNotEqual(list.generation, g)
        XCTAssertEqual(list.match("foo.x").plain.count, 0)
        XCTAssertFalse(list.remove(a))
        XCTAssertEqual(list.count, 0)
    }

    func test_insert_wildcardInvalidatesCachedLiteralMatches() {
        let list = Sublist()
        XCTAssertTrue(list.match("a.b").isEmpty)
        list.insert(sub("a.>"))
        XCTAssertEqual(list.match("a.b").plain.count, 1)
    }

    /// The shared cache's own admission (every caller of `match` gets it): a subject is cached on
    /// its second miss, not its first; a subscription change in between still invalidates.
    func test_match_cachesASubjectOnItsSecondMissOnly() {
        let list = Sublist()
        list.insert(sub("_INBOX.>"))
        for i in 0..<500 {
            let (r, cached) = list.matchAdmitting("_INBOX.once.\(i)")
            XCTAssertEqual(r.plain.count, 1)
            XCTAssertFalse(cached)
        }
        XCTAssertEqual(list.cacheCount, 0, "subjects matched once are not cached")
        XCTAssertFalse(list.matchAdmitting("_INBOX.pull").cached)
        XCTAssertTrue(list.matchAdmitting("_INBOX.pull").cached, "the second miss caches")
        XCTAssertTrue(list.matchAdmitting("_INBOX.pull").cached, "then it is a hit")
        XCTAssertEqual(list.cacheCount, 1)
        let late = sub("_INBOX.pull", sid: "9")
        list.insert(late)
        XCTAssertEqual(list.match("_INBOX.pull").plain.count, 2, "an insert invalidates the cached result")
    }

    func test_matchCache_dropsEntriesWhenGenerationMoves() {
        let list = Sublist()
        var cache = MatchCache()
        XCTAssertTrue(cache.result(for: "x", in: list).isEmpty)
        list.insert(sub("x"))
        XCTAssertEqual(cache.result(for: "x", in: list).plain.count, 1)
    }

    func test_matchCache_cachesASubjectOnItsSecondMissOnly() {
        let list = Sublist()
        let orders = sub("orders.new", sid: "2")
        list.insert(sub("_INBOX.>"))
        list.insert(orders)
        var cache = MatchCache()
        for i in 0..<1000 {
            XCTAssertEqual(cache.result(for: "_INBOX.r.\(i)", in: list).plain.count, 1)
        }
        XCTAssertEqual(list.cacheCount, 0, "subjects seen once are matched without caching")
        XCTAssertFalse(cache.holds("_INBOX.r.999"))
        XCTAssertEqual(cache.result(for: "orders.new", in: list).plain.count, 1)
        XCTAssertFalse(cache.holds("orders.new"))
        XCTAssertEqual(cache.result(for: "orders.new", in: list).plain.count, 1)
        XCTAssertTrue(cache.holds("orders.new"), "a subject used again is cached")
        XCTAssertEqual(list.cacheCount, 1)
        XCTAssertTrue(list.remove(orders))
        XCTAssertTrue(cache.result(for: "orders.new", in: list).plain.isEmpty, "a change still invalidates")
    }

    func test_manySubscriptions_matchAndRemoveAll() {
        let list = Sublist()
        var subs: [Subscription] = []
        for i in 0..<100_000 {
            let s = sub("svc.\(i % 1000).item.\(i)", sid: String(i))
            subs.append(s)
            list.insert(s)
        }
        XCTAssertEqual(list.count, 100_000)
        XCTAssertEqual(list.match("svc.7.item.7007").plain.count, 1)
        XCTAssertTrue(list.match("svc.7.item.8").isEmpty)
        for s in subs { XCTAssertTrue(list.remove(s)) }
        XCTAssertEqual(list.count, 0)
        XCTAssertTrue(list.all().isEmpty)
    }

    func test_concurrentSubscribeUnsubscribeAndMatch_keepsIndexConsistent() {
        let list = Sublist(cacheLimit: 64)
        let stable = sub("stable.>")
        list.insert(stable)
        let threads = 4
        let perThread = 2000
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var rng = SplitMix64(seed: UInt64(t + 1))
            var mine: [Subscription] = []
            for i in 0..<perThread {
                let s = Subscription(subject: "stable.\(t).\(rng.next() % 8)", queue: i % 3 == 0 ? "q" : nil,
                                     sid: "\(t)-\(i)", sink: sink, ownerID: UInt64(t))
                list.insert(s)
                mine.append(s)
                // The stable subscription must be visible in every match, whatever else changes.
                let r = list.match("stable.\(t).\(rng.next() % 8)")
                XCTAssertTrue(r.plain.contains { $0 === stable })
                if i % 2 == 1 { XCTAssertTrue(list.remove(mine.removeFirst())) }
            }
            for s in mine { XCTAssertTrue(list.remove(s)) }
        }
        XCTAssertEqual(list.count, 1)
        XCTAssertEqual(list.match("stable.0.1").plain.count, 1)
    }
}

final class SublistUncachedTests: XCTestCase {
    func test_matchUncached_sameResultsAsMatch_andLeavesCacheAlone() {
        let sink = RecordingSink()
        let list = Sublist()
        for (s, q) in [("a.*", nil), ("a.>", nil), ("a.b", "w"), ("a.b", "w"), ("x", nil)] as [(String, String?)] {
            list.insert(Subscription(subject: s, queue: q, sid: s, sink: sink, ownerID: 1))
        }
        for subject in ["a.b", "a.c.d", "x", "y", "a..b"] {
            let u = list.matchUncached(subject)
            let m = list.match(subject)
            XCTAssertEqual(Set(u.plain.map { ObjectIdentifier($0) }), Set(m.plain.map { ObjectIdentifier($0) }), subject)
            XCTAssertEqual(u.queues.map(\.count), m.queues.map(\.count), subject)
        }
        let before = list.cacheCount
        _ = list.matchUncached("_INBOX.unique.1")
        XCTAssertEqual(list.cacheCount, before)
    }
    private func hits(_ list: Sublist) -> Int {
        let st = list.stats
        return Int((st.cacheHitRate * Double(st.matches)).rounded())
    }

    func test_matchUncached_reusesAStemOnlyWhileItsLastTokenCannotMatter() {
        let sink = RecordingSink()
        let list = Sublist()
        var subs: [String: Subscription] = [:]
        for (sid, s) in [("1", "_INBOX.a.*"), ("2", "_INBOX.b.*"), ("3", "_INBOX.b.x"), ("4", "_INBOX.>")] {
            subs[sid] = Subscription(subject: s, queue: nil, sid: sid, sink: sink, ownerID: 1)
            list.insert(subs[sid]!)
        }
        func sids(_ subject: String) -> [String] { list.matchUncached(subject).plain.map(\.sid).sorted() }
        XCTAssertEqual(sids("_INBOX.a.1"), ["1", "4"])
        var h = hits(list)
        XCTAssertEqual(sids("_INBOX.a.2"), ["1", "4"])
        XCTAssertEqual(hits(list), h + 1, "same stem, no literal at the last level: reused")
        h = hits(list)
        XCTAssertEqual(sids("_INBOX.b.y"), ["2", "4"])
        XCTAssertEqual(sids("_INBOX.b.x"), ["2", "3", "4"], "a literal last token is never answered from the stem")
        XCTAssertEqual(sids("_INBOX.b.z"), ["2", "4"])
        XCTAssertEqual(hits(list), h, "a stem with a literal at its last level is not kept")
        list.insert(Subscription(subject: "_INBOX.a.9", queue: nil, sid: "5", sink: sink, ownerID: 1))
        XCTAssertEqual(sids("_INBOX.a.9"), ["1", "4", "5"], "a new subscription invalidates the stem")
        XCTAssertEqual(sids("_INBOX.a.3"), ["1", "4"])
        list.remove(subs["1"]!)
        list.remove(subs["4"]!)
        XCTAssertEqual(sids("_INBOX.c.1"), [])
        XCTAssertEqual(sids("_INBOX.c.2"), [])
        XCTAssertEqual(sids("_INBOX.a.4"), [], "a removed subscription is not answered from the stem")
        XCTAssertEqual(sids("_INBOX.a."), [], "an empty last token is not a subject")
        XCTAssertEqual(sids("_INBOX..1"), [])
    }

    func test_matchUncached_agreesWithAPlainScan_underRandomChurn() {
        assertMatchesAgreeWithAPlainScan(seed: 0x5eed_57e5, steps: 3_000, insertOneIn: 4, removeOneIn: 5, maxSubscriptionTokens: 3,
                                         subject: { rng in
                                             let n = Int(rng.next() % 3) + 1
                                             return (0..<n).map { _ in ["a", "b", "c", "d"][Int(rng.next() % 4)] }
                                         }, match: { $0.matchUncached($1) })
    }

    /// `match` answers subjects from the leading tokens its walk read (`Sublist.prefixes`): under
    /// churn of literal, `*` and `>` subscriptions at every depth, with many subjects sharing
    /// leading tokens and differing later (as ack subjects do), every answer equals a plain scan.
    func test_match_agreesWithAPlainScan_underRandomChurn_withSharedLeadingTokens() {
        assertMatchesAgreeWithAPlainScan(seed: 0xac4_5eed, steps: 6_000, insertOneIn: 6, removeOneIn: 7, maxSubscriptionTokens: 5,
                                         subject: { rng in
                                             let n = Int(rng.next() % 6) + 1
                                             var parts = (0..<n).map { i in i < 2 ? ["a", "b", "c"][Int(rng.next() % 3)] : "\(rng.next() % 1000)" }
                                             if rng.next() % 50 == 0 { parts[Int(rng.next() % UInt64(n))] = "" } // not a subject
                                             return parts
                                         }, match: { $0.match($1) })
    }

    /// Inserts (one step in `insertOneIn`) and removes (one in `removeOneIn` of the others)
    /// random subscriptions of literal, `*` and `>` tokens, and checks `match` of a random
    /// subject (its tokens from `subject`) at every step against a plain scan of the live ones.
    private func assertMatchesAgreeWithAPlainScan(seed: UInt64, steps: Int, insertOneIn: UInt64, removeOneIn: UInt64,
                                                  maxSubscriptionTokens: UInt64, subject: (inout SplitMix64) -> [String],
                                                  match: (Sublist, String) -> SublistResult) {
        var rng = SplitMix64(seed: seed)
        let tokens = ["a", "b", "c", "*", ">"]
        let sink = RecordingSink()
        let list = Sublist()
        var live: [Subscription] = []
        for step in 0..<steps {
            if rng.next() % insertOneIn == 0 || live.isEmpty {
                let n = Int(rng.next() % maxSubscriptionTokens) + 1
                var parts = (0..<n).map { _ in tokens[Int(rng.next() % UInt64(tokens.count))] }
                if let i = parts.firstIndex(of: ">") { parts = Array(parts[...i]) }
                let sub = Subscription(subject: parts.joined(separator: "."), queue: nil, sid: "\(step)", sink: sink, ownerID: 1)
                list.insert(sub)
                live.append(sub)
            } else if rng.next() % removeOneIn == 0 {
                list.remove(live.remove(at: Int(rng.next() % UInt64(live.count))))
            }
            let parts = subject(&rng)
            let s = parts.joined(separator: ".")
            let want = parts.contains("") ? [] : live.filter { Subject.matches(pattern: $0.subject, subject: s) }.map(\.sid).sorted()
            XCTAssertEqual(match(list, s).plain.map(\.sid).sorted(), want, "step \(step): \(s)")
        }
    }

    func test_match_uniqueSubjectsUnderAWildcard_stayExact_asSubscriptionsChange() {
        let sink = RecordingSink()
        let list = Sublist()
        let acks = Subscription(subject: "$JS.ACK.S.>", queue: nil, sid: "acks", sink: sink, ownerID: 1)
        list.insert(acks)
        func sids(_ subject: String) -> [String] { list.match(subject).plain.map(\.sid).sorted() }
        for seq in 1...20 { XCTAssertEqual(sids("$JS.ACK.S.C.1.\(seq).\(seq).0.0"), ["acks"]) }
        XCTAssertEqual(sids("$JS.ACK.S"), [], "`>` needs a token more: the count is part of the key")
        XCTAssertEqual(sids("$JS.ACK.T.C.1.1.1.0.0"), [])
        let one = Subscription(subject: "$JS.ACK.S.C.1.7.*.0.0", queue: nil, sid: "one", sink: sink, ownerID: 1)
        list.insert(one)
        XCTAssertEqual(sids("$JS.ACK.S.C.1.7.7.0.0"), ["acks", "one"], "a new literal deeper down is seen at once")
        XCTAssertEqual(sids("$JS.ACK.S.C.1.8.8.0.0"), ["acks"])
        XCTAssertEqual(sids("$JS.ACK.S.C.1.7.7.0"), ["acks"])
        list.remove(acks)
        XCTAssertEqual(sids("$JS.ACK.S.C.1.9.9.0.0"), [])
        XCTAssertEqual(sids("$JS.ACK.S.C.1.7.9.0.0"), ["one"])
        XCTAssertEqual(sids("$JS.ACK.S.C..7.9.0.0"), [], "an empty token is not a subject")
    }

    func test_tokenCount_refusesEmptyTokens() {
        XCTAssertEqual(Sublist.tokenCount("a.b.c"), 3)
        XCTAssertEqual(Sublist.tokenCount("a"), 1)
        for bad in ["", ".", "a.", ".a", "a..b"] { XCTAssertNil(Sublist.tokenCount(bad), bad) }
    }

    func test_tokens_splitAtEveryDotByte() {
        XCTAssertEqual(Sublist.tokens("a.b.c"), ["a", "b", "c"])
        XCTAssertEqual(Sublist.tokens("single"), ["single"])
        XCTAssertEqual(Sublist.tokens(""), [""])
        XCTAssertEqual(Sublist.tokens("a..b"), ["a", "", "b"])
        XCTAssertEqual(Sublist.tokens(".a."), ["", "a", ""])
        XCTAssertEqual(Sublist.tokens("_INBOX.Zw8cCrUWhTKbUVbSXnLF2x.1234"), ["_INBOX", "Zw8cCrUWhTKbUVbSXnLF2x", "1234"])
        XCTAssertEqual(Sublist.tokens("ü.日本.x"), ["ü", "日本", "x"])
        // A combining mark after the dot forms one Character with it, but the dot byte still splits.
        XCTAssertEqual(Sublist.tokens("a.\u{301}b"), ["a", "\u{301}b"])
    }

    func test_match_unicodeAndLongTokens() {
        let list = Sublist()
        let sink = RecordingSink()
        list.insert(Subscription(subject: "_INBOX.Zw8cCrUWhTKbUVbSXnLF2x.*", queue: nil, sid: "1", sink: sink, ownerID: 1))
        list.insert(Subscription(subject: "ü.日本", queue: nil, sid: "2", sink: sink, ownerID: 1))
        XCTAssertEqual(list.matchUncached("_INBOX.Zw8cCrUWhTKbUVbSXnLF2x.77").plain.map(\.sid), ["1"])
        XCTAssertTrue(list.matchUncached("_INBOX.Zw8cCrUWhTKbUVbSXnLF2y.77").isEmpty)
        XCTAssertEqual(list.matchUncached("ü.日本").plain.map(\.sid), ["2"])
        XCTAssertTrue(list.matchUncached("ü..日本").isEmpty)
    }
}
