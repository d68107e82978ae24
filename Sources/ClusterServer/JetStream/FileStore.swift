import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A durable message store: an append-only record log on disk plus the in-memory index
/// (`MemoryStore`) it is replayed into on open.
///
/// Records: `[kind u8][length u32][body][checksum u32]` with kinds `M` (message), `D` (delete one
/// sequence), `P` (purge everything below a sequence) and `S` (next sequence of an empty
/// store). A torn tail (crash mid-write) fails its checksum and is cut off on open. Writes are
/// buffered until `sync()`, which writes and fsyncs them; the log is rewritten (compacted)
/// when most of it is dead.
///
/// This is the stand-in for the project's StreamLog, whose API was not available when
/// JetStream landed; everything above `MessageStore` is independent of it.
public final class FileStore: MessageStore {
    private let index = MemoryStore(fileAccounting: true)
    private let path: String
    private var fd: Int32
    private var pending: [UInt8] = []
    private var logBytes: Int = 0
    private static let compactMinBytes = 64 << 20

    /// Opens (or creates) the log at `directory/msgs.log` and replays it.
    public init(directory: String) throws {
        path = directory + "/msgs.log"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.io("open \(path): errno \(errno)") }
        try replay()
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public var state: StoreState { index.state }
    public func size(subject: String, headers: [UInt8]?, payload: [UInt8]) -> UInt64 {
        index.size(subject: subject, headers: headers, payload: payload)
    }

