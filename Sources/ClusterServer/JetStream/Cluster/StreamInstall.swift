import Foundation
import Raft
import StreamLog

/// Where a stream copy from the leader is built (`CatchupSession` applies `StreamCatchup`'s
/// operations to it, then commits it with the final state).
protocol StagedCopy: AnyObject {
    func apply(_ op: StreamCatchup.Op) throws
    func commit(_ state: CatchupState) throws
    func abandon()
}

/// A stream copy being built in `<stream>/install/` beside the live replica (see
/// `StreamCatchup`). Nothing here touches the live store: an unfinished copy is discarded on
/// the next open, a finished one is switched in by `StreamInstall.rollForward`.
final class StagedStreamCopy: StagedCopy {
    let directory: String
    private var log: StreamLog
    private var closed = false
    /// Sequences the leader no longer holds still need a record to keep numbering: a
    /// placeholder on a subject no client can publish (it has a space), purged at the end.
    static let gapSubject = "$JSC.INSTALL GAP"

    /// Whether the copy's blocks are LZ4-compressed (the stream's `compression`).
    private let compress: Bool

    /// Starts an empty copy, discarding any earlier unfinished one.
    init(streamDirectory: String, compress: Bool) throws {
        directory = StreamInstall.directory(streamDirectory)
        self.compress = compress
        AtomicFile.removeTree(directory)
        try AtomicFile.makeDirectory(directory + "/consumers")
        log = try Self.openLog(directory, compress: compress)
    }

    private static func openLog(_ directory: String, compress: Bool) throws -> StreamLog {
        // Manual fsync: one fsync at commit instead of one per append; no limits (the copy holds
        // exactly what the leader's state holds).
        // Through the power-cut layer in that test mode: the copy's sync before its marker counts.
        try StreamLog.open(directory: directory + "/msgs", fileSystem: AtomicFile.fileSystem,
                           config: StreamLogConfig(segmentMaxBytes: StreamLogStore.segmentMaxBytes, fsync: .manual,
                                                   compression: compress, limits: RetentionLimits()),
                           clock: JSTime.nowNanos)
    }

    func apply(_ op: StreamCatchup.Op) throws {
        switch op {
        case .reset:
            // Numbering restarts too (a purge would keep it), so the copy starts from new files.
            try log.close()
            AtomicFile.removeTree(directory + "/msgs")
            log = try Self.openLog(directory, compress: compress)
        case .removeBelow(let seq):
            _ = try log.compact(upTo: StreamSequence(seq))
        case .remove(let seq):
            _ = try log.delete(StreamSequence(seq))
        case .append(let m):
            try pad(upTo: m.seq)
            let r = try log.append([NewMessage(subject: m.subject, payload: m.payload, headers: m.headers ?? [], timestamp: m.time)])
            guard r.lastSequence == m.seq else { throw StoreError.io("staged message landed at \(r.lastSequence), not \(m.seq)") }
        case .finish(let lastSeq):
            try pad(upTo: lastSeq + 1)
        }
    }

    /// Makes the next append land at `seq`: an empty copy jumps there, a non-empty one gets
    /// placeholders for the deleted sequences in between.
    private func pad(upTo seq: UInt64) throws {
        let st = try log.state()
        guard seq > st.lastSequence + 1 else { return }
        if st.messages == 0 {
            _ = try log.compact(upTo: StreamSequence(seq))
            return
        }
        var s = st.lastSequence + 1
        while s < seq {
            let n = min(seq - s, 4096)
            _ = try log.append((0..<n).map { _ in NewMessage(subject: Self.gapSubject, payload: [], timestamp: 0) })
            s += n
        }
    }

    /// The copy is complete: drop placeholders, make everything durable, write the consumer
    /// records and, last, the marker that makes the install happen (`rollForward`).
    func commit(_ state: CatchupState) throws {
        if try log.state(perSubject: true).subjects?[Self.gapSubject] != nil {
            _ = try log.purge(.init(subject: Self.gapSubject))
        }
        let st = try log.state()
        guard st.lastSequence == state.lastSeq, st.messages == 0 || st.firstSequence == state.firstSeq else {
            throw StoreError.io("staged copy ends at \(st.firstSequence)...\(st.lastSequence), expected \(state.firstSeq)...\(state.lastSeq)")
        }
        try log.sync()
        try log.close()
        closed = true
        for (name, record) in state.consumers where StreamInstall.isSafeName(name) {
            try AtomicFile.write(record, to: directory + "/consumers/\(name).json")
        }
        var marker = state
        marker.deleted = []
        marker.consumers = [:]
        try AtomicFile.write(CatchupWire.encode(.state(group: 0, request: 0, marker)), to: directory + "/" + StreamInstall.markerName)
    }

