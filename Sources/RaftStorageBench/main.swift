import Foundation
import Raft
import RaftLogStorage
import StreamLog

// RaftStorageBench: release-build numbers for StreamLogRaftStorage on the real disk.
//   swift run -c release RaftStorageBench [directory]   (default: a fresh dir under /tmp)
// 1. append + sync of 128 B entries: one fsync per batch (the driver's group commit).
// 2. append without sync (the CPU cost of the storage path).
// 3. term(at:) lookups and sequential entries(from:to:maxBytes:) reads.
// 4. reopen of a large log (closed cleanly, and not).
// 5. many groups: one entry per group per round, then every group syncs (serial vs parallel).

func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU time of this process: the machine is shared, so CPU-bound numbers are given per CPU-second too.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let root = CommandLine.arguments.count > 1 ? CommandLine.arguments[1]
    : NSTemporaryDirectory() + "raftstorage-bench-\(getpid())"
let fs = PosixFileSystem()
var groupsOpened = 0

func freshStorage() throws -> StreamLogRaftStorage {
    groupsOpened += 1
    return try StreamLogRaftStorage.open(directory: "\(root)/g\(groupsOpened)", fileSystem: fs,
                                         bootstrap: ConfState(voters: [NodeID(1)]))
}

/// JSON-like payloads (what stream proposals look like), 128 bytes; built once, outside the timing.
let payloads: [[UInt8]] = (0..<1024).map { i in
    var s = "{\"seq\":\(i),\"subject\":\"orders.eu.\(i % 97)\",\"amount\":\(i % 1000).25,\"ok\":true"
    while s.utf8.count < 127 { s += ",\"k\":\"v\"" }
    return Array((String(s.prefix(127)) + "}").utf8)
}

func payload(_ i: Int) -> [UInt8] { payloads[i & 1023] }

func benchAppendSync(batch: Int, seconds: Double) throws {
    let s = try freshStorage()
    var next: UInt64 = 1
    var syncs = 0
    let t0 = wallSeconds()
    var latencies: [Double] = []
    while wallSeconds() - t0 < seconds {
        let entries = (0..<batch).map { k in Entry(term: Term(1), index: LogIndex(next + UInt64(k)), data: payload(Int(next) + k)) }
        let a = wallSeconds()
        try s.append(entries)
        try s.sync()
        latencies.append(wallSeconds() - a)
        next += UInt64(batch)
        syncs += 1
    }
    let wall = wallSeconds() - t0
    latencies.sort()
    let n = Int(next - 1)
    print(String(format: "append+sync, 128 B, %4d entries per sync: %9.0f entries/s, %6.0f syncs/s, p50 %.2f ms p99 %.2f ms per append+sync",
                 batch, Double(n) / wall, Double(syncs) / wall, latencies[latencies.count / 2] * 1e3,
                 latencies[latencies.count * 99 / 100] * 1e3))
    try s.close()
}

func benchAppendOnly(total: Int, batch: Int) throws -> StreamLogRaftStorage {
    let s = try freshStorage()
    var next: UInt64 = 1
    let t0 = wallSeconds(), c0 = cpuSeconds()
    var term: UInt64 = 1
    while next <= UInt64(total) {
        if next % 10_000 == 1 { term += 1 }  // a term change now and then, as elections do
        let entries = (0..<batch).map { k in Entry(term: Term(term), index: LogIndex(next + UInt64(k)), data: payload(Int(next) + k)) }
        try s.append(entries)
        next += UInt64(batch)
    }
    try s.sync()
    let wall = wallSeconds() - t0, cpu = cpuSeconds() - c0
    print(String(format: "append without sync, 128 B, batches of %d: %9.0f entries/s wall, %9.0f per CPU-second (%d entries, one sync at the end)",
                 batch, Double(next - 1) / wall, Double(next - 1) / cpu, next - 1))
    return s
}

