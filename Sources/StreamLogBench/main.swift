import Foundation
import StreamLog

// StreamLog benchmarks: one line per measurement. Run in release: `swift run -c release StreamLogBench`.
// Data lives under a temp dir in /tmp that is removed at the end. Pass `--quick` for a short run
// (smaller reopen log), `--only=subjects,reopen` to run some sections.

let quick = CommandLine.arguments.contains("--quick")
/// `--only=a,b` runs only the named sections: append_always, append_never, append_payloads, crc,
/// compression, reopen, subjects, preallocate.
let only: Set<String>? = CommandLine.arguments.first { $0.hasPrefix("--only=") }
    .map { Set($0.dropFirst(7).split(separator: ",").map(String.init)) }
func want(_ section: String) -> Bool { only?.contains(section) ?? true }
let root = NSTemporaryDirectory() + "streamlog-bench-\(getpid())"
try? FileManager.default.removeItem(atPath: root)
defer { try? FileManager.default.removeItem(atPath: root) }
var dirCounter = 0

func freshDir() -> String {
    dirCounter += 1
    return root + "/log\(dirCounter)"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A JSON-ish payload of exactly `size` bytes, varied per message like real events.
func jsonPayload(_ i: Int, size: Int) -> [UInt8] {
    let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]
    var s = "{\"id\":\(i),\"ts\":\"2026-11-22T08:\(10 + i % 50):\(10 + i % 49).\(i % 1000)Z\",\"user\":\"\(users[i % users.count])\","
        + "\"type\":\"order.\(i % 3 == 0 ? "created" : "updated")\",\"amount\":\(i % 9973).\(i % 100),\"currency\":\"EUR\",\"items\":["
    var k = 0
    while s.utf8.count < size - 3 {
        s += "{\"sku\":\"SKU-\((i * 7 + k) % 100_000)\",\"qty\":\(k % 5 + 1)},"
        k += 1
    }
    var bytes = Array(s.utf8.prefix(size - 2))
    bytes += Array("]}".utf8)
    return bytes
}

func messages(count: Int, size: Int, start: Int = 0) -> [NewMessage] {
    (0..<count).map { i in
        NewMessage(subject: "orders.eu.\((start + i) % 64)", payload: jsonPayload(start + i, size: size),
                   timestamp: 1_700_000_000_000_000_000 + Int64(start + i) * 1000)
    }
}

func diskBytes(_ dir: String) -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return names.filter { $0.hasSuffix(".seg") }.reduce(0) { total, name in
        total + ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? Int) ?? 0)
    }
}

func report(_ name: String, _ fields: [(String, String)]) {
    print(([name] + fields.map { "\($0.0)=\($0.1)" }).joined(separator: " "))
    fflush(stdout)
}

