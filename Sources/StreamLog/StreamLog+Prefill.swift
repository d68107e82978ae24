/// Zero-filling the tail ahead of the appends on another thread.
///
/// A preallocating log (`StreamLogConfig.preallocateBytes`) used to write each step of zeros
/// inside the append that reached the end of the filled space. For a Raft log that append runs
/// on the server's JetStream queue, and the fill is not cheap: a 512 KiB step took 1–2 ms on
/// this machine's fresh page cache (0.16 ms once the pages were recycled), 7% of a
/// three-node cluster's CPU samples under a publish load, all of it holding up the queue.
/// `prefillJob` hands the next step to a thread of the caller's choosing once less than half a
/// step of filled space is left, so the appends normally never fill inline.
///
/// The fill fsyncs its zeros (off that thread as well), so the appends' own syncs find them clean.
///
/// Safety: while a fill runs (`fillInFlight`), it alone writes at or after the tail's
/// `allocated` end. An append that would reach that far, a cut of the tail (truncation, a
/// failed write, sealing) and `close` wait for it first (`awaitFill`). The fill writes zeros
/// only, which recovery already reads as unused space, so a crash in the middle is harmless.
extension StreamLog {
    /// A job that extends the tail's file with the next step of zeros, or nil when no fill is
    /// due (preallocation off, at least half a step left, a fill running, the log closed or
    /// failed). Run it on any thread; it takes the log's lock only to finish.
    public func prefillJob() -> (() -> Void)? {
        lock.withLock {
            let step = config.preallocateBytes
            guard step > 0, !fillInFlight, !isClosed, failure == nil, let t = segments.last, !t.sealed,
                  t.allocated >= t.size, t.allocated - t.size < step / 2 else { return nil }
            let from = t.allocated
            let count = Int(min(step, max(4096, from)))
            let file = t.file
            let syncs = config.fsync != .never
            fillInFlight = true
            return { [self] in
                let written = (try? Self.writeZeros(file, at: from, count: count)) != nil
                // The zeros are made durable here too: left dirty, the next sync of the appends
                // would write them out first (p99 of an fsync after a fill 0.44–0.71 ms, with
                // this 0.18–0.22 ms; throwaway C test of this disk).
                var syncError: Error?
                if written && syncs {
                    do { try file.sync() } catch { syncError = error }
                }
                lock.withLock {
                    if written {
                        t.allocated = max(t.allocated, from + UInt64(count))
                    } else {
                        // A full disk: give back what was written, as the inline fill does.
                        try? file.truncate(to: from)
                    }
                    if let syncError {
                        // This fsync may be the one that saw a write-back error of the appends
                        // (Linux reports it once per open file): the log fails, as after a
                        // failed sync of its own, so the error is never lost.
                        failure = failure ?? "fsync failed: \(syncError)"
                    }
                    fillInFlight = false
                    lock.broadcast()
                }
                if syncError != nil { completeWaiters() }
            }
        }
    }

    /// Waits (lock held) until no zero-fill runs.
    func awaitFill() {
        var rounds = 0
        if fillInFlight { fillWaits += 1 }
        while fillInFlight {
            lock.wait(timeoutNanos: 100_000_000)
            rounds += 1
            precondition(rounds < 36_000, "zero-fill wait exceeded one hour")
        }
    }

    /// Writes `count` zeros at `offset` (from the shared buffer, in chunks of its size).
    static func writeZeros(_ file: StorageFile, at offset: UInt64, count: Int) throws {
        try zeros.withUnsafeBytes { zeros in
            var written = 0
            while written < count {
                let n = min(count - written, zeros.count)
                try file.write(UnsafeRawBufferPointer(rebasing: zeros[..<n]), at: offset + UInt64(written))
                written += n
            }
        }
    }
}
