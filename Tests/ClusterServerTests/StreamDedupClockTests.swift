import Foundation
import XCTest
@testable import ClusterServer

/// Duplicate windows across wall-clock jumps, as replicas apply them: a leader (injected wall
/// and monotonic clocks) stamps entries with `DedupClock`, two replicas apply them (one publish
/// at a time, and batched), and one is reopened from its files. A retried publish must be
/// answered as a duplicate on every replica however the leader's wall clock jumped, and only
/// real elapsed time may end the window.
final class StreamDedupClockTests: XCTestCase {
    private var fixture: StreamTestFixture!
    private let s: Int64 = 1_000_000_000
    private let base: Int64 = 1_800_000_000_000_000_000

    override func setUp() {
        fixture = StreamTestFixture(prefix: "dedup-clock")
    }

    override func tearDown() {
        fixture.removeAll()
    }

    private var config: StreamConfig {
        var c = StreamConfig(name: "D")
        c.duplicateWindowNanos = 120 * s
        return c
    }

    private func newDirectory() -> String { fixture.newDirectory() }

    private func open(_ dir: String) throws -> ClusterServer.Stream { try fixture.openStream(config, in: dir) }

    /// A stream leader with injected clocks: `wall` may jump, `mono` only moves forward.
    private struct Leader {
        var clock: DedupClock
        var wall: Int64
        var mono: UInt64
        var index: UInt64 = 0

        mutating func entry(_ id: String, stampDedup: Bool = true) -> ClusterServer.Stream.BatchItem {
            index += 1
            let d = clock.stamp(wall: wall, mono: mono)
            return .init(subject: "d.x", headers: NATSHeaderBlock.make([("Nats-Msg-Id", id)]), payload: Array(id.utf8),
                         now: wall, raftIndex: index, dedupTime: stampDedup ? d : nil)
        }

        /// Time passes: `seconds` of real time, and the wall clock moves by `wallSeconds`.
        mutating func pass(_ seconds: Int64, wall wallSeconds: Int64? = nil) {
            mono += UInt64(seconds * 1_000_000_000)
            wall += (wallSeconds ?? seconds) * 1_000_000_000
        }
    }

    /// Applies `item` on replicas: the first one publish at a time, the others batched.
    private func apply(_ item: ClusterServer.Stream.BatchItem, to replicas: [ClusterServer.Stream]) -> [String] {
        replicas.enumerated().map { i, r in
            let out: ClusterServer.Stream.PublishOutcome
            if i == 0 {
                r.applyingRaftIndex = item.raftIndex
                r.expireDedup(now: item.dedupNow)
                out = r.ingest(subject: item.subject, headers: item.headers, payload: item.payload, now: item.now, dedupNow: item.dedupTime)
                r.applyingRaftIndex = 0
            } else {
                out = r.ingestBatch([item])[0]
            }
            return String(decoding: out.response, as: UTF8.self)
        }
    }

    private func contents(_ st: ClusterServer.Stream) -> [String] {
        fixture.storedMessages(st).map { "\($0.seq) \(String(decoding: $0.payload, as: UTF8.self)) \($0.time)" }
    }