func fmt(_ x: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", x) }

// MARK: fsync always, concurrent appenders (group commit)

final class Counter: @unchecked Sendable {
    let lock = NSLock()
    var total = 0
    func add(_ n: Int) { lock.lock(); total += n; lock.unlock() }
}

func groupCommit(appenders: Int, size: Int, seconds: Double) throws -> Double {
    let log = try StreamLog.open(directory: freshDir(), config: StreamLogConfig(fsync: .always))
    let template = messages(count: 1, size: size)
    let counter = Counter()
    let group = DispatchGroup()
    let deadline = now() + seconds
    let start = now()
    for _ in 0..<appenders {
        group.enter()
        let t = Thread {
            var n = 0
            while now() < deadline {
                _ = try? log.appendAndWait(template)
                n += 1
            }
            counter.add(n)
            group.leave()
        }
        t.stackSize = 256 << 10
        t.start()
    }
    group.wait()
    let rate = Double(counter.total) / (now() - start)
    try log.close()
    return rate
}

/// The same with asynchronous appenders (as the server uses the log): each of `appenders`
/// chains issues its next append from the durability callback of the previous one.
func groupCommitAsync(appenders: Int, size: Int, seconds: Double) throws -> Double {
    let log = try StreamLog.open(directory: freshDir(), config: StreamLogConfig(fsync: .always))
    let template = messages(count: 1, size: size)
    let counter = Counter()
    let group = DispatchGroup()
    let deadline = now() + seconds
    let start = now()
    func issue() {
        do {
            try log.append(template, onDurable: { _ in
                counter.add(1)
                if now() < deadline { issue() } else { group.leave() }
            })
        } catch {
            group.leave()
        }
    }
    for _ in 0..<appenders {
        group.enter()
        issue()
    }
    group.wait()
    let rate = Double(counter.total) / (now() - start)
    try log.close()
    return rate
}

// MARK: fsync never

func appendNever(size: Int, batch: Int, total: Int) throws -> (rate: Double, dir: String) {
    let dir = freshDir()
    let log = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    let batches = (0..<8).map { messages(count: batch, size: size, start: $0 * batch) }
    let rate = try timedAppends(log, batches: batches, total: total)
    try log.close()
    return (rate, dir)
}

/// Appends the batches round-robin until `total` messages are written; returns msgs/s.
func timedAppends(_ log: StreamLog, batches: [[NewMessage]], total: Int) throws -> Double {
    let start = now()
    var written = 0
    var i = 0
    while written < total {
        try log.append(batches[i % batches.count])
        written += batches[i % batches.count].count
        i += 1
    }
    return Double(written) / (now() - start)
}

/// Appends with fsync never (the CPU cost of an append: encode, LZ4, CRC, write) of JSON
/// (compressible) or random (incompressible) payloads. The median of `runs` runs, and the
/// log's size on disk relative to the payload bytes.
func appendPayloads(random: Bool, size: Int, batch: Int, total: Int, runs: Int) throws -> (rate: Double, diskPct: Double) {
    var lcg: UInt64 = 0x5EED
    // More distinct payloads than the 8 batches hold, so no block repeats one (LZ4 would find it).
    let pool: [[UInt8]] = (0..<(8 * batch)).map { n in
        guard random else { return jsonPayload(n, size: size) }
        return (0..<size).map { _ in
            lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: lcg >> 33)
        }
    }
    let batches = (0..<8).map { b in
        (0..<batch).map { k in
            NewMessage(subject: "orders.eu.\(k % 64)", payload: pool[(b * batch + k) % pool.count], timestamp: Int64(b * batch + k))
        }
    }
    var rates: [Double] = []
    var diskPct = 0.0
    for _ in 0..<runs {
        let dir = freshDir()
        let log = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
        rates.append(try timedAppends(log, batches: batches, total: total))
        try log.close()
        let written = (total + batch - 1) / batch * batch
        diskPct = 100 * Double(diskBytes(dir)) / Double(written * size)
        try? FileManager.default.removeItem(atPath: dir)
    }
    return (rates.sorted()[runs / 2], diskPct)
}

/// CRC32C throughput of the software (slicing-by-8) and hardware paths over buffers of
/// `size` bytes; the checksums of both paths must agree.
func crcBench(size: Int, totalBytes: Int) {
    var lcg: UInt64 = 7
    let buf = (0..<size).map { _ -> UInt8 in
        lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: lcg >> 33)
    }
    let rounds = max(1, totalBytes / size)
    func measure(_ f: (UnsafeRawBufferPointer, UInt32) -> UInt32) -> (gbps: Double, crc: UInt32) {
        buf.withUnsafeBytes { b in
            var c: UInt32 = 0
            let t = now()
            for _ in 0..<rounds { c = f(b, c) }
            return (Double(rounds * size) / (now() - t) / 1e9, c)
        }
    }
    let sw = measure { CRC32C.softwareChecksum($0, continuing: $1) }
    let hw = measure { CRC32C.checksum($0, continuing: $1) }
    precondition(sw.crc == hw.crc, "CRC32C paths disagree")
    report("crc32c", [("buffer", "\(size)B"), ("software_GB_per_s", fmt(sw.gbps, 2)),
                      ("checksum_GB_per_s", fmt(hw.gbps, 2)), ("hardware", "\(CRC32C.hardwareAvailable)")])
}

func readBench(dir: String, count: Int) throws {
    let log = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    var start = now()
    var seq: UInt64 = 1
    var read = 0
    while true {
        let page = try log.messages(from: StreamSequence(seq), maxMessages: 1000)
        guard let last = page.last else { break }
        read += page.count
        seq = last.sequence.rawValue + 1
    }
    let seqRate = Double(read) / (now() - start)
    report("read_sequential", [("msgs", "\(read)"), ("msgs_per_s", fmt(seqRate))])
    var rng = SystemRandomNumberGenerator()
    var latencies: [Double] = []
    let samples = 20_000
    latencies.reserveCapacity(samples)
    for _ in 0..<samples {
        let s = UInt64.random(in: 1...UInt64(count), using: &rng)
        start = now()
        _ = try log.message(StreamSequence(s))
        latencies.append(now() - start)
    }
    latencies.sort()
    let avg = latencies.reduce(0, +) / Double(samples)
    report("read_random_by_seq", [("samples", "\(samples)"), ("avg_us", fmt(avg * 1e6, 1)),
                                  ("p50_us", fmt(latencies[samples / 2] * 1e6, 1)),
                                  ("p99_us", fmt(latencies[samples * 99 / 100] * 1e6, 1))])
    try log.close()
}

