import Raft
import RaftLogStorage
import StreamLog
import XCTest

/// The durable storage must behave exactly like `MemoryStorage` (the reference the Raft tests
/// run against): the same scripted calls and seeded random call sequences are run on both and
/// every answer, error included, is compared.
final class ConformanceTests: XCTestCase {
    /// Each protocol method, once, on both implementations.
    func test_eachMethod_matchesMemoryStorage() throws {
        let fs = FaultyFileSystem()
        let d = try openStorage(fs)
        let m = MemoryStorage(conf: threeVoters)
        func both(_ what: String, _ body: (RaftStorage) throws -> Void) {
            let a = outcome { try body(m); return 0 }, b = outcome { try body(d); return 0 }
            XCTAssertEqual(a, b, what)
            assertSameView(m, d, what)
        }
        assertSameView(m, d, "fresh")
        both("append 1-10") { try $0.append(entries(1...10, term: 1)) }
        both("append with gap") { try $0.append(entries(12...13, term: 1)) }
        both("append overlapping, new term") { try $0.append(entries(8...12, term: 2)) }
        both("truncate after 9") { try $0.truncate(after: LogIndex(9)) }
        both("truncate past end") { try $0.truncate(after: LogIndex(50)) }
        both("append 10-30 t3") { try $0.append(entries(10...30, term: 3)) }
        both("snapshot at 20") { try $0.createSnapshot(index: LogIndex(20), conf: threeVoters, data: [1, 2, 3]) }
        both("stale snapshot") { try $0.createSnapshot(index: LogIndex(15), conf: threeVoters, data: []) }
        both("snapshot past end") { try $0.createSnapshot(index: LogIndex(40), conf: threeVoters, data: []) }
        both("compact past snapshot") { try $0.compact(upTo: LogIndex(25)) }
        both("compact to 17") { try $0.compact(upTo: LogIndex(17)) }
        both("compact backwards") { try $0.compact(upTo: LogIndex(12)) }
        both("entries below first") { _ = try $0.entries(from: LogIndex(17), to: LogIndex(20), maxBytes: .max) }
        both("entries past end") { _ = try $0.entries(from: LogIndex(25), to: LogIndex(40), maxBytes: .max) }
        both("truncate below compaction") { try $0.truncate(after: LogIndex(16)) }
        both("append skipping compacted") { try $0.append(entries(15...33, term: 3)) }
        both("conf change entry") { try $0.append([entry(34, 4, .confChange), entry(35, 4, .empty, size: 0)]) }
        both("apply older snapshot") {
            try $0.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: LogIndex(19), term: Term(3), conf: threeVoters)))
        }
        both("apply snapshot inside log") {
            try $0.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: LogIndex(30), term: Term(5), conf: ConfState(voters: [NodeID(1)])), data: [9]))
        }
        both("append after snapshot") { try $0.append(entries(31...40, term: 5)) }
        both("apply snapshot past end") {
            try $0.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: LogIndex(100), term: Term(6), conf: threeVoters), data: [7]))
        }
        both("append at 101") { try $0.append(entries(101...103, term: 6)) }
        both("compact everything") {
            try $0.createSnapshot(index: LogIndex(103), conf: threeVoters, data: [])
            try $0.compact(upTo: LogIndex(103))
        }
        both("append after empty") { try $0.append(entries(104...104, term: 7)) }
        // maxBytes: at least one entry, then stop before exceeding.
        for maxBytes in [0, 1, 32, 33, 64, 1000] {
            XCTAssertEqual(outcome { try m.entries(from: LogIndex(104), to: LogIndex(105), maxBytes: maxBytes) },
                           outcome { try d.entries(from: LogIndex(104), to: LogIndex(105), maxBytes: maxBytes) })
        }
        try d.close()
    }

    func test_entries_maxBytes_alwaysAtLeastOne_andStopsBeforeTheLimit() throws {
        for cacheBytes in [0, 1000, 1 << 20] { try checkMaxBytes(cacheBytes: cacheBytes) }
    }

    private func checkMaxBytes(cacheBytes: Int) throws {
        let fs = FaultyFileSystem()
        let d = try openStorage(fs, cacheBytes: cacheBytes)
        let m = MemoryStorage(conf: threeVoters)
        for s in [m, d] as [RaftStorage] { try s.append(entries(1...50, term: 1, size: 100)) }
        for maxBytes in [0, 123, 124, 247, 248, 1000, 10_000] {
            for from in [1, 7, 49, 50] as [UInt64] {
                let a = try m.entries(from: LogIndex(from), to: LogIndex(51), maxBytes: maxBytes)
                let b = try d.entries(from: LogIndex(from), to: LogIndex(51), maxBytes: maxBytes)
                XCTAssertEqual(a, b, "maxBytes \(maxBytes) from \(from) cache \(cacheBytes)")
                XCTAssertFalse(b.isEmpty)
            }
        }
        try d.close()
    }

    /// Seeded random call sequences (with reopens of the durable one) against MemoryStorage.
    func test_randomCallSequences_matchMemoryStorage_acrossReopens() throws {
        for seed in UInt64(1)...30 {
            var rng = SeededRNG(seed: seed)
            let fs = FaultyFileSystem()
            // The recent-entry cache off, tiny (evicting, partial hits) and default.
            let cacheBytes = [0, 700, 256 << 10][Int(seed % 3)]
            // Reopens read only the newest entries' terms (older ones from the log) or all of them.
            let scanEntries = [1, 7, 65_536][Int(seed / 3 % 3)]
            var d = try openStorage(fs, cacheBytes: cacheBytes, scanEntries: scanEntries)
            let m = MemoryStorage(conf: threeVoters)
            var term: UInt64 = 1
            var trace: [String] = []
            for step in 0..<120 {
                let ctx = "seed \(seed) step \(step)"
                let op = Int.random(in: 0..<100, using: &rng)
                trace.append("\(step):\(op) m=\(m.firstIndex)-\(m.lastIndex) snap=\(m.snapshot().metadata.index)")
                switch op {
                case 0..<45:
                    // Append from somewhere in [firstIndex, last + 1] (a conflicting suffix).
                    if Int.random(in: 0..<4, using: &rng) == 0 { term += 1 }
                    // As Raft does: never rewrite at or below the snapshot (it is committed).
                    let lo = max(m.firstIndex.rawValue, m.snapshot().metadata.index.rawValue + 1), hi = m.lastIndex.rawValue + 1
                    let from = Int.random(in: 0..<3, using: &rng) == 0 ? UInt64.random(in: lo...hi, using: &rng) : hi
                    let n = UInt64.random(in: 1...12, using: &rng)
                    let batch = (from..<(from + n)).map { entry($0, term, size: Int.random(in: 0...200, using: &rng)) }
                    try m.append(batch)
                    try d.append(batch)
                case 45..<55:
                    let to = UInt64.random(in: max(m.firstIndex.prev, m.snapshot().metadata.index).rawValue...max(m.lastIndex, m.snapshot().metadata.index).rawValue, using: &rng)
                    XCTAssertEqual(outcome { try m.truncate(after: LogIndex(to)) }, outcome { try d.truncate(after: LogIndex(to)) }, ctx)
                case 55..<65:
                    let hs = HardState(term: Term(term), vote: Bool.random(using: &rng) ? NodeID(2) : nil,
                                       commit: LogIndex(UInt64.random(in: 0...m.lastIndex.rawValue, using: &rng)))
                    m.setHardState(hs)
                    d.setHardState(hs)
                    try d.sync()
                case 65..<75:
                    let snapIndex = m.snapshot().metadata.index
                    if m.lastIndex > snapIndex {
                        let i = LogIndex(UInt64.random(in: (snapIndex.rawValue + 1)...m.lastIndex.rawValue, using: &rng))
                        try m.createSnapshot(index: i, conf: threeVoters, data: [UInt8(step & 0xFF)])
                        try d.createSnapshot(index: i, conf: threeVoters, data: [UInt8(step & 0xFF)])
                    }
                case 75..<83:
                    let snapIndex = m.snapshot().metadata.index.rawValue
                    let i = LogIndex(UInt64.random(in: 0...(snapIndex + 1), using: &rng))
                    XCTAssertEqual(outcome { try m.compact(upTo: i) }, outcome { try d.compact(upTo: i) }, ctx)
                case 83..<88:
                    term += 1
                    let i = LogIndex(m.snapshot().metadata.index.rawValue + UInt64.random(in: 1...30, using: &rng))
                    let snap = Snapshot(metadata: SnapshotMetadata(index: i, term: Term(term), conf: threeVoters), data: [1])
                    try m.applySnapshot(snap)
                    try d.applySnapshot(snap)
                case 88..<94:
                    try d.sync()
                default:
                    try d.close()
                    d = try openStorage(fs, cacheBytes: cacheBytes, scanEntries: scanEntries)
                    // Term and vote exactly; the commit is clamped to the log (tests truncate freely).
                    XCTAssertEqual(d.hardState.term, m.hardState.term, ctx + " term after reopen")
                    XCTAssertEqual(d.hardState.vote, m.hardState.vote, ctx + " vote after reopen")
                }
                if !assertSameView(m, d, ctx) {
                    print(trace.suffix(8).joined(separator: "\n"))
                    break
                }
            }
            try d.close()
        }
    }
}