func benchReads(_ s: StreamLogRaftStorage) throws {
    let last = s.lastIndex.rawValue
    var rng = SplitMix64(seed: 7)
    var sink: UInt64 = 0
    let lookups = 2_000_000
    var t0 = wallSeconds(), c0 = cpuSeconds()
    for _ in 0..<lookups { sink &+= try s.term(at: LogIndex(1 + rng.next() % last)).rawValue }
    var wall = wallSeconds() - t0
    print(String(format: "term(at:) random over %d entries (%d terms): %.0f ns wall, %.0f ns CPU per lookup", last, last / 10_000 + 1,
                 wall / Double(lookups) * 1e9, (cpuSeconds() - c0) / Double(lookups) * 1e9))
    t0 = wallSeconds()
    c0 = cpuSeconds()
    var from = LogIndex(1)
    var read = 0
    while from <= s.lastIndex {
        let chunk = try s.entries(from: from, to: s.lastIndex.next, maxBytes: 64 << 10)
        read += chunk.count
        from = chunk.last!.index.next
    }
    wall = wallSeconds() - t0
    print(String(format: "entries(from:to:maxBytes: 64 KiB) sequential, from the log: %9.0f entries/s wall, %9.0f per CPU-second (%d entries)",
                 Double(read) / wall, Double(read) / (cpuSeconds() - c0), read))
    if sink == 42 { print("") }
}

func benchReopen(_ s: StreamLogRaftStorage) throws {
    let dir = s.directory
    let n = s.lastIndex
    try s.close()
    var t0 = wallSeconds()
    var c0 = cpuSeconds()
    var r = try StreamLogRaftStorage.open(directory: dir, fileSystem: fs)
    let clean = wallSeconds() - t0, cleanCPU = cpuSeconds() - c0
    precondition(r.lastIndex == n)
    try r.append([Entry(term: Term(99), index: n.next, data: payload(0))])
    try r.sync()
    // Drop it without close: the StreamLog's state snapshot is behind, its tail is replayed.
    r = try StreamLogRaftStorage.open(directory: "\(root)/scratch", fileSystem: fs)
    t0 = wallSeconds()
    c0 = cpuSeconds()
    let unclean = try StreamLogRaftStorage.open(directory: dir, fileSystem: fs)
    let uncleanSeconds = wallSeconds() - t0, uncleanCPU = cpuSeconds() - c0
    print(String(format: "reopen of %d entries: %.1f ms (%.1f ms CPU) after close, %.1f ms (%.1f ms CPU) after an unclosed append (the newest 65,536 entries are read for the term index)",
                 n.rawValue, clean * 1e3, cleanCPU * 1e3, uncleanSeconds * 1e3, uncleanCPU * 1e3))
    try unclean.close()
    try r.close()
}

func benchGroups(count: Int, rounds: Int, parallel: Int) throws {
    let groups = try (0..<count).map { _ in try freshStorage() }
    let t0 = wallSeconds()
    for round in 1...rounds {
        for g in groups { try g.append([Entry(term: Term(1), index: LogIndex(UInt64(round)), data: payload(round))]) }
        if parallel <= 1 {
            for g in groups { try g.sync() }
        } else {
            // Each group's sync touches only its own files: the driver may fsync them in parallel.
            let lock = NSLock()
            var firstError: Error?
            DispatchQueue.concurrentPerform(iterations: parallel) { w in
                var i = w
                while i < groups.count {
                    do { try groups[i].sync() } catch let e {
                        lock.lock()
                        if firstError == nil { firstError = e }
                        lock.unlock()
                    }
                    i += parallel
                }
            }
            if let firstError { throw firstError }
        }
    }
    let wall = wallSeconds() - t0
    print(String(format: "%d groups, 1 entry each per round, then every group syncs (%@): %.1f ms per round, %.0f entries/s",
                 count, parallel <= 1 ? "serially" : "\(parallel) threads" as NSString, wall / Double(rounds) * 1e3, Double(count * rounds) / wall))
    for g in groups { try g.close() }
}

do {
    try fs.makeDirectory(root)
    print("RaftStorageBench in \(root)")
    for batch in [1, 16, 128, 1024] { try benchAppendSync(batch: batch, seconds: 2) }
    let big = try benchAppendOnly(total: 200_000, batch: 64)
    try benchReads(big)
    try benchReopen(big)
    try benchGroups(count: 64, rounds: 20, parallel: 1)
    try benchGroups(count: 64, rounds: 20, parallel: 8)
} catch {
    print("RaftStorageBench failed: \(error)")
}
if CommandLine.arguments.count <= 1 { try? FileManager.default.removeItem(atPath: root) }
