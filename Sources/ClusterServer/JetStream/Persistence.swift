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
        // The file seam's own steps (temp file, sync, rename, directory sync): the power-cut
        // layer in that test mode tracks what they made durable.
        do {
            try fileSystem.writeAtomically(bytes, directory: dir, name: (path as NSString).lastPathComponent)
        } catch let e as FileSystemError {
            throw StoreError(e)
        }
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