    func test_retryAfterAForwardJumpLargerThanTheWindow_isADuplicateOnEveryReplica() throws {
        let replicas = [try open(newDirectory()), try open(newDirectory())]
        var leader = Leader(clock: DedupClock(resumingAt: base, skew: 0, mono: 0), wall: base, mono: 0)
        XCTAssertEqual(apply(leader.entry("a"), to: replicas), Array(repeating: #"{"stream":"D","seq":1}"#, count: 2))
        leader.pass(1, wall: 600) // the leader's wall clock leaps 10 min
        XCTAssertEqual(apply(leader.entry("b"), to: replicas), Array(repeating: #"{"stream":"D","seq":2}"#, count: 2))
        leader.pass(1)
        // The client retries "a" (its PubAck was lost): still inside the window in real time.
        XCTAssertEqual(apply(leader.entry("a"), to: replicas), Array(repeating: #"{"stream":"D","seq":1,"duplicate": true}"#, count: 2))
        // Message timestamps stay the leader's wall clock, as nats-server stamps them.
        XCTAssertEqual(contents(replicas[0]), ["1 a \(base)", "2 b \(base + 600 * s)"])
        XCTAssertEqual(contents(replicas[1]), contents(replicas[0]))
        // Only real elapsed time ends the window.
        leader.pass(119)
        XCTAssertEqual(apply(leader.entry("a"), to: replicas), Array(repeating: #"{"stream":"D","seq":3}"#, count: 2))
        XCTAssertEqual(replicas[0].dedupWindow(now: replicas[0].lastDedupTime!), replicas[1].dedupWindow(now: replicas[1].lastDedupTime!))
    }

    func test_withoutDedupTimes_theSameRetryIsStoredTwice() throws {
        // The behaviour this replaces (entries dedup on their wall-clock timestamps): the check
        // above would fail with it.
        let replica = try open(newDirectory())
        var leader = Leader(clock: DedupClock(resumingAt: base, skew: 0, mono: 0), wall: base, mono: 0)
        _ = apply(leader.entry("a", stampDedup: false), to: [replica])
        leader.pass(1, wall: 600)
        _ = apply(leader.entry("b", stampDedup: false), to: [replica])
        leader.pass(1)
        XCTAssertEqual(apply(leader.entry("a", stampDedup: false), to: [replica]), [#"{"stream":"D","seq":3}"#])
    }

    func test_backwardJump_doesNotHoldIdsLongerThanTheWindow() throws {
        let replicas = [try open(newDirectory()), try open(newDirectory())]
        var leader = Leader(clock: DedupClock(resumingAt: base, skew: 0, mono: 0), wall: base, mono: 0)
        _ = apply(leader.entry("a"), to: replicas)
        leader.pass(1, wall: -300) // 5 min back
        XCTAssertEqual(apply(leader.entry("a"), to: replicas), Array(repeating: #"{"stream":"D","seq":1,"duplicate": true}"#, count: 2))
        leader.pass(120)
        XCTAssertEqual(apply(leader.entry("a"), to: replicas), Array(repeating: #"{"stream":"D","seq":2}"#, count: 2))
        XCTAssertEqual(contents(replicas[0]), ["1 a \(base)", "2 a \(base - 180 * s)"])
        XCTAssertEqual(contents(replicas[1]), contents(replicas[0]))
    }

    func test_leaderChangeBetweenJumps_keepsTheWindow() throws {
        let replicas = [try open(newDirectory()), try open(newDirectory())]
        // Leader 1's clock is 10 min ahead of everyone else's.
        var one = Leader(clock: DedupClock(resumingAt: base + 600 * s, skew: 0, mono: 0), wall: base + 600 * s, mono: 0)
        _ = apply(one.entry("a"), to: replicas)
        one.pass(1)
        _ = apply(one.entry("b"), to: replicas)
        // Leader 2 (a correct clock) takes over 2 s later, from what it applied.
        let r = replicas[1]
        var two = Leader(clock: DedupClock(resumingAt: r.lastDedupTime, skew: r.dedupSkews.current, mono: 1_000),
                         wall: base + 3 * s, mono: 1_000 + UInt64(2 * s), index: one.index)
        XCTAssertEqual(apply(two.entry("a"), to: replicas), Array(repeating: #"{"stream":"D","seq":1,"duplicate": true}"#, count: 2))
        XCTAssertEqual(apply(two.entry("c"), to: replicas), Array(repeating: #"{"stream":"D","seq":3}"#, count: 2))
        // Leader 1 (still 10 min ahead) leads again a little later: no leap either.
        let q = replicas[0]
        var again = Leader(clock: DedupClock(resumingAt: q.lastDedupTime, skew: q.dedupSkews.current, mono: 5),
                           wall: base + 606 * s, mono: 5 + UInt64(3 * s), index: two.index)
        XCTAssertEqual(apply(again.entry("b"), to: replicas), Array(repeating: #"{"stream":"D","seq":2,"duplicate": true}"#, count: 2))
        XCTAssertEqual(apply(again.entry("c"), to: replicas), Array(repeating: #"{"stream":"D","seq":3,"duplicate": true}"#, count: 2))
        XCTAssertEqual(replicas[0].dedupSkews, replicas[1].dedupSkews)
    }

    func test_restart_bringsTheSameWindowBack() throws {
        let dir = newDirectory()
        var replicas = [try open(dir), try open(newDirectory())]
        var leader = Leader(clock: DedupClock(resumingAt: base, skew: 0, mono: 0), wall: base, mono: 0)
        for i in 0..<5 {
            _ = apply(leader.entry("x\(i)"), to: replicas)
            leader.pass(30)
        }
        leader.pass(1, wall: 600)
        for i in 5..<8 {
            _ = apply(leader.entry("x\(i)"), to: replicas)
            leader.pass(30)
        }
        leader.pass(1, wall: -900) // and back, past where it started
        _ = apply(leader.entry("x8"), to: replicas)
        XCTAssertEqual(replicas[0].dedupSkews.marks.count, 2)
        let live = replicas[0].dedupWindow(now: replicas[0].lastDedupTime!)
        XCTAssertEqual(live.keys.sorted(), ["x5", "x6", "x7", "x8"], "x0...x4 are more than 120 s of real time old")
        // Restart: a fresh Stream over the same files.
        try replicas[0].store.sync()
        replicas[0].store.close()
        replicas[0] = try open(dir)
        replicas[0].rebuildDedup()
        XCTAssertEqual(replicas[0].dedupWindow(now: replicas[1].lastDedupTime!), live)
        XCTAssertEqual(replicas[0].lastDedupTime, replicas[1].lastDedupTime)
        XCTAssertEqual(replicas[0].dedupSkews, replicas[1].dedupSkews)
        leader.pass(1)
        XCTAssertEqual(apply(leader.entry("x5"), to: replicas), Array(repeating: #"{"stream":"D","seq":6,"duplicate": true}"#, count: 2))
        XCTAssertEqual(apply(leader.entry("x1"), to: replicas), Array(repeating: #"{"stream":"D","seq":10}"#, count: 2))
    }

    func test_singleNode_stampsItsOwnDedupTimes_andItsTickKeepsTheWindow() throws {
        // A single node is its own leader: `stampDedupTime` reads the real monotonic clock, and
        // the wall clock passed in jumps 10 min (far more than the time this test takes).
        let st = try open(newDirectory())
        let wall = base
        func publish(_ id: String, wall: Int64) -> String {
            let out = st.ingest(subject: "d.x", headers: NATSHeaderBlock.make([("Nats-Msg-Id", id)]), payload: Array(id.utf8), now: wall,
                                dedupNow: st.stampDedupTime(wall: wall))
            return String(decoding: out.response, as: UTF8.self)
        }
        XCTAssertEqual(publish("a", wall: wall), #"{"stream":"D","seq":1}"#)
        st.expireDedup(now: st.stampDedupTime(wall: wall + 600 * s)) // the service's tick
        XCTAssertEqual(publish("a", wall: wall + 600 * s), #"{"stream":"D","seq":1,"duplicate": true}"#)
        XCTAssertEqual(contents(st), ["1 a \(base)"])
    }

    func test_markPastTheStore_isDroppedAtOpen() throws {
        // A mark is written before its store append; a power cut can keep the mark and lose
        // the message, which the log then applies again.
        let dir = newDirectory()
        let st = try open(dir)
        var leader = Leader(clock: DedupClock(resumingAt: base, skew: 0, mono: 0), wall: base, mono: 0)
        _ = apply(leader.entry("a"), to: [st])
        try st.store.sync()
        st.store.close()
        try AtomicFile.write(DedupSkews(marks: [.init(seq: 2, skew: -600 * s)]).encode(), to: dir + "/" + DedupSkews.fileName)
        let reopened = try open(dir)
        reopened.rebuildDedup()
        XCTAssertEqual(reopened.dedupSkews, DedupSkews())
        XCTAssertEqual(reopened.dedupWindow(now: base).keys.sorted(), ["a"])
        reopened.store.close()
        XCTAssertEqual(AtomicFile.read(dir + "/" + DedupSkews.fileName).flatMap(DedupSkews.decode), DedupSkews(),
                       "the dropped mark is gone from the file too")
    }
}