func compression(size: Int, batch: Int, total: Int) throws {
    let dir = freshDir()
    let log = try StreamLog.open(directory: dir, config: StreamLogConfig(segmentMaxBytes: 8 << 20, fsync: .never))
    var raw = 0
    var i = 0
    while i < total {
        let b = messages(count: batch, size: size, start: i)
        raw += b.reduce(0) { $0 + $1.payload.count + $1.subject.utf8.count }
        try log.append(b)
        i += batch
    }
    let before = diskBytes(dir)
    let rewritten = try log.runMaintenance(maxSegments: 1000)
    let after = diskBytes(dir)
    try log.close()
    report("compression", [("payload", "\(size)B"), ("batch", "\(batch)"), ("raw_bytes", "\(raw)"),
                           ("disk_bytes", "\(before)"), ("ratio_pct", fmt(100 * Double(before) / Double(raw), 1)),
                           ("after_maintenance_pct", fmt(100 * Double(after) / Double(raw), 1)),
                           ("segments_rewritten", "\(rewritten)")])
}

func reopenBench(targetBytes: Int) throws {
    let dir = freshDir()
    var log: StreamLog? = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    var i = 0
    // 1 KiB payloads, half random bytes (a pool reused round-robin), so the log is ~1 GiB on disk.
    var lcg: UInt64 = 42
    let pool: [[UInt8]] = (0..<512).map { n in
        var p = jsonPayload(n, size: 512)
        for _ in 0..<64 {
            lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
            withUnsafeBytes(of: lcg) { p += $0 }
        }
        return p
    }
    let start = now()
    while diskBytes(dir) < targetBytes {
        for _ in 0..<64 {
            let b = (0..<64).map { k -> NewMessage in
                NewMessage(subject: "bulk.\(k)", payload: pool[(i + k) % pool.count], timestamp: Int64(i + k))
            }
            try log!.append(b)
            i += 64
        }
    }
    let writeSeconds = now() - start
    try log!.close()
    log = nil
    let bytes = diskBytes(dir)
    var t = now()
    var reopened = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    let clean = now() - t
    let state = try reopened.state()
    // Crash-like reopen: no clean close, so the snapshot is the one from the last segment roll
    // and the whole tail segment is scanned.
    try reopened.append(messages(count: 1000, size: 1024))
    t = now()
    let second = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    let crash = now() - t
    report("reopen", [("disk_bytes", "\(bytes)"), ("msgs", "\(state.messages)"), ("write_s", fmt(writeSeconds, 2)),
                      ("clean_reopen_ms", fmt(clean * 1000, 1)), ("unclean_reopen_ms", fmt(crash * 1000, 1)),
                      ("tail_scanned", "\(second.recoveryReport.fullReplay ? "all" : "tail")")])
    try second.close()
    reopened = second
}

/// Worst case for open: a nearly full 64 MiB tail segment never closed, so all of it is
/// scanned, CRC-checked, decompressed and replayed.
func reopenFullTail() throws {
    let dir = freshDir()
    let log = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    var i = 0
    while diskBytes(dir) < 60 << 20 {
        try log.append(messages(count: 100, size: 1024, start: i).map {
            var m = $0
            m.payload[0..<16] = ArraySlice((0..<16).map { UInt8(truncatingIfNeeded: (i &* 2654435761) >> $0) })
            return m
        })
        i += 100
    }
    let bytes = diskBytes(dir)
    let t = now()
    let second = try StreamLog.open(directory: dir, config: StreamLogConfig(fsync: .never))
    let took = now() - t
    report("reopen_full_tail", [("tail_bytes", "\(bytes)"), ("msgs", "\(i)"), ("reopen_ms", fmt(took * 1000, 1))])
    try second.close()
    try log.close()
}

