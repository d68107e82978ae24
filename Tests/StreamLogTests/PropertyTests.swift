import XCTest
@testable import StreamLog

/// Seeded random operations against a simple model. With fsync `always` every operation is
/// durable when it returns, so after a clean reopen *or* a power loss the log must equal the
/// model exactly. A failure names the seed and step; replay one seed with
/// `SL_SEEDS=21-21 SLDEBUG=1 swift test --filter PropertyTests` (SLDEBUG dumps the block layout).
final class PropertyTests: XCTestCase {
    struct Model {
        var live: [UInt64: (subject: String, payload: String)] = [:]
        var lastSeq: UInt64 = 0
        var perSubjectLimit: UInt64?

        mutating func append(_ subject: String, _ payload: String) {
            lastSeq += 1
            live[lastSeq] = (subject, payload)
            if let limit = perSubjectLimit {
                let seqs = live.filter { $0.value.subject == subject }.keys.sorted()
                for s in seqs.dropLast(Int(limit)) { live[s] = nil }
            }
        }
    }

    /// Seeds to run; `SL_SEEDS=first-last` widens or replays (e.g. `SL_SEEDS=21-21`).
    var seeds: ClosedRange<UInt64> {
        let parts = (ProcessInfo.processInfo.environment["SL_SEEDS"] ?? "").split(separator: "-").compactMap { UInt64($0) }
        return parts.count == 2 && parts[0] <= parts[1] ? parts[0]...parts[1] : 1...15
    }

    func test_randomOperations_matchModel_acrossReopensAndPowerLoss() throws {
        for seed in seeds { try run(seed: seed) }
    }

    func run(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        let fs = FaultyFileSystem()
        var model = Model()
        if seed % 3 == 0 { model.perSubjectLimit = 3 }
        var config = StreamLogConfig(segmentMaxBytes: 4096, fsync: .always, compression: seed % 2 == 0,
                                     limits: RetentionLimits(maxMessagesPerSubject: model.perSubjectLimit))
        config.rewriteSmallBlockBytes = 1024
        var log = try StreamLog.open(directory: "/p", fileSystem: fs, config: config)
        let subjects = ["a", "b", "c.1", "c.2", "d"]
        for step in 0..<160 {
            let ctx = "seed \(seed) step \(step)"
            let op = Int.random(in: 0..<100, using: &rng)
            switch op {
            case 0..<55:
                let n = Int.random(in: 1...4, using: &rng)
                var batch: [NewMessage] = []
                var planned: [(String, String)] = []
                for i in 0..<n {
                    let s = subjects.randomElement(using: &rng)!
                    let p = "s\(seed)-\(step)-\(i)" + String(repeating: "x", count: Int.random(in: 0...80, using: &rng))
                    batch.append(NewMessage(subject: s, payload: Array(p.utf8), timestamp: Int64(step)))
                    planned.append((s, p))
                }
                let r = try log.appendAndWait(batch)
                XCTAssertEqual(r.firstSequence, model.lastSeq + 1, ctx)
                for (s, p) in planned { model.append(s, p) }
            case 55..<65:
                if let s = model.live.keys.randomElement(using: &rng) {
                    XCTAssertTrue(try log.delete(StreamSequence(s), secure: Bool.random(using: &rng)), ctx)
                    model.live[s] = nil
                }
            case 65..<70:
                let s = subjects.randomElement(using: &rng)!
                let n = try log.purge(.init(subject: s, keep: 1))
                let seqs = model.live.filter { $0.value.subject == s }.keys.sorted().dropLast(1)
                XCTAssertEqual(n, UInt64(seqs.count), ctx)
                for q in seqs { model.live[q] = nil }
            case 70..<76:
                let upTo = UInt64.random(in: 0...(model.lastSeq + 1), using: &rng)
                try log.compact(upTo: StreamSequence(upTo))
                for q in model.live.keys where q < upTo { model.live[q] = nil }
            case 76..<83:
                let after = UInt64.random(in: 0...model.lastSeq, using: &rng)
                try log.truncate(after: StreamSequence(after))
                for q in model.live.keys where q > after { model.live[q] = nil }
                model.lastSeq = min(model.lastSeq, after)
            case 83..<88:
                try log.runMaintenance(maxSegments: 2)
            case 88..<94:
                try log.close()
                log = try StreamLog.open(directory: "/p", fileSystem: fs, config: config)
            default:
                fs.powerLoss(using: &rng)
                log = try StreamLog.open(directory: "/p", fileSystem: fs, config: config)
                XCTAssertNil(log.recoveryReport.truncatedTail, ctx + ": only durable data existed")
            }
            do { try check(log, model, ctx) } catch {
                print("DBG", ctx, error, log.core.floor, log.core.lastSeq, log.core.messages, log.core.deleted.sorted(), log.recoveryReport)
                for seg in log.segments { print("SEG", seg.base, seg.size, seg.blocks.map { "\($0.kind) \($0.firstSeq)-\($0.lastSeq) n\($0.count) @\($0.offset)" }) }
                print("MODEL", model.live.keys.sorted(), model.lastSeq)
                throw error
            }
        }
        try log.close()
    }

    func check(_ log: StreamLog, _ model: Model, _ ctx: String) throws {
        let all = try log.messages(from: StreamSequence(1), maxMessages: 100_000)
        let expected = model.live.keys.sorted()
        XCTAssertEqual(all.map(\.sequence.rawValue), expected, ctx)
        if all.map(\.sequence.rawValue) != expected && ProcessInfo.processInfo.environment["SLDEBUG"] != nil {
            print("DBG", ctx, log.core.floor, log.core.lastSeq, log.core.messages, log.core.deleted.sorted(), log.recoveryReport)
            for seg in log.segments { print("SEG", seg.base, seg.size, seg.blocks.map { "\($0.kind) \($0.firstSeq)-\($0.lastSeq) n\($0.count) @\($0.offset)" }) }
            fatalError("stop")
        }
        for m in all where model.live[m.sequence.rawValue]?.payload != String(decoding: m.payload, as: UTF8.self) {
            XCTFail("\(ctx): payload of \(m.sequence) differs")
        }
        let st = try log.state(perSubject: true)
        XCTAssertEqual(st.messages, UInt64(expected.count), ctx)
        XCTAssertEqual(st.lastSequence, model.lastSeq, ctx)
        var counts: [String: UInt64] = [:]
        var last: [String: UInt64] = [:]
        for (s, v) in model.live {
            counts[v.subject, default: 0] += 1
            last[v.subject] = max(last[v.subject] ?? 0, s)
        }
        XCTAssertEqual(st.subjects ?? [:], counts, ctx)
        for (subject, seq) in last {
            XCTAssertEqual(try log.lastMessage(subject: subject)?.sequence.rawValue, seq, "\(ctx) last of \(subject)")
        }
        if let first = expected.first { XCTAssertEqual(st.firstSequence, first, ctx) }
    }
}
