/// What becomes of the segments a compaction drops (`StreamLogConfig.defersFileRemoval`):
/// removed off the owner's thread, or kept as spares that later tail segments take over.
///
/// Why spares: on this machine (a VM whose kernel hands freed pages back to the host) writing
/// into file pages that are not cached yet is the dearest part of a write. Under a publish load
/// the page-cache copy of the Raft log's zero-fill alone took 9% of a three-node cluster's CPU
/// samples, and a 512 KiB step of zeros took 1.96 ms on new pages against 0.16 ms on cached
/// ones (throwaway C test). A dropped segment's pages are still cached: zeroing them and
/// handing the file to the next tail replaces that growth by an overwrite, and saves the
/// unlink (about 5 ms for a cached 16 MiB file).
///
/// Safety: a spare holds zeros only, fsync'd before it is renamed to `<name>.spare`, so a
/// tail that takes it over reads as preallocated space at open, exactly like a zero-filled
/// tail. A crash leaves `.dropped` or `.spare` files, which open removes (spares are reused
/// only by the log that made them).
///
/// Idle logs let theirs go (`releaseIdleSpares`): a log that stops after a burst would
/// otherwise hold up to `spareSegments` segments of disk until it closes, and a node can hold
/// thousands of such logs.
extension StreamLog {
    /// Turns the segments a compaction dropped into spares (up to `spareSegments`, counting
    /// those ready) and removes the rest, on any thread; nil when nothing was dropped. A
    /// closed log only removes them.
    public func removalJob() -> (() -> Void)? {
        lock.withLock {
            guard !droppedFiles.isEmpty else { return nil }
            let paths = droppedFiles
            droppedFiles = []
            let keep = isClosed ? 0 : min(paths.count, max(0, config.spareSegments - spareFiles.count - sparesInFlight))
            sparesInFlight += keep
            let fs = self.fs, syncs = config.fsync != .never
            return { [self] in
                for (i, path) in paths.enumerated() {
                    guard i < keep else {
                        try? fs.remove(path)
                        continue
                    }
                    let spare = Self.makeSpare(path, fs: fs, syncs: syncs)
                    if spare == nil { try? fs.remove(path) }
                    lock.withLock {
                        if let spare { spareFiles.append(spare) }
                        sparesInFlight -= 1
                        lock.broadcast()
                    }
                }
            }
        }
    }

    /// Zeroes a dropped segment file over its whole size, fsyncs it and renames it to a spare
    /// name; nil when any step fails (the caller removes it).
    static func makeSpare(_ path: String, fs: FileSystem, syncs: Bool) -> String? {
        let spare = String(path.dropLast(droppedSuffix.count)) + spareSuffix
        do {
            let file = try fs.open(path, create: false)
            defer { file.close() }
            try writeZeros(file, at: 0, count: Int(try file.size()))
            if syncs { try file.sync() }
            try fs.rename(path, to: spare)
            return spare
        } catch {
            return nil
        }
    }

    /// A spare renamed to `path` as a new tail segment, its zeros counted as allocated; nil
    /// when there is none (or it cannot be taken over: it is removed, and a new file made).
    func takeOverSpare(as path: String, base: UInt64) throws -> Segment? {
        // The oldest first: spares rotate, so one untaken for a whole `releaseIdleSpares`
        // round means the log has more than it uses.
        while !spareFiles.isEmpty {
            let spare = spareFiles.removeFirst()
            do {
                try fs.rename(spare, to: path)
                let file = try fs.open(path, create: false)
                let seg = Segment(base: base, path: path, file: file)
                seg.allocated = try file.size()
                return seg
            } catch {
                try? fs.remove(spare)
                try? fs.remove(path)
            }
        }
        return nil
    }

    /// Removes the spares that were ready at the previous call and are still untaken, and
    /// remembers those ready now for the next call; nil when there is nothing to remove (or
    /// the log is closed: `close` gave its spares up). The owner calls it now and then (every
    /// 60 s in a cluster) and runs the returned job on a thread of its choosing: a busy log
    /// keeps the spares it takes over within a round, an idle one keeps none after two rounds.
    public func releaseIdleSpares() -> (() -> Void)? {
        lock.withLock {
            guard !isClosed else { return nil }
            let idle = spareFiles.filter { sparesSeenIdle.contains($0) }
            spareFiles.removeAll { sparesSeenIdle.contains($0) }
            sparesSeenIdle = Set(spareFiles)
            guard !idle.isEmpty else { return nil }
            let fs = self.fs
            return { for path in idle { try? fs.remove(path) } }
        }
    }

    /// Waits (lock held) until no dropped file is being turned into a spare.
    func awaitSpares() {
        var rounds = 0
        while sparesInFlight > 0 {
            lock.wait(timeoutNanos: 100_000_000)
            rounds += 1
            precondition(rounds < 36_000, "spare wait exceeded one hour")
        }
    }
}
