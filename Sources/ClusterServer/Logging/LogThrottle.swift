import Foundation

/// Folds a repeated log line (hostile clients can trigger them at wire speed): at most one
/// line per `interval`, telling how many were folded since the last one. Not thread-safe:
/// the owner holds a lock.
struct LogThrottle {
    private var last = Date.distantPast
    private var suppressed = 0
    let interval: TimeInterval

    init(interval: TimeInterval = 1) { self.interval = interval }

    /// The suffix to append to the line if it should be logged now, else nil (counted).
    mutating func admit(now: Date) -> String? {
        if now.timeIntervalSince(last) < interval {
            suppressed += 1
            return nil
        }
        let folded = suppressed
        suppressed = 0
        last = now
        return folded > 0 ? " (\(folded) more since last report)" : ""
    }
}
