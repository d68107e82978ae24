import Raft
import XCTest
@testable import ClusterServer

/// The pure copy logic of a snapshot install: a follower copying a leader's stream while the
/// leader keeps appending, deleting and purging ends with exactly the state the leader had at
/// the Raft index the copy names.
final class StreamCatchupTests: XCTestCase {
    /// A leader's store as a map, changed by seeded random operations, each one Raft index.
    private struct Leader {
        var msgs: [UInt64: CatchupMessage] = [:]
        var last: UInt64 = 0
        var index: UInt64 = 0
        var history: [UInt64: ([UInt64: CatchupMessage], UInt64)] = [:]

        mutating func append(_ n: Int) {
            for _ in 0..<n {
                last += 1
                index += 1
                msgs[last] = CatchupMessage(seq: last, time: Int64(last) * 1000, subject: "s.\(last % 7)",
                                            headers: last % 3 == 0 ? Array("NATS/1.0\r\nA: \(last)\r\n\r\n".utf8) : nil,
                                            payload: Array(repeating: UInt8(last & 0xff), count: Int(last % 50)))
            }
        }

        mutating func mutate(_ rng: inout SplitMix) {
            switch rng.next(4) {
            case 0: append(1 + rng.next(20))
            case 1:
                if let victim = msgs.keys.sorted().dropFirst(rng.next(max(1, msgs.count))).first {
                    msgs[victim] = nil
                    index += 1
                }
            case 2:
                if let lo = msgs.keys.min() {
                    let upTo = lo + UInt64(rng.next(10))
                    for k in msgs.keys where k < upTo { msgs[k] = nil }
                    index += 1
                }
            default: break
            }
        }

        mutating func state() -> CatchupState {
            history[index] = (msgs, last)
            let first = msgs.keys.min() ?? last + 1
            let deleted = msgs.isEmpty ? [] : (first...last).filter { msgs[$0] == nil }
            return CatchupState(index: index, term: 1, voters: [1, 2, 3], learners: [], firstSeq: first, lastSeq: last,
                                deleted: deleted, consumers: [:])
        }

        func chunk(from: UInt64, to: UInt64, maxBytes: Int) -> ([CatchupMessage], UInt64) {
            var out: [CatchupMessage] = []
            var bytes = 0
            for s in from...to {
                guard let m = msgs[s] else { continue }
                out.append(m)
                bytes += m.payload.count + 28
                if bytes >= maxBytes { return (out, s + 1) }
            }
            return (out, to + 1)
        }
    }

    /// The follower's staged copy as a map.
    private struct Staged {
        var msgs: [UInt64: CatchupMessage] = [:]
        var last: UInt64 = 0

        mutating func apply(_ ops: [StreamCatchup.Op]) {
            for op in ops {
                switch op {
                case .reset: msgs = [:]; last = 0
                case .removeBelow(let s): for k in msgs.keys where k < s { msgs[k] = nil }
                case .remove(let s): msgs[s] = nil
                case .append(let m):
                    XCTAssertGreaterThan(m.seq, last, "appends must be ascending")
                    msgs[m.seq] = m
                    last = m.seq
                case .finish(let l): last = max(last, l)
                }
            }
        }
    }

    private struct SplitMix {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    func test_copyOfAChangingStream_endsWithTheLeadersStateAtTheCopiedIndex() throws {
        for seed in UInt64(1)...40 {
            var rng = SplitMix(state: seed)
            var leader = Leader()
            leader.append(200 + rng.next(300))
            var plan = StreamCatchup(minimumIndex: 0)
            var staged = Staged()
            var next = StreamCatchup.Next.state
            var refreshes = 0
            for round in 0... {
                guard round < 10_000 else { return XCTFail("seed \(seed): copy does not converge") }
                // The leader changes between answers (less often later, so the copy converges).
                if rng.next(round < 50 ? 2 : 8) == 0 { leader.mutate(&rng) }
                let ops: [StreamCatchup.Op]
                switch next {
                case .state:
                    refreshes += 1
                    (ops, next) = try plan.received(state: leader.state())
                case let .messages(from, to):
                    let (msgs, n) = leader.chunk(from: from, to: to, maxBytes: 700)
                    (ops, next) = try plan.received(messages: msgs, from: from, next: n)
                case .done:
                    return XCTFail("asked past the end")
                }
                staged.apply(ops)
                guard case let .done(s) = next else { continue }
                let (want, wantLast) = try XCTUnwrap(leader.history[s.index])
                XCTAssertEqual(staged.msgs.keys.sorted(), want.keys.sorted(), "seed \(seed)")
                for (k, m) in want { XCTAssertEqual(staged.msgs[k], m, "seed \(seed) seq \(k)") }
                XCTAssertEqual(staged.last, wantLast, "seed \(seed): the next sequence after the install")
                XCTAssertGreaterThan(refreshes, 0)
                break
            }
        }
    }

