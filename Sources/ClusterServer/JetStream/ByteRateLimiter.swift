/// A push consumer's `rate_limit_bps` (nats-server: a token bucket of `bps / 8` bytes a second
/// holding at most a burst of the largest message the stream allows). Pure: the caller passes
/// the time.
struct ByteRateLimiter: Equatable {
    let bytesPerSecond: Double
    let burst: Double
    private var tokens: Double
    private var filledAt: Int64?

    /// nil for no limit (`bitsPerSecond` 0, or below 8: less than a byte a second).
    init?(bitsPerSecond: UInt64, burst: Int) {
        guard bitsPerSecond >= 8 else { return nil }
        bytesPerSecond = Double(bitsPerSecond / 8)
        self.burst = Double(max(burst, 1))
        tokens = self.burst
    }

    /// 0 when `size` bytes may go now (they are taken); else the nanoseconds until they may
    /// (nothing taken: ask again then). A message larger than the burst waits for a full
    /// bucket and empties it.
    mutating func take(_ size: Int, now: Int64) -> Int64 {
        if let filledAt, now > filledAt {
            tokens = min(burst, tokens + Double(now - filledAt) * bytesPerSecond / 1e9)
        }
        if filledAt == nil || now > filledAt! { filledAt = now }
        let need = min(Double(size), burst)
        guard tokens >= need else {
            return max(1, Int64(((need - tokens) / bytesPerSecond * 1e9).rounded(.up)))
        }
        tokens -= need
        return 0
    }
}