    /// Stops building (the copy is removed by the next start or open).
    func abandon() {
        if !closed { try? log.close() }
        closed = true
    }

    deinit { abandon() }
}

/// Switching a finished copy in, crash-safe: every step is idempotent and runs again on the
/// next open until the install directory is gone.
enum StreamInstall {
    static let markerName = "installed"

    static func directory(_ streamDirectory: String) -> String { streamDirectory + "/install" }

    /// Consumer names come from the leader; never let one climb out of the directory.
    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && !name.contains("/") && name != "." && name != ".."
    }

    /// Before the store opens: a finished copy (its marker written) replaces `msgs/` and
    /// `consumers/`; an unfinished one is discarded (the old state stands, and the leader's next
    /// snapshot offer starts a clean copy). Returns the installed state's metadata, which
    /// `finishRaftLog` must bring the Raft log to. The copy's config (its leader's applied one)
    /// becomes the replica's `meta.json`, stamped `created`; a copy without one removes that file.
    static func rollForward(streamDirectory dir: String, created: Int64) throws -> SnapshotMetadata? {
        let inst = directory(dir)
        let fm = FileManager.default
        guard fm.fileExists(atPath: inst) else { return nil }
        guard let bytes = AtomicFile.read(inst + "/" + markerName) else {
            AtomicFile.removeTree(inst)
            return nil
        }
        guard case let .state(_, _, s)? = try? CatchupWire.decode(bytes) else {
            // An unreadable marker (a damaged disk) before anything moved: discarded like an
            // unfinished copy. After the store moved, the replica must not open with it and
            // the old Raft position, so it stays an error.
            guard fm.fileExists(atPath: inst + "/msgs") else { throw StoreError.io("unreadable install marker in \(inst)") }
            AtomicFile.removeTree(inst)
            return nil
        }
        for part in ["msgs", "consumers"] where fm.fileExists(atPath: inst + "/" + part) {
            AtomicFile.removeTree(dir + "/" + part)
            try AtomicFile.move(inst + "/" + part, to: dir + "/" + part)
            AtomicFile.syncDirectory(dir)
        }
        if !fm.fileExists(atPath: dir + "/consumers") {
            try AtomicFile.makeDirectory(dir + "/consumers")
        }
        // The leader's dedup offset marks go with its messages (none: the copy's dedup times
        // are its message timestamps), and so does a removed last message's id.
        try AtomicFile.write(s.copiedDedupSkews.encode(), to: dir + "/" + DedupSkews.fileName)
        if let cfg = s.appliedConfig {
            try JetStreamService.writeMeta(config: cfg, created: created, directory: dir)
        } else {
            AtomicFile.remove(dir + "/" + JetStreamService.metaFileName)
        }
        return SnapshotMetadata(index: LogIndex(s.index), term: Term(s.term),
                                conf: ConfState(voters: s.voters.map { NodeID($0) }, learners: s.learners.map { NodeID($0) }))
    }

    /// After the Raft log opens: it continues after the installed index. Entries after it are
    /// kept when the log holds the installed entry itself (they may be acknowledged to the
    /// leader and count toward commits); otherwise the log is replaced by the snapshot marker.
    static func finishRaftLog(_ meta: SnapshotMetadata, storage: DurableRaftStorage, streamDirectory dir: String) throws {
        try advanceRaftLog(meta, storage: storage)
        AtomicFile.removeTree(directory(dir))
    }

    /// Brings a Raft log to continue after an installed state's index (file or memory log).
    static func advanceRaftLog(_ meta: SnapshotMetadata, storage: DurableRaftStorage) throws {
        if meta.index > storage.snapshot().metadata.index {
            if meta.index >= storage.firstIndex, meta.index <= storage.lastIndex,
               (try? storage.term(at: meta.index)) == meta.term {
                try storage.createSnapshot(index: meta.index, conf: meta.conf, data: [])
                try storage.compact(upTo: meta.index)
            } else {
                try storage.applySnapshot(Snapshot(metadata: meta))
            }
            try storage.sync()
        }
    }
}
