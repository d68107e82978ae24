import Raft
import RaftLogStorage
import StreamLog
import XCTest

/// Raft's SplitMix64, so every randomized test replays from its seed.
typealias SeededRNG = SplitMix64

let testDir = "/raft/g1"
let threeVoters = ConfState(voters: [NodeID(1), NodeID(2), NodeID(3)])

/// Small segments so that tests cross segment boundaries, seal segments and drop them.
/// `cacheBytes`: the recent-entry cache (0: every read goes to the log; small: partial hits).
/// `scanEntries`: entries read at open for the term index (small: older terms come from the log).
func openStorage(_ fs: FaultyFileSystem, conf: ConfState = threeVoters, cacheBytes: Int = 256 << 10,
                 scanEntries: Int = 65_536) throws -> StreamLogRaftStorage {
    try StreamLogRaftStorage.open(directory: testDir, fileSystem: fs,
                                  config: RaftLogStorageConfig(segmentMaxBytes: 4096, entryCacheBytes: cacheBytes,
                                                               openScanEntries: scanEntries),
                                  bootstrap: conf)
}

func entry(_ index: UInt64, _ term: UInt64, _ type: EntryType = .normal, size: Int = 8) -> Entry {
    Entry(term: Term(term), index: LogIndex(index), type: type,
          data: (0..<size).map { UInt8(truncatingIfNeeded: index &* 31 &+ UInt64($0)) })
}

func entries(_ range: ClosedRange<UInt64>, term: UInt64, size: Int = 8) -> [Entry] {
    range.map { entry($0, term, size: size) }
}

/// The result of a storage call, errors included, so two implementations can be compared.
func outcome<T>(_ body: () throws -> T) -> String {
    do { return "ok \(try body())" } catch { return "error \(error)" }
}

/// Everything a storage answers, as one string, so two implementations can be compared.
func view(_ s: RaftStorage) -> String {
    var out = "first=\(s.firstIndex) last=\(s.lastIndex) snap=\(s.snapshot()) conf=\(s.initialState().conf)"
    let lo = s.firstIndex.prev.rawValue, hi = s.lastIndex.rawValue
    // Terms over the whole valid range and one step past each end.
    for i in (lo == 0 ? 0 : lo - 1)...(hi + 1) { out += " \(i):" + outcome { try s.term(at: LogIndex(i)) } }
    out += " entries: " + outcome { try s.entries(from: s.firstIndex, to: s.lastIndex.next, maxBytes: .max).map { "\($0.index)/\($0.term)/\($0.type)/\($0.data.count)" } }
    return out
}

/// Asserts that two storages answer every read the same way; returns false on a difference.
@discardableResult
func assertSameView(_ a: RaftStorage, _ b: RaftStorage, _ ctx: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
    let va = view(a), vb = view(b)
    XCTAssertEqual(va, vb, ctx, file: file, line: line)
    return va == vb
}
