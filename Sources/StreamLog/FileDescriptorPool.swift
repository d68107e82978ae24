#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Caps the descriptors that the files of `PosixFileSystem`s keep open: thousands of streams
/// each hold a store and a Raft log, most of them idle, and a process may only open so many
/// files (`ulimit -n`). Past the cap the least recently used file's descriptor is closed
/// (clock order) and reopened by path on its next use.
///
/// Never closed: a file in use on another thread, or one whose name was renamed over or removed
/// (its path no longer leads to it). Files with writes not fsync'd yet close only when no
/// clean one can (their pages stay in the page cache; Linux reports a writeback error to the
/// next fsync even through a new descriptor, but closing clean files first keeps that rare).
/// When nothing may be closed the cap is exceeded rather than an operation refused.
public final class FileDescriptorPool: @unchecked Sendable {
    /// The most descriptors kept open (a soft target, see above).
    public let limit: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Files holding a descriptor, in clock order. Weak: a file its owner dropped closes as it
    /// goes away (its deinit calls `close`, re-entering the lock: the mutex is recursive).
    private var open: [OpenEntry] = []
    private var hand = 0
    /// Every live pooled file by path (for renames and removals).
    private var byPath: [String: [WeakFile]] = [:]
    private var reopenCount = 0

    private struct WeakFile { weak var file: PosixFile? }
    private struct OpenEntry {
        weak var file: PosixFile?
        /// Still right while the file's deinit runs (when `file` already reads nil).
        let id: ObjectIdentifier
    }

    public init(limit: Int) {
        self.limit = max(1, limit)
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attr)
        pthread_mutexattr_destroy(&attr)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Descriptors held right now.
    public var openCount: Int { locked { open.count } }
    /// How many times a closed file was opened again (for tests and monitoring).
    public var reopens: Int { locked { reopenCount } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    // MARK: - the files' side

    /// A file just opened with `fd`.
    func adopt(_ f: PosixFile, fd: Int32) {
        locked {
            makeRoom(sparing: f)
            f.fd = fd
            insertOpen(f)
            byPath[f.path, default: []].append(WeakFile(file: f))
        }
    }

    /// The descriptor to use for one operation; `checkIn` must follow. Reopens the file if its
    /// descriptor was closed. Returns the writes completed so far (what a sync now covers).
    func checkOut(_ f: PosixFile, writing: Bool) throws -> (fd: Int32, writes: UInt64) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if f.closed { throw FileSystemError.io(path: f.path, operation: "use after close", errno: EBADF) }
        if f.fd < 0 {
            if f.gone { throw FileSystemError.notFound(path: f.path) }
            makeRoom(sparing: f)
            let fd = Glibc.open(f.path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw PosixFileSystem.error(f.path, "reopen") }
            f.fd = fd
            insertOpen(f)
            reopenCount += 1
        }
        f.referenced = true
        f.inUse += 1
        if writing { f.writesInFlight += 1 }
        return (f.fd, f.writesDone)
    }

    func checkIn(_ f: PosixFile, wrote: Bool) {
        locked {
            f.inUse -= 1
            if wrote {
                f.writesInFlight -= 1
                f.writesDone += 1
            }
        }
    }

    /// An fsync covering every write completed before its check-out succeeded.
    func synced(_ f: PosixFile, through writes: UInt64) {
        locked { f.writesSynced = max(f.writesSynced, writes) }
    }

    /// The file is closed for good (by its owner, or as it goes away).
    func close(_ f: PosixFile) {
        locked {
            guard !f.closed else { return }
            f.closed = true
            if f.fd >= 0 {
                Glibc.close(f.fd)
                f.fd = -1
                removeOpen(f)
            }
            // From a deinit the weak reference to `f` already reads nil.
            byPath[f.path]?.removeAll { $0.file == nil || $0.file === f }
            if byPath[f.path]?.isEmpty == true { byPath[f.path] = nil }
        }
    }

    // MARK: - the file system's side

    /// Renames `from` to `to` on disk, keeping the pooled files right: those opened as `from`
    /// now live at `to`; those that were `to` lost their name (kept open if they are, else gone).
    func rename(_ from: String, to: String) throws {
        try locked {
            if Glibc.rename(from, to) != 0 { throw PosixFileSystem.error(from, "rename") }
            guard from != to else { return }
            unname(to)
            if let moved = byPath.removeValue(forKey: from) {
                for w in moved { w.file?.path = to }
                byPath[to, default: []].append(contentsOf: moved)
            }
        }
    }

    /// Removes `path` on disk; its pooled files keep their descriptor if they have one.
    func remove(_ path: String) throws {
        try locked {
            if unlink(path) != 0 && errno != ENOENT { throw PosixFileSystem.error(path, "unlink") }
            unname(path)
        }
    }

    private func unname(_ path: String) {
        guard let files = byPath.removeValue(forKey: path) else { return }
        for case let f? in files.map(\.file) {
            if f.fd >= 0 { f.pinned = true } else { f.gone = true }
        }
    }

    // MARK: - clock

    private func insertOpen(_ f: PosixFile) {
        f.slot = open.count
        open.append(OpenEntry(file: f, id: ObjectIdentifier(f)))
    }

    /// Takes `f` out of the clock. By identity, not by the weak reference (from a deinit it
    /// reads nil); the slot is a hint (a file moved while its deinit ran has a stale one).
    private func removeOpen(_ f: PosixFile) {
        let id = ObjectIdentifier(f)
        var i = f.slot
        if !(i >= 0 && i < open.count && open[i].id == id) {
            guard let found = open.firstIndex(where: { $0.id == id }) else { return }
            i = found
        }
        let last = open.removeLast()
        if i < open.count {
            open[i] = last
            last.file?.slot = i
        }
        f.slot = -1
        if hand >= open.count { hand = 0 }
    }

    /// Closes descriptors until one more fits under the limit (or nothing more may close):
    /// files without unsynced writes first, then, if that was not enough, idle ones with them.
    private func makeRoom(sparing keep: PosixFile) {
        for allowDirty in [false, true] {
            var steps = 2 * open.count
            while open.count >= limit && steps > 0 {
                steps -= 1
                if hand >= open.count { hand = 0 }
                guard let f = open[hand].file else {
                    hand += 1 // going away right now: its deinit removes it
                    continue
                }
                if f === keep || f.inUse > 0 || f.pinned || (!allowDirty && f.writesDone != f.writesSynced) {
                    hand += 1
                    continue
                }
                if f.referenced {
                    f.referenced = false
                    hand += 1
                    continue
                }
                Glibc.close(f.fd)
                f.fd = -1
                removeOpen(f) // the last file moved into `hand`: look at it next
            }
        }
    }
}
