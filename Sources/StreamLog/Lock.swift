#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with two condition variables: `wait`/`broadcast` for durability waiters,
/// `waitForWork`/`signalWork` for the sync thread. Two of them so that an append wakes only the
/// sync thread, not every appender parked on durability (no thundering herd under group commit).
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let workCond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        pthread_cond_init(workCond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_cond_destroy(workCond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        workCond.deallocate()
        mutex.deallocate()
    }

    /// Wakes the sync thread (lock held).
    func signalWork() { pthread_cond_signal(workCond) }

    /// The sync thread's wait (lock held).
    func waitForWork(timeoutNanos: Int64?) { wait(workCond, timeoutNanos) }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (lock held) until signalled or `timeoutNanos` passes (nil: no timeout).
    func wait(timeoutNanos: Int64?) { wait(cond, timeoutNanos) }

    private func wait(_ cond: UnsafeMutablePointer<pthread_cond_t>, _ timeoutNanos: Int64?) {
        guard let timeoutNanos else {
            pthread_cond_wait(cond, mutex)
            return
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = Int64(now.tv_nsec) + timeoutNanos
        var deadline = timespec()
        deadline.tv_sec = now.tv_sec + Int(total / 1_000_000_000)
        deadline.tv_nsec = Int(total % 1_000_000_000)
        pthread_cond_timedwait(cond, mutex, &deadline)
    }

    func broadcast() { pthread_cond_broadcast(cond) }
}
