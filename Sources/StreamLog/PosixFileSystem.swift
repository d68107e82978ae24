#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real file system, via POSIX calls (pread/pwrite/fsync/ftruncate/rename/unlink).
public final class PosixFileSystem: FileSystem, @unchecked Sendable {
    /// The pool that file systems created without one share (the server sets it from its
    /// open-files limit at start; nil: every file keeps its descriptor while open).
    public static var sharedPool: FileDescriptorPool?

    /// Caps the descriptors held by this file system's open files (see `FileDescriptorPool`).
    public let pool: FileDescriptorPool?

    public init(pool: FileDescriptorPool? = PosixFileSystem.sharedPool) {
        self.pool = pool
    }

    static func error(_ path: String, _ op: String, _ code: Int32 = errno) -> FileSystemError {
        if code == ENOSPC || code == EDQUOT { return .noSpace(path: path) }
        if code == ENOENT { return .notFound(path: path) }
        return .io(path: path, operation: op, errno: code)
    }

    public func open(_ path: String, create: Bool) throws -> StorageFile {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = Glibc.open(path, flags, 0o644)
        guard fd >= 0 else { throw Self.error(path, "open") }
        guard let pool else { return PosixFile(fd: fd, path: path, pool: nil) }
        let f = PosixFile(fd: -1, path: path, pool: pool)
        pool.adopt(f, fd: fd)
        return f
    }

    public func remove(_ path: String) throws {
        if let pool { return try pool.remove(path) }
        if unlink(path) != 0 && errno != ENOENT { throw Self.error(path, "unlink") }
    }

    public func rename(_ from: String, to: String) throws {
        if let pool { return try pool.rename(from, to: to) }
        if Glibc.rename(from, to) != 0 { throw Self.error(from, "rename") }
    }

    public func list(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else { throw Self.error(directory, "opendir") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Creates every missing directory of `path`, each made durable: a new directory's entry
    /// lives in its parent, so the parent is fsync'd (else a crash can drop the directory
    /// with every fsync'd file in it).
    public func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            let parent = prefix.isEmpty ? "/" : prefix
            prefix += "/" + part
            if mkdir(prefix, 0o755) == 0 {
                try syncDirectory(parent)
            } else if errno != EEXIST {
                throw Self.error(prefix, "mkdir")
            }
        }
    }

    public func syncDirectory(_ directory: String) throws {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error(directory, "open dir") }
        defer { Glibc.close(fd) }
        if fsync(fd) != 0 { throw Self.error(directory, "fsync dir") }
    }

    public func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}

/// An open file. With a pool, its descriptor may be closed while idle and reopened on use
/// (the pool's fields below are guarded by the pool's lock); without, `fd` stays open.
final class PosixFile: StorageFile, @unchecked Sendable {
    var fd: Int32
    var path: String
    let pool: FileDescriptorPool?
    // Pool bookkeeping (see `FileDescriptorPool`).
    var slot = -1
    var referenced = true
    var inUse = 0
    var writesInFlight = 0
    var writesDone: UInt64 = 0
    var writesSynced: UInt64 = 0
    var pinned = false
    var gone = false
    var closed = false

    init(fd: Int32, path: String, pool: FileDescriptorPool?) {
        self.fd = fd
        self.path = path
        self.pool = pool
    }

    deinit { close() }

    /// Runs one system call with this file's descriptor (reopened by the pool if needed).
    private func withDescriptor<T>(writing: Bool = false, _ body: (Int32) throws -> T) throws -> T {
        guard let pool else { return try body(fd) }
        let (fd, _) = try pool.checkOut(self, writing: writing)
        defer { pool.checkIn(self, wrote: writing) }
        return try body(fd)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try withDescriptor(writing: true) { fd in
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw PosixFileSystem.error(path, "pwrite")
                }
                if n == 0 { throw PosixFileSystem.error(path, "pwrite", ENOSPC) }
                done += n
            }
        }
    }

    func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try withDescriptor { fd in
            try out.withUnsafeMutableBytes { buf in
                while done < count {
                    let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw PosixFileSystem.error(path, "pread")
                    }
                    if n == 0 { break }
                    done += n
                }
            }
        }
        if done < count { out.removeLast(count - done) }
        return out
    }

    func sync() throws {
        guard let pool else {
            if fdatasync(fd) != 0 { throw PosixFileSystem.error(path, "fdatasync") }
            return
        }
        let (fd, writes) = try pool.checkOut(self, writing: false)
        defer { pool.checkIn(self, wrote: false) }
        if fdatasync(fd) != 0 { throw PosixFileSystem.error(path, "fdatasync") }
        pool.synced(self, through: writes)
    }

    func truncate(to size: UInt64) throws {
        try withDescriptor(writing: true) { fd in
            if ftruncate(fd, off_t(size)) != 0 { throw PosixFileSystem.error(path, "ftruncate") }
        }
    }

    func size() throws -> UInt64 {
        try withDescriptor { fd in
            var st = stat()
            if fstat(fd, &st) != 0 { throw PosixFileSystem.error(path, "fstat") }
            return UInt64(st.st_size)
        }
    }

    func close() {
        if let pool {
            pool.close(self)
        } else if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}
