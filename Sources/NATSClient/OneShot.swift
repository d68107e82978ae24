import Foundation

extension NSLock {
    /// Runs `body` holding the lock.
    @inline(__always)
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A result that is produced once and awaited once: the completion may come before or after
/// the waiter arrives (a reply can beat `await`). Later completions are ignored, so a timeout
/// racing a reply is harmless.
final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Value, Error>?
    private var continuation: CheckedContinuation<Value, Error>?

    /// Returns false when the result was already set.
    @discardableResult
    func complete(_ newResult: Result<Value, Error>) -> Bool {
        let (accepted, waiter) = lock.locked { () -> (Bool, CheckedContinuation<Value, Error>?) in
            guard result == nil else { return (false, nil) }
            result = newResult
            defer { continuation = nil }
            return (true, continuation)
        }
        waiter?.resume(with: newResult)
        return accepted
    }

    var isCompleted: Bool { lock.locked { result != nil } }

    func wait() async throws -> Value {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Value, Error>) in
            let ready: Result<Value, Error>? = lock.locked {
                if let result { return result }
                precondition(continuation == nil, "OneShot awaited twice")
                continuation = c
                return nil
            }
            if let ready { c.resume(with: ready) }
        }
    }
}
