import Foundation
import StreamLog
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe small files: write a temp file, fsync it, rename over the target, fsync the
/// directory. After `write` returns, a crash leaves either the old or the new content.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try makeDirectory(dir)
        let tmp = path + ".tmp"
        if let fs = PowerCutMode.fileSystem {
            // The same steps through the power-cut test layer, which tracks what they made durable.
            do {
                try fs.writeAtomically(bytes, directory: dir, name: (path as NSString).lastPathComponent)
            } catch let e as FileSystemError {
                if case .noSpace = e { throw StoreError.noSpace("\(e)") }
                throw StoreError.io("\(e)")
            }
            return
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("open \(tmp)", errno) }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                Glibc.close(fd)
                throw failure("write \(tmp)", code)
            }
            off += n
        }
        let synced = fsync(fd) == 0
        let code = errno
        Glibc.close(fd)
        guard synced else { throw failure("fsync \(tmp)", code) }
        guard rename(tmp, path) == 0 else { throw failure("rename \(tmp)", errno) }
        syncDirectory(dir)
    }

    /// A full disk (ENOSPC, EDQUOT) is told apart: it may pass, other errors are not retried.
    private static func failure(_ what: String, _ code: Int32) -> StoreError {
        code == ENOSPC || code == EDQUOT ? .noSpace("\(what): errno \(code)") : .io("\(what): errno \(code)")
    }

    static func syncDirectory(_ dir: String) {
        if let fs = PowerCutMode.fileSystem {
            try? fs.syncDirectory(dir)
            return
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            Glibc.close(dfd)
        }
    }

    /// The file seam of JetStream's files: the power-cut layer in that test mode, else the disk.
    static var fileSystem: FileSystem { PowerCutMode.fileSystem ?? PosixFileSystem() }

    /// Creates `path` and any missing parents, durably (each new directory's parent fsync'd),
    /// through the power-cut layer in that test mode.
    static func makeDirectory(_ path: String) throws {
        do {
            try fileSystem.makeDirectory(path)
        } catch {
            throw StoreError.io("\(error)")
        }
    }

    /// Removes one file and makes the removal durable (through the power-cut layer in that
    /// test mode, which brings the file back if a cut comes before the directory sync).
    static func remove(_ path: String) {
        if let fs = PowerCutMode.fileSystem {
            try? fs.remove(path)
        } else {
            unlink(path)
        }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    /// Moves a file or a directory to `to`, which must not exist, through the file seam (the
    /// power-cut layer undoes the move at a cut unless the parent of `to` was synced since).
    static func move(_ from: String, to: String) throws {
        do {
            try fileSystem.rename(from, to: to)
        } catch {
            throw StoreError.io("\(error)")
        }
    }

    /// Removes a directory tree and makes the removal durable.
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        syncDirectory((path as NSString).deletingLastPathComponent)
    }
}