    public func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64) throws -> UInt64 {
        let seq = try index.append(subject: subject, headers: headers, payload: payload, time: time)
        writeMessage(StoredMessage(seq: seq, subject: subject, headers: headers, payload: payload, time: time))
        return seq
    }

    public func load(_ seq: UInt64) -> StoredMessage? { index.load(seq) }
    public func next(from seq: UInt64, filters: [String]) -> StoredMessage? { index.next(from: seq, filters: filters) }
    public func last(matching filter: String) -> StoredMessage? { index.last(matching: filter) }
    public func lastSequence(forSubject subject: String) -> UInt64? { index.lastSequence(forSubject: subject) }
    public func firstSequence(forSubject subject: String) -> UInt64? { index.firstSequence(forSubject: subject) }
    public func firstSequence(atOrAfter time: Int64) -> UInt64 { index.firstSequence(atOrAfter: time) }
    public func count(from seq: UInt64, filters: [String]) -> UInt64 { index.count(from: seq, filters: filters) }
    public func subjectCounts(matching filter: String) -> [String: UInt64] { index.subjectCounts(matching: filter) }

    @discardableResult
    public func remove(_ seq: UInt64) throws -> Bool {
        guard try index.remove(seq) else { return false }
        writeRecord(kind: UInt8(ascii: "D"), body: le(seq))
        return true
    }

    public func purge(subject: String?, upTo: UInt64?, keep: UInt64?) throws -> UInt64 {
        let before = index.state
        if subject == nil && (keep ?? 0) == 0 {
            let n = try index.purge(subject: nil, upTo: upTo, keep: nil)
            let after = index.state
            // Everything below the new first sequence is gone; record the new next sequence
            // too so an emptied store keeps counting from where it was.
            writeRecord(kind: UInt8(ascii: "P"), body: le(upTo ?? (before.lastSeq + 1)))
            writeRecord(kind: UInt8(ascii: "S"), body: le(after.lastSeq + 1))
            return n
        }
        let victims = collectVictims(subject: subject, upTo: upTo, keep: keep)
        var n: UInt64 = 0
        for s in victims where try remove(s) { n += 1 }
        return n
    }

    /// The sequences a filtered or `keep` purge removes: matching messages below `upTo`,
    /// except the newest `keep` of them.
    private func collectVictims(subject: String?, upTo: UInt64?, keep: UInt64?) -> [UInt64] {
        var seqs: [UInt64] = []
        var s = index.state.firstSeq
        let filters = subject.map { [$0] } ?? []
        while let m = index.next(from: s, filters: filters) {
            if let upTo, m.seq >= upTo { break }
            seqs.append(m.seq)
            s = m.seq + 1
        }
        if let keep, keep > 0 { seqs = Array(seqs.dropLast(Int(min(UInt64(seqs.count), keep)))) }
        return seqs
    }

    public func skip(toNext seq: UInt64) throws {
        try index.skip(toNext: seq)
        writeRecord(kind: UInt8(ascii: "S"), body: le(seq))
    }

    public func sync() throws {
        if !pending.isEmpty {
            try writeAll(pending)
            logBytes += pending.count
            pending.removeAll(keepingCapacity: true)
            guard fsync(fd) == 0 else { throw StoreError.io("fsync \(path): errno \(errno)") }
        }
        if logBytes > FileStore.compactMinBytes && Int(index.state.bytes) * 2 < logBytes {
            try compact()
        }
    }

    public func close() {
        try? sync()
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    public func destroy() {
        pending.removeAll()
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        unlink(path)
    }

    // MARK: - log records

    private func writeMessage(_ m: StoredMessage) {
        var body = le(m.seq) + le(UInt64(bitPattern: m.time))
        let subj = Array(m.subject.utf8)
        body += le32(UInt32(subj.count))
        body += le32(m.headers.map { UInt32($0.count) } ?? UInt32.max)
        body += le32(UInt32(m.payload.count))
        body += subj
        if let h = m.headers { body += h }
        body += m.payload
        writeRecord(kind: UInt8(ascii: "M"), body: body)
    }

    private func writeRecord(kind: UInt8, body: [UInt8]) {
        let start = pending.count
        pending.append(kind)
        pending += le32(UInt32(body.count))
        pending += body
        let sum = FileStore.checksum(pending[start...])
        pending += le32(sum)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.io("write \(path): errno \(errno)")
            }
            off += n
        }
    }

    private func replay() throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let bytes = [UInt8](data)
        var i = 0
        while i + 9 <= bytes.count {
            let kind = bytes[i]
            let len = Int(readLE32(bytes, i + 1))
            let end = i + 5 + len
            guard end + 4 <= bytes.count, readLE32(bytes, end) == FileStore.checksum(bytes[i..<end]) else { break }
            apply(kind: kind, body: bytes[(i + 5)..<end])
            i = end + 4
        }
        if i < bytes.count {
            // Torn or corrupt tail from a crash: cut it so later appends follow valid records.
            guard ftruncate(fd, off_t(i)) == 0 else { throw StoreError.io("truncate \(path): errno \(errno)") }
            _ = fsync(fd)
        }
        logBytes = i
        lseek(fd, off_t(i), SEEK_SET)
    }

    private func apply(kind: UInt8, body: ArraySlice<UInt8>) {
        let b = Array(body)
        switch kind {
        case UInt8(ascii: "M"):
            guard b.count >= 28 else { return }
            let seq = readLE64(b, 0), time = Int64(bitPattern: readLE64(b, 8))
            let sl = Int(readLE32(b, 16)), hlRaw = readLE32(b, 20), dl = Int(readLE32(b, 24))
            let hl = hlRaw == UInt32.max ? 0 : Int(hlRaw)
            guard 28 + sl + hl + dl == b.count else { return }
            let subject = String(decoding: b[28..<(28 + sl)], as: UTF8.self)
            let headers = hlRaw == UInt32.max ? nil : Array(b[(28 + sl)..<(28 + sl + hl)])
            let payload = Array(b[(28 + sl + hl)...])
            guard seq > index.state.lastSeq || index.state.messages == 0 && seq >= index.state.lastSeq else { return }
            index.insert(StoredMessage(seq: seq, subject: subject, headers: headers, payload: payload, time: time))
        case UInt8(ascii: "D"):
            guard b.count == 8 else { return }
            _ = try? index.remove(readLE64(b, 0))
        case UInt8(ascii: "P"):
            guard b.count == 8 else { return }
            _ = try? index.purge(subject: nil, upTo: readLE64(b, 0), keep: nil)
        case UInt8(ascii: "S"):
            guard b.count == 8 else { return }
            try? index.skip(toNext: readLE64(b, 0))
        default:
            return
        }
    }

    /// Rewrites the log with only live messages (temp file, fsync, rename, fsync directory).
    private func compact() throws {
        let tmp = path + ".tmp"
        let nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard nfd >= 0 else { throw StoreError.io("open \(tmp): errno \(errno)") }
        let old = fd
        fd = nfd
        let st = index.state
        writeRecord(kind: UInt8(ascii: "S"), body: le(st.firstSeq))
        for m in index.allMessages() { writeMessage(m) }
        let out = pending
        pending.removeAll()
        try writeAll(out)
        guard fsync(nfd) == 0, rename(tmp, path) == 0 else {
            fd = old
            Glibc.close(nfd)
            throw StoreError.io("compact \(path): errno \(errno)")
        }
        Glibc.close(old)
        AtomicFile.syncDirectory((path as NSString).deletingLastPathComponent)
        logBytes = out.count
    }

    // MARK: - encoding

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var h: UInt32 = 2_166_136_261 // FNV-1a
        for b in bytes { h = (h ^ UInt32(b)) &* 16_777_619 }
        return h
    }
}

@inline(__always) func le(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
@inline(__always) func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
@inline(__always) func readLE64(_ b: [UInt8], _ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for k in 0..<8 { v |= UInt64(b[at + k]) << (8 * UInt64(k)) }
    return v
}
@inline(__always) func readLE32(_ b: [UInt8], _ at: Int) -> UInt32 {
    var v: UInt32 = 0
    for k in 0..<4 { v |= UInt32(b[at + k]) << (8 * UInt32(k)) }
    return v
}
