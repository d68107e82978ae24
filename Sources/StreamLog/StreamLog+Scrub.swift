/// Scrubbing: CRC-checking sealed segments block by block while the log is in use.
///
/// `open` trusts a sealed segment's index file and reads none of its blocks, so a flipped byte
/// there stays unseen until a read hits it. A scrub reads every block of one sealed segment
/// (through the same block table reads use) under the lock, one segment per call, so
/// appends wait for at most one segment's read.
extension StreamLog {
    /// First sequences of the sealed segments (every segment but the tail), oldest first.
    public func sealedSegmentBases() -> [UInt64] {
        lock.withLock { segments.dropLast().map(\.base) }
    }

    /// Verifies every block of the sealed segment starting at `base`. Returns the first bad
    /// block's range, or nil when the segment is sound or no longer exists (compacted or
    /// rewritten since it was listed).
    public func verifySegment(base: UInt64) throws -> CorruptRange? {
        try lock.withLock {
            if isClosed { throw StreamLogError.closed }
            return try mapErrors {
                guard let seg = segments.dropLast().first(where: { $0.base == base }) else { return nil }
                for ref in seg.blocks {
                    do { _ = try seg.readBlock(ref) } catch StreamLogError.corrupt(let r) { return r }
                }
                return nil
            }
        }
    }
}