    func test_stateBelowTheMinimumIndex_isAskedAgain() throws {
        var plan = StreamCatchup(minimumIndex: 10)
        let s = CatchupState(index: 9, term: 1, voters: [1], learners: [], firstSeq: 1, lastSeq: 0, deleted: [], consumers: [:])
        let (ops, next) = try plan.received(state: s)
        XCTAssertEqual(ops, [])
        XCTAssertEqual(next, .state)
        XCTAssertNil(plan.target)
    }

    func test_emptyStream_finishesAtItsLastSequence() throws {
        var plan = StreamCatchup(minimumIndex: 0)
        let s = CatchupState(index: 5, term: 1, voters: [1], learners: [], firstSeq: 43, lastSeq: 42, deleted: [], consumers: [:])
        let (ops, next) = try plan.received(state: s)
        XCTAssertEqual(ops, [.finish(lastSeq: 42)])
        XCTAssertEqual(next, .done(s))
    }

    func test_hostileAnswers_areRejected() throws {
        let s = CatchupState(index: 5, term: 1, voters: [1], learners: [], firstSeq: 1, lastSeq: 10, deleted: [4], consumers: [:])
        func msg(_ seq: UInt64) -> CatchupMessage { CatchupMessage(seq: seq, time: 0, subject: "a", headers: nil, payload: []) }
        var plan = StreamCatchup(minimumIndex: 0)
        _ = try plan.received(state: s)
        XCTAssertThrowsError(try plan.received(messages: [msg(2), msg(1)], from: 1, next: 3), "out of order")
        XCTAssertThrowsError(try plan.received(messages: [msg(4)], from: 1, next: 5), "a sequence the state says is deleted")
        XCTAssertThrowsError(try plan.received(messages: [], from: 2, next: 5), "a chunk that does not continue the copy")
        XCTAssertThrowsError(try plan.received(messages: [], from: 1, next: 99), "past the state's last sequence")
        var bad = s
        bad.deleted = [7, 3]
        var fresh = StreamCatchup(minimumIndex: 0)
        XCTAssertThrowsError(try fresh.received(state: bad), "unsorted deletions")
        bad.deleted = [1]
        XCTAssertThrowsError(try fresh.received(state: bad), "the first sequence cannot be deleted")
        bad = s
        bad.voters = []
        XCTAssertThrowsError(try fresh.received(state: bad), "no voters")
    }

    func test_messageMissingFromAChunk_refreshesTheState() throws {
        let s = CatchupState(index: 5, term: 1, voters: [1], learners: [], firstSeq: 1, lastSeq: 3, deleted: [], consumers: [:])
        func msg(_ seq: UInt64) -> CatchupMessage { CatchupMessage(seq: seq, time: 0, subject: "a", headers: nil, payload: []) }
        var plan = StreamCatchup(minimumIndex: 0)
        _ = try plan.received(state: s)
        let (ops, next) = try plan.received(messages: [msg(1), msg(3)], from: 1, next: 4)
        XCTAssertEqual(ops, [.append(msg(1))])
        XCTAssertEqual(next, .state, "2 vanished after the state was taken")
        var later = s
        later.index = 6
        later.deleted = [2]
        let (ops2, next2) = try plan.received(state: later)
        XCTAssertEqual(ops2, [])
        XCTAssertEqual(next2, .messages(from: 3, to: 3))
    }

    func test_compactionPoint_boundsHowFarALaggingMemberHoldsItBack() {
        let p = { (applied: UInt64, first: UInt64, matches: [UInt64], lag: Int?) in
            StreamReplica.compactionPoint(applied: LogIndex(applied), firstIndex: LogIndex(first),
                                          matches: matches.map { LogIndex($0) }, maxLag: lag)?.rawValue
        }
        XCTAssertEqual(p(1000, 1, [990, 995], 200), 990, "members close behind hold it")
        XCTAssertEqual(p(1000, 1, [990, 10], 200), 800, "a member far behind does not")
        XCTAssertEqual(p(1000, 1, [990, 10], nil), 10, "memory streams: unbounded")
        XCTAssertEqual(p(1000, 1, [1200], 200), 1000, "never past what we applied")
        XCTAssertNil(p(1000, 900, [850], 200), "no move backwards")
    }
}
