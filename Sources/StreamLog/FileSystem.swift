/// The file-I/O seam: everything the log does to storage goes through these two protocols,
/// so tests can swap in `FaultyFileSystem` (torn writes, power loss, bit flips, ENOSPC, EIO).
public protocol FileSystem: AnyObject {
    /// Opens (and with `create`, creates) a regular file for reading and writing.
    func open(_ path: String, create: Bool) throws -> StorageFile
    /// Removes a file; removing a missing file is not an error.
    func remove(_ path: String) throws
    /// Atomically replaces the file `to` with `from`; a directory `from` moves to a `to` that
    /// does not exist (durable once the parent of `to` is synced).
    func rename(_ from: String, to: String) throws
    /// Names (not paths) of the entries of a directory.
    func list(_ directory: String) throws -> [String]
    /// Creates a directory and its parents when missing.
    func makeDirectory(_ path: String) throws
    /// Makes creations, renames and removals in `directory` durable.
    func syncDirectory(_ directory: String) throws
    func fileExists(_ path: String) -> Bool
}

/// An open file. Offsets are absolute (pread/pwrite); no shared cursor, so readers never race.
public protocol StorageFile: AnyObject {
    /// Writes all of `bytes` at `offset` or throws (a failed write may have written a prefix).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    func read(count: Int, at offset: UInt64) throws -> [UInt8]
    /// fsync: everything written so far survives power loss once this returns.
    func sync() throws
    func truncate(to size: UInt64) throws
    func size() throws -> UInt64
    func close()
}

extension FileSystem {
    /// Replaces `directory/name` atomically and durably (write a temp file, fsync, rename,
    /// fsync the directory): a crash leaves the old or the new file.
    public func writeAtomically(_ bytes: [UInt8], directory: String, name: String) throws {
        let path = joinPath(directory, name)
        let tmp = path + ".tmp"
        let f = try open(tmp, create: true)
        defer { f.close() }
        try f.truncate(to: 0)
        try bytes.withUnsafeBytes { try f.write($0, at: 0) }
        try f.sync()
        try rename(tmp, to: path)
        try syncDirectory(directory)
    }
}

extension StorageFile {
    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }
}

/// Storage failures, with the errno class that matters to callers kept distinct.
public enum FileSystemError: Error, Equatable, CustomStringConvertible {
    /// ENOSPC / EDQUOT: the device is full; the log stays readable and retries may succeed later.
    case noSpace(path: String)
    /// EIO and other hard errors.
    case io(path: String, operation: String, errno: Int32)
    case notFound(path: String)

    public var description: String {
        switch self {
        case .noSpace(let p): return "no space left on device (\(p))"
        case .io(let p, let op, let e): return "I/O error in \(op) on \(p) (errno \(e))"
        case .notFound(let p): return "file not found: \(p)"
        }
    }
}

/// Joins a directory and a file name.
func joinPath(_ dir: String, _ name: String) -> String {
    dir.hasSuffix("/") ? dir + name : dir + "/" + name
}