/// The per-subject index at 1M distinct subjects: append, lookup, clean reopen (the snapshot
/// carries the index), and a KV-style overwrite with max_msgs_per_subject = 1.
func manySubjects(count: Int) throws {
    let dir = freshDir()
    var config = StreamLogConfig(fsync: .never)
    config.limits.maxMessagesPerSubject = 1
    var log = try StreamLog.open(directory: dir, config: config)
    let payload = jsonPayload(1, size: 128)
    var t = now()
    var i = 0
    while i < count {
        try log.append((i..<min(count, i + 1000)).map {
            NewMessage(subject: "kv.bucket.key\($0)", payload: payload, timestamp: Int64($0))
        })
        i += 1000
    }
    let appendRate = Double(count) / (now() - t)
    // Overwrite 100k keys: each put removes the previous revision.
    t = now()
    for j in stride(from: 0, to: 100_000, by: 1000) {
        try log.append((j..<(j + 1000)).map { NewMessage(subject: "kv.bucket.key\($0)", payload: payload, timestamp: Int64($0)) })
    }
    let overwriteRate = 100_000 / (now() - t)
    t = now()
    for k in 0..<10_000 { _ = try log.lastMessage(subject: "kv.bucket.key\((k * 7919) % count)") }
    let lookupUs = (now() - t) / 10_000 * 1e6
    try log.close()
    t = now()
    log = try StreamLog.open(directory: dir, config: config)
    let reopenMs = (now() - t) * 1000
    let st = try log.state()
    report("subjects", [("distinct", "\(st.subjectCount)"), ("msgs", "\(st.messages)"), ("append_msgs_per_s", fmt(appendRate)),
                        ("kv_overwrite_msgs_per_s", fmt(overwriteRate)), ("last_by_subject_us", fmt(lookupUs, 1)),
                        ("reopen_ms", fmt(reopenMs, 1))])
    try log.close()
}

print("# StreamLogBench (\(quick ? "quick" : "full")), data under \(root)")
for size in [128, 1024] where want("append_always") {
    var rates: [Int: Double] = [:]
    for n in [1, 16, 256] {
        rates[n] = try groupCommit(appenders: n, size: size, seconds: quick ? 1 : 2)
        report("append_fsync_always", [("payload", "\(size)B"), ("appenders", "\(n)"), ("msgs_per_s", fmt(rates[n]!))])
    }
    report("group_commit_ratio", [("payload", "\(size)B"), ("mode", "threads"), ("x256_over_x1", fmt(rates[256]! / rates[1]!, 1))])
    var asyncRates: [Int: Double] = [:]
    for n in [1, 16, 256] {
        asyncRates[n] = try groupCommitAsync(appenders: n, size: size, seconds: quick ? 1 : 2)
        report("append_fsync_always_async", [("payload", "\(size)B"), ("appenders", "\(n)"), ("msgs_per_s", fmt(asyncRates[n]!))])
    }
    report("group_commit_ratio", [("payload", "\(size)B"), ("mode", "async"), ("x256_over_x1", fmt(asyncRates[256]! / asyncRates[1]!, 1))])
}
for size in [128, 1024] where want("append_never") {
    for batch in [1, 100] {
        let total = size == 128 ? (batch == 1 ? 300_000 : 2_000_000) : (batch == 1 ? 200_000 : 500_000)
        let (rate, dir) = try appendNever(size: size, batch: batch, total: quick ? total / 10 : total)
        report("append_fsync_never", [("payload", "\(size)B"), ("batch", "\(batch)"), ("msgs_per_s", fmt(rate)),
                                      ("MB_per_s", fmt(rate * Double(size) / 1e6, 1))])
        if batch == 100 && size == 128 { try readBench(dir: dir, count: quick ? total / 10 : total) }
    }
}
for random in [false, true] where want("append_payloads") {
    for (size, batch, total) in [(128, 1, 200_000), (128, 100, 1_000_000), (1024, 1, 100_000), (1024, 100, 200_000)] {
        let r = try appendPayloads(random: random, size: size, batch: batch, total: quick ? total / 10 : total, runs: 3)
        report("append_payloads", [("payload", "\(random ? "random" : "json")_\(size)B"), ("batch", "\(batch)"),
                                   ("msgs_per_s", fmt(r.rate)), ("MB_per_s", fmt(r.rate * Double(size) / 1e6, 1)),
                                   ("disk_pct_of_payload", fmt(r.diskPct, 1))])
    }
}
if want("crc") {
    for size in [64, 1024, 65536] { crcBench(size: size, totalBytes: quick ? 200 << 20 : 1 << 30) }
}
if want("compression") {
    try compression(size: 128, batch: 100, total: 200_000)
    try compression(size: 128, batch: 1, total: 100_000)
    try compression(size: 1024, batch: 100, total: 50_000)
}
if want("reopen") {
    try reopenBench(targetBytes: quick ? 128 << 20 : 1 << 30)
    try reopenFullTail()
}
if want("subjects") { try manySubjects(count: quick ? 200_000 : 1_000_000) }
if want("preallocate") { try preallocationBench(quick: quick) }
