#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real file system plus a record of everything not yet durable, so that a test can cut
/// the power of a live process: `powerCut()` puts every file back to what its last `sync` made
/// durable and every directory back to its last `syncDirectory`, then the process dies like
/// kill -9. (`FaultyFileSystem` models the same for in-memory tests; this one runs under a
/// real server process, see clusterd's `CLUSTERD_TEST_POWER_CUT` and docs/chaos.md.)
///
/// The model is the strictest a POSIX disk allows: nothing un-synced survives. Per file: its
/// durable length and the old bytes of every write or truncation below it (an undo log, so
/// no copy of the file is kept). Per directory: creations, renames (of files, or of whole
/// directories to a new name) and removals since its last sync, undone in reverse (a replaced or removed file is kept as a hidden hard link until
/// then). Directory creation is durable at once (`makeDirectory` fsyncs the parent, as the
/// real layer does). One lock serializes every operation,
/// fsync included, so a cut never lands in the middle of one: a test-only cost.
public final class PowerCutFileSystem: FileSystem, @unchecked Sendable {
    /// A file's identity on disk: a path can come to name another file through changes made
    /// outside this layer (an install moves a whole directory with FileManager).
    struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
        init(_ st: stat) { device = UInt64(st.st_dev); inode = UInt64(st.st_ino) }
        /// The identity of the file now at `path`, nil when there is none.
        static func of(_ path: String) -> Identity? {
            var st = stat()
            return stat(path, &st) == 0 ? Identity(st) : nil
        }
    }

    /// What is known about one file's content (shared by its handles, moved by renames).
    final class Tracked {
        var durableSize: UInt64
        /// Old bytes of durable ranges overwritten (or cut off) since the last sync, in order.
        var undo: [(offset: UInt64, bytes: [UInt8])] = []
        let identity: Identity?
        init(durableSize: UInt64, identity: Identity?) {
            self.durableSize = durableSize
            self.identity = identity
        }
    }

    /// A directory change to reverse at a cut unless its directory was synced first.
    enum DirectoryUndo {
        /// Created here: remove it (only if the file there is still that one).
        case created(path: String, identity: Identity?)
        /// Renamed `from` -> `to`, replacing the file now kept at `displaced` (if any).
        case renamed(from: String, to: String, displaced: String?)
        /// Removed; the file is kept at `kept` until the directory is synced.
        case removed(path: String, kept: String)
    }

    private let base = PosixFileSystem()
    private let lock = ConditionLock()
    private var files: [String: Tracked] = [:]
    private var directoryUndo: [String: [DirectoryUndo]] = [:]
    private var hiddenCounter = 0
    /// Set by a cut: like after a real reboot, handles and calls from before it fail (EIO).
    private var cut = false
    /// Suffix of the hidden links that keep replaced and removed files (listings skip them).
    public static let hiddenMarker = ".powercut-"

    public init() {}

    /// Fails every call after a cut (lock held).
    private func alive(_ path: String, _ op: String) throws {
        if cut { throw FileSystemError.io(path: path, operation: op + " after power cut", errno: EIO) }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The tracked state of the file at `path`. A file moved here outside this layer keeps
    /// the state tracked under its old path (found by identity); one never seen is created
    /// from the file on disk (durable: what the last cut, or the time before this process,
    /// left there). An entry for another file that was at `path` is dropped, never inherited
    /// (finding 16: a moved-in segment was cut back to the replaced one's size). Lock held.
    private func tracked(_ path: String) -> Tracked {
        var st = stat()
        let exists = stat(path, &st) == 0
        let id = exists ? Identity(st) : nil
        if let t = files[path], t.identity == id { return t }
        if let id, let (old, t) = files.first(where: { $0.value.identity == id && Identity.of($0.key) != id }) {
            files[old] = nil
            files[path] = t
            return t
        }
        let t = Tracked(durableSize: exists ? UInt64(st.st_size) : 0, identity: id)
        files[path] = t
        return t
    }

    /// A hidden hard link to `path` (lock held); nil when `path` does not exist. A process
    /// killed without a cut leaves its hidden links behind (its directories were not synced),
    /// and the next one counts from 1 again: a name taken is skipped. (Before, the link failed
    /// with EEXIST, and a chaos run's replica failed every consumer-record write after that,
    /// restart after restart.)
    private func hide(_ path: String) throws -> String? {
        guard base.fileExists(path) else { return nil }
        while true {
            hiddenCounter += 1
            let kept = path + Self.hiddenMarker + String(hiddenCounter)
            if link(path, kept) == 0 {
                files[kept] = files.removeValue(forKey: path)
                return kept
            }
            if errno != EEXIST { throw PosixFileSystem.error(path, "link") }
        }
    }

    public func open(_ path: String, create: Bool) throws -> StorageFile {
        try lock.withLock {
            try alive(path, "open")
            let existed = base.fileExists(path)
            let file = try base.open(path, create: create)
            if !existed {
                let id = Identity.of(path)
                files[path] = Tracked(durableSize: 0, identity: id)
                directoryUndo[Self.directory(of: path), default: []].append(.created(path: path, identity: id))
            }
            return PowerCutFile(fs: self, file: file, state: tracked(path), path: path)
        }
    }

    public func remove(_ path: String) throws {
        try lock.withLock {
            try alive(path, "unlink")
            guard let kept = try hide(path) else { return }
            try base.remove(path)
            directoryUndo[Self.directory(of: path), default: []].append(.removed(path: path, kept: kept))
        }
    }

    public func rename(_ from: String, to: String) throws {
        try lock.withLock {
            try alive(from, "rename")
            let displaced = try hide(to)
            try base.rename(from, to: to)
            files[to] = files.removeValue(forKey: from)
            // A directory: what is tracked inside it moves with it.
            let prefix = from + "/"
            for (path, t) in files where path.hasPrefix(prefix) {
                files[path] = nil
                files[to + "/" + path.dropFirst(prefix.count)] = t
            }
            directoryUndo[Self.directory(of: to), default: []].append(.renamed(from: from, to: to, displaced: displaced))
        }
    }

    public func list(_ directory: String) throws -> [String] {
        try base.list(directory).filter { !$0.contains(Self.hiddenMarker) }
    }

    /// Durable at once, as on the real disk: `PosixFileSystem.makeDirectory` fsyncs the parent
    /// of every directory it creates.
    public func makeDirectory(_ path: String) throws {
        try lock.withLock {
            try alive(path, "mkdir")
            try base.makeDirectory(path)
        }
    }

    public func syncDirectory(_ directory: String) throws {
        try lock.withLock {
            try alive(directory, "fsync dir")
            try base.syncDirectory(directory)
            for u in directoryUndo.removeValue(forKey: directory) ?? [] {
                switch u {
                case .created: break
                case let .renamed(_, _, displaced?): dropHidden(displaced)
                case .renamed: break
                case let .removed(_, kept): dropHidden(kept)
                }
            }
        }
    }

    private func dropHidden(_ path: String) {
        unlink(path)
        files[path] = nil
    }

    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }

    // MARK: - file operations (called by PowerCutFile)

    func write(_ file: StorageFile, _ t: Tracked, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try lock.withLock {
            try alive("", "pwrite")
            if offset < t.durableSize {
                let n = Int(min(UInt64(bytes.count), t.durableSize - offset))
                t.undo.append((offset, try file.read(count: n, at: offset)))
            }
            try file.write(bytes, at: offset)
        }
    }

    func truncate(_ file: StorageFile, _ t: Tracked, to size: UInt64) throws {
        try lock.withLock {
            try alive("", "ftruncate")
            if size < t.durableSize {
                t.undo.append((size, try file.read(count: Int(t.durableSize - size), at: size)))
            }
            try file.truncate(to: size)
        }
    }

    func sync(_ file: StorageFile, _ t: Tracked) throws {
        try lock.withLock {
            try alive("", "fsync")
            try file.sync()
            t.durableSize = try file.size()
            t.undo = []
        }
    }

    func read(_ file: StorageFile, count: Int, at offset: UInt64) throws -> [UInt8] {
        try lock.withLock {
            try alive("", "pread")
            return try file.read(count: count, at: offset)
        }
    }

    func size(_ file: StorageFile) throws -> UInt64 {
        try lock.withLock {
            try alive("", "fstat")
            return try file.size()
        }
    }

    // MARK: - the cut

    /// Puts every file and directory back to its durable state; every later call through this
    /// file system or its handles fails with EIO (a process would not survive a power cut).
    /// Returns what it undid. `powerCutAndDie` is the version for a live server.
    @discardableResult
    public func powerCut() -> (files: Int, bytesDropped: UInt64, directoryChanges: Int) {
        lock.withLock { undoEverything() }
    }

    /// Lock held.
    private func undoEverything() -> (files: Int, bytesDropped: UInt64, directoryChanges: Int) {
        cut = true
        var touched = 0
        var dropped: UInt64 = 0
        for (path, t) in files {
            var st = stat()
            // Gone, or another file now (moved in outside this layer): not this record's file.
            guard stat(path, &st) == 0, t.identity == nil || t.identity == Identity(st) else { continue }
            let size = UInt64(st.st_size)
            guard size != t.durableSize || !t.undo.isEmpty else { continue }
            touched += 1
            if size > t.durableSize { dropped += size - t.durableSize }
            let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            _ = ftruncate(fd, off_t(t.durableSize))
            // Newest first, so the oldest (the durable bytes) are written last.
            for u in t.undo.reversed() {
                _ = u.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(u.offset)) }
            }
            Glibc.close(fd)
        }
        var changes = 0
        for (_, undos) in directoryUndo {
            for u in undos.reversed() {
                changes += 1
                switch u {
                case let .created(path, id):
                    if id == nil || Identity.of(path) == id { unlink(path) }
                case let .renamed(from, to, displaced):
                    Glibc.rename(to, from)
                    if let displaced { Glibc.rename(displaced, to) }
                case let .removed(path, kept): Glibc.rename(kept, path)
                }
            }
        }
        Glibc.sync()
        return (touched, dropped, changes)
    }

    /// `powerCut()`, then SIGKILL to this process: it ends as if the machine lost power. The
    /// lock stays held, so no other thread of the process touches a file in between.
    public func powerCutAndDie() -> Never {
        lock.lock()
        let u = undoEverything()
        // Plain stdio: the process's logger may be blocked behind the lock just taken.
        fputs("power cut: of \(files.count) files written, \(u.files) put back to their last fsync (\(u.bytesDropped) bytes past it dropped), \(u.directoryChanges) directory changes undone\n", stderr)
        fflush(stderr)
        kill(getpid(), SIGKILL)
        while true { pause() }
    }
}

/// A handle whose every operation goes through the owning `PowerCutFileSystem`'s bookkeeping.
final class PowerCutFile: StorageFile, @unchecked Sendable {
    let fs: PowerCutFileSystem
    let file: StorageFile
    let state: PowerCutFileSystem.Tracked
    let path: String

    init(fs: PowerCutFileSystem, file: StorageFile, state: PowerCutFileSystem.Tracked, path: String) {
        self.fs = fs
        self.file = file
        self.state = state
        self.path = path
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws { try fs.write(file, state, bytes, at: offset) }
    func read(count: Int, at offset: UInt64) throws -> [UInt8] { try fs.read(file, count: count, at: offset) }
    func sync() throws { try fs.sync(file, state) }
    func truncate(to size: UInt64) throws { try fs.truncate(file, state, to: size) }
    func size() throws -> UInt64 { try fs.size(file) }
    func close() { file.close() }
}
