#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An in-memory file system for tests (and for `storage: memory` logs) that models what a real
/// disk may do on a crash: each file has a durable image (as of its last `sync`) and a list of
/// un-synced operations; the directory has a durable name table (as of the last
/// `syncDirectory`). `powerLoss` keeps a random prefix of the un-synced operations, tearing the
/// last kept write at a random byte. Faults: a space limit (ENOSPC), one-shot EIO per operation
/// kind, and bit flips in stored bytes. Thread-safe.
public final class FaultyFileSystem: FileSystem, @unchecked Sendable {
    final class Inode {
        var data: [UInt8] = []
        var durable: [UInt8] = []
        var pending: [PendingOp] = []
    }

    enum PendingOp {
        case write(offset: Int, bytes: [UInt8])
        case truncate(size: Int)
    }

    /// Operations that can be made to fail once with EIO.
    public enum Operation: Hashable, Sendable { case write, read, sync, truncate, rename, syncDirectory }

    let lock = ConditionLock()
    private var names: [String: Inode] = [:]
    private var durableNames: [String: Inode] = [:]
    private var directories: Set<String> = []
    private var failNext: [Operation: Int] = [:]
    /// Total bytes all files may hold; writes past it fail with `.noSpace` after a partial write.
    public var spaceLimitBytes: Int? {
        get { lock.withLock { limit } }
        set { lock.withLock { limit = newValue } }
    }
    private var limit: Int?
    /// Number of `sync` calls that reached the "disk" (for group-commit tests).
    public private(set) var syncCount = 0
    /// Bumped by `powerLoss`: handles opened before it are dead (every call fails with EIO), as
    /// after a real reboot, so a stale log object cannot write into the recovered files.
    private(set) var epoch = 0

    public init() {}

    /// Makes the next `count` operations of kind `op` fail with EIO.
    public func failNext(_ op: Operation, count: Int = 1) {
        lock.withLock { failNext[op, default: 0] += count }
    }

    /// Cancels every pending injected EIO.
    public func clearInjectedFailures() {
        lock.withLock { failNext.removeAll() }
    }

    /// Flips one bit of a file's current and durable contents (a media error).
    public func flipBit(path: String, byteOffset: Int, bit: Int = 0) {
        lock.withLock {
            guard let node = names[path] else { return }
            if byteOffset < node.data.count { node.data[byteOffset] ^= UInt8(1 << (bit & 7)) }
            if byteOffset < node.durable.count { node.durable[byteOffset] ^= UInt8(1 << (bit & 7)) }
        }
    }

    /// Current size of a file (nil when missing).
    public func fileSize(_ path: String) -> Int? { lock.withLock { names[path]?.data.count } }

    /// Simulates a power cut: keeps a prefix of each file's un-synced operations chosen by `rng`
    /// (tearing the last kept write when `tear` is set) and the directory as of its last sync.
    public func powerLoss<G: RandomNumberGenerator>(using rng: inout G, tear: Bool = true) {
        lock.withLock {
            var seen = Set<ObjectIdentifier>()
            for node in durableNames.values where seen.insert(ObjectIdentifier(node)).inserted {
                var image = node.durable
                let keep = node.pending.isEmpty ? 0 : Int.random(in: 0...node.pending.count, using: &rng)
                for (i, op) in node.pending.prefix(keep).enumerated() {
                    switch op {
                    case .truncate(let size): Self.resize(&image, to: size)
                    case .write(let offset, var bytes):
                        if tear && i == keep - 1 && !bytes.isEmpty {
                            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
                        }
                        Self.apply(&image, offset: offset, bytes: bytes)
                    }
                }
                node.data = image
                node.durable = image
                node.pending = []
            }
            names = durableNames
            epoch += 1
        }
    }

    static func resize(_ image: inout [UInt8], to size: Int) {
        if size < image.count { image.removeLast(image.count - size) } else {
            image.append(contentsOf: repeatElement(0, count: size - image.count))
        }
    }

