import Foundation
import StreamLog

/// What tail preallocation buys an fsync: `writers` logs side by side (like the three replicas
/// of a cluster on one disk), each appending `batch` messages of `size` bytes (one block, a
/// Raft round) and then fsync-ing (`.manual`, as Raft logs do), `rounds` times. Returns the
/// fsync latencies in milliseconds, sorted.
func preallocationSyncs(preallocate: UInt64, writers: Int, rounds: Int, batch: Int = 100, size: Int = 128) throws -> [Double] {
    let logs = try (0..<writers).map { _ in
        try StreamLog.open(directory: freshDir(), config: StreamLogConfig(fsync: .manual, compression: false,
                                                                           preallocateBytes: preallocate))
    }
    let block = messages(count: batch, size: size)
    final class Latencies: @unchecked Sendable {
        let lock = NSLock()
        var all: [Double] = []
        func add(_ more: [Double]) { lock.lock(); all += more; lock.unlock() }
    }
    let latencies = Latencies()
    let group = DispatchGroup()
    for log in logs {
        group.enter()
        let t = Thread {
            var mine: [Double] = []
            mine.reserveCapacity(rounds)
            for _ in 0..<rounds {
                _ = try? log.append(block)
                let t0 = now()
                try? log.sync()
                mine.append((now() - t0) * 1000)
            }
            latencies.add(mine)
            group.leave()
        }
        t.stackSize = 256 << 10
        t.start()
    }
    group.wait()
    for log in logs { try log.close() }
    return latencies.all.sorted()
}

/// Alternates preallocation off and on (so drift in the disk's speed falls on both) and
/// prints one line per run.
func preallocationBench(quick: Bool) throws {
    for run in 1...2 {
        for step: UInt64 in [0, 512 << 10] {
            let ms = try preallocationSyncs(preallocate: step, writers: 3, rounds: quick ? 300 : 1500)
            let mean = ms.reduce(0, +) / Double(max(1, ms.count))
            func pct(_ p: Double) -> Double { ms.isEmpty ? 0 : ms[min(ms.count - 1, Int(Double(ms.count) * p))] }
            report("fsync_after_append", [("run", "\(run)"), ("preallocate", step == 0 ? "off" : "\(step >> 10)KiB"),
                                          ("writers", "3"), ("block", "100x128B"), ("p50_ms", fmt(pct(0.5), 3)),
                                          ("mean_ms", fmt(mean, 3)), ("p99_ms", fmt(pct(0.99), 3))])
        }
    }
}
