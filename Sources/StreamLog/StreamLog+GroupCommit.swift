#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Group commit: one sync thread per log (for `.always` and `.interval`). It takes the highest
/// written ticket, fsyncs the tail outside the lock, then completes every batch up to that
/// ticket. Batches written while an fsync runs share the next one. An fsync error is sticky:
/// waiters fail and the log refuses writes (the page cache may have dropped the data).
extension StreamLog {
    func startSyncThreadIfNeeded() {
        guard config.fsync != .never && config.fsync != .manual else { return }
        lock.withLock { syncThreadRunning = true }
        // The thread keeps the log alive until `close` stops it (so a log with a sync thread
        // must be closed; one with `.never` is also closed by deinit).
        let box = Unmanaged.passRetained(ThreadBody { self.syncLoop() })
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    func stopSyncThread() {
        lock.withLock {
            stopSync = true
            lock.signalWork()
            var rounds = 0
            while syncThreadRunning && rounds < 600 {
                lock.wait(timeoutNanos: 10_000_000)
                rounds += 1
            }
        }
        completeWaiters()
    }

    func syncLoop() {
        lock.lock()
        defer {
            syncThreadRunning = false
            lock.broadcast()
            lock.unlock()
        }
        var lastSyncNanos = StreamLog.monotonicNanos()
        while !stopSync {
            guard writtenTicket > durableTicket, failure == nil else {
                lock.waitForWork(timeoutNanos: nil)  // writes and close signal
                continue
            }
            if case .interval(let every) = config.fsync {
                let due = lastSyncNanos + every - StreamLog.monotonicNanos()
                if due > 0 {
                    lock.waitForWork(timeoutNanos: due)
                    continue
                }
            }
            let target = writtenTicket
            let file = tail.file
            lock.unlock()
            var syncError: Error?
            do { try file.sync() } catch { syncError = error }
            lastSyncNanos = StreamLog.monotonicNanos()
            lock.lock()
            if let syncError {
                failure = "fsync failed: \(syncError)"
            } else {
                durableTicket = max(durableTicket, target)
            }
            lock.broadcast()
            lock.unlock()
            completeWaiters()
            lock.lock()
        }
    }

    /// Completes (outside the lock) every waiter that is durable, or all of them on failure/close.
    func completeWaiters() {
        var done: [((Result<Void, StreamLogError>) -> Void, Result<Void, StreamLogError>)] = []
        lock.withLock {
            var keep: [(ticket: UInt64, done: (Result<Void, StreamLogError>) -> Void)] = []
            for w in waiters {
                if w.ticket <= durableTicket {
                    done.append((w.done, .success(())))
                } else if let failure {
                    done.append((w.done, .failure(.failed(failure))))
                } else if isClosed {
                    done.append((w.done, .failure(.closed)))  // close could not make it durable
                } else {
                    keep.append(w)
                }
            }
            waiters = keep
        }
        for (callback, outcome) in done { callback(outcome) }
    }

    /// Makes every write so far durable with one fsync of the tail, on the caller's thread and
    /// outside the lock, then completes the `onDurable` callbacks it covers. This is how a
    /// `.manual` log becomes durable; with `.always`/`.interval` it fsyncs now rather than
    /// waiting for the sync thread; with `.never` it does nothing. A failed fsync is sticky (as
    /// on the sync thread): it throws `.failed` now and the log refuses writes until reopened.
    public func sync() throws {
        let pending: (target: UInt64, file: StorageFile)? = try lock.withLock {
            if let failure { throw StreamLogError.failed(failure) }
            guard config.fsync != .never, writtenTicket > durableTicket else { return nil }
            // Writes up to this ticket are in the tail or in sealed segments (fsync'd on roll).
            return (writtenTicket, tail.file)
        }
        guard let pending else { return }
        var syncError: Error?
        do { try pending.file.sync() } catch { syncError = error }
        let failed: String? = lock.withLock {
            if let syncError {
                failure = failure ?? "fsync failed: \(syncError)"
            } else {
                durableTicket = max(durableTicket, pending.target)
            }
            lock.broadcast()
            return syncError == nil ? nil : failure
        }
        completeWaiters()
        if let failed { throw StreamLogError.failed(failed) }
    }

    /// fsyncs the tail under the lock (rare structural operations) and marks all writes durable.
    func syncTailNow() throws {
        if config.fsync != .never { try tail.file.sync() }
        durableTicket = writtenTicket
        lock.broadcast()
    }

    static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