    static func apply(_ image: inout [UInt8], offset: Int, bytes: [UInt8]) {
        if image.count < offset + bytes.count { resize(&image, to: offset + bytes.count) }
        image.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    /// Fails calls through a handle opened before the last power loss (lock held).
    func checkAlive(_ handleEpoch: Int, _ path: String, _ operation: String) throws {
        if handleEpoch != epoch { throw FileSystemError.io(path: path, operation: operation + " after power loss", errno: 5) }
    }

    /// Consumes one injected failure of `op` (lock held).
    func shouldFail(_ op: Operation) -> Bool {
        guard let n = failNext[op], n > 0 else { return false }
        failNext[op] = n - 1
        return true
    }

    var usedBytes: Int {
        var seen = Set<ObjectIdentifier>()
        var total = 0
        for node in names.values where seen.insert(ObjectIdentifier(node)).inserted { total += node.data.count }
        return total
    }

    public func open(_ path: String, create: Bool) throws -> StorageFile {
        try lock.withLock {
            if let node = names[path] { return FaultyFile(fs: self, node: node, path: path, epoch: epoch) }
            guard create else { throw FileSystemError.notFound(path: path) }
            let node = Inode()
            names[path] = node
            return FaultyFile(fs: self, node: node, path: path, epoch: epoch)
        }
    }

    public func remove(_ path: String) throws { lock.withLock { _ = names.removeValue(forKey: path) } }

    public func rename(_ from: String, to: String) throws {
        try lock.withLock {
            if shouldFail(.rename) { throw FileSystemError.io(path: from, operation: "rename", errno: 5) }
            guard let node = names.removeValue(forKey: from) else { throw FileSystemError.notFound(path: from) }
            names[to] = node
        }
    }

    public func list(_ directory: String) throws -> [String] {
        lock.withLock {
            let prefix = directory.hasSuffix("/") ? directory : directory + "/"
            return names.keys.filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") }
                .map { String($0.dropFirst(prefix.count)) }
        }
    }

    public func makeDirectory(_ path: String) throws { lock.withLock { _ = directories.insert(path) } }

    public func syncDirectory(_ directory: String) throws {
        try lock.withLock {
            if shouldFail(.syncDirectory) { throw FileSystemError.io(path: directory, operation: "fsync dir", errno: 5) }
            let prefix = directory.hasSuffix("/") ? directory : directory + "/"
            durableNames = durableNames.filter { !$0.key.hasPrefix(prefix) }
            for (name, node) in names where name.hasPrefix(prefix) { durableNames[name] = node }
        }
    }

    /// A file or a directory made here (as `access(F_OK)`).
    public func fileExists(_ path: String) -> Bool { lock.withLock { names[path] != nil || directories.contains(path) } }

    fileprivate func write(_ node: Inode, _ path: String, _ epoch: Int, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        try lock.withLock {
            try checkAlive(epoch, path, "pwrite")
            if shouldFail(.write) { throw FileSystemError.io(path: path, operation: "pwrite", errno: 5) }
            var chunk = [UInt8](bytes)
            var full = false
            if let limit {
                let growth = max(0, offset + chunk.count - node.data.count)
                let free = max(0, limit - usedBytes)
                if growth > free {
                    chunk = Array(chunk.prefix(max(0, node.data.count + free - offset)))
                    full = true
                }
            }
            if !chunk.isEmpty {
                Self.apply(&node.data, offset: offset, bytes: chunk)
                node.pending.append(.write(offset: offset, bytes: chunk))
            }
            if full { throw FileSystemError.noSpace(path: path) }
        }
    }

    fileprivate func read(_ node: Inode, _ path: String, _ epoch: Int, count: Int, at offset: Int) throws -> [UInt8] {
        try lock.withLock {
            try checkAlive(epoch, path, "pread")
            if shouldFail(.read) { throw FileSystemError.io(path: path, operation: "pread", errno: 5) }
            guard offset < node.data.count, count > 0 else { return [] }
            return Array(node.data[offset..<min(node.data.count, offset + count)])
        }
    }

    /// Emulated fsync latency (slept outside the lock), so group-commit tests see overlap.
    public var syncDelayNanos: Int64 {
        get { lock.withLock { syncDelay } }
        set { lock.withLock { syncDelay = newValue } }
    }
    private var syncDelay: Int64 = 0

    fileprivate func sync(_ node: Inode, _ path: String, _ epoch: Int) throws {
        let delay = syncDelayNanos
        if delay > 0 {
            var ts = timespec(tv_sec: Int(delay / 1_000_000_000), tv_nsec: Int(delay % 1_000_000_000))
            nanosleep(&ts, nil)
        }
        try lock.withLock {
            try checkAlive(epoch, path, "fsync")
            if shouldFail(.sync) { throw FileSystemError.io(path: path, operation: "fsync", errno: 5) }
            syncCount += 1
            node.durable = node.data
            node.pending = []
        }
    }

    fileprivate func truncate(_ node: Inode, _ path: String, _ epoch: Int, to size: Int) throws {
        try lock.withLock {
            try checkAlive(epoch, path, "ftruncate")
            if shouldFail(.truncate) { throw FileSystemError.io(path: path, operation: "ftruncate", errno: 5) }
            Self.resize(&node.data, to: size)
            node.pending.append(.truncate(size: size))
        }
    }

    fileprivate func size(_ node: Inode, _ path: String, _ epoch: Int) throws -> Int {
        try lock.withLock {
            try checkAlive(epoch, path, "fstat")
            return node.data.count
        }
    }
}

final class FaultyFile: StorageFile, @unchecked Sendable {
    let fs: FaultyFileSystem
    let node: FaultyFileSystem.Inode
    let path: String
    let epoch: Int

    init(fs: FaultyFileSystem, node: FaultyFileSystem.Inode, path: String, epoch: Int) {
        self.fs = fs
        self.node = node
        self.path = path
        self.epoch = epoch
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try fs.write(node, path, epoch, bytes, at: Int(offset))
    }

    func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        try fs.read(node, path, epoch, count: count, at: Int(offset))
    }

    func sync() throws { try fs.sync(node, path, epoch) }
    func truncate(to size: UInt64) throws { try fs.truncate(node, path, epoch, to: Int(size)) }
    func size() throws -> UInt64 { UInt64(try fs.size(node, path, epoch)) }
    func close() {}
}
