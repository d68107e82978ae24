/// The persisted `CoreState` plus the log position it covers (`state.snap`). Written atomically
/// (temp file, fsync, rename, fsync dir) when a segment is sealed, after structural changes and
/// on close, so opening a log replays only blocks after that position (normally just the tail
/// segment). Missing, damaged or inconsistent snapshots trigger a full replay.
struct StateSnapshot: Equatable {
    static let magic: UInt32 = 0x3153_4C53  // "SLS1"
    static let fileName = "state.snap"

    var coveredSegment: UInt64
    var coveredOffset: UInt64
    var state: CoreState

    func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + state.deleted.count * 8 + state.subjects.count * 48)
        out.appendLE(Self.magic)
        out.appendLE(UInt32(1))
        for v in [coveredSegment, coveredOffset, state.floor, state.lastSeq, state.lastRaftIndex, state.lastTerm,
                  UInt64(bitPattern: state.lastTimestamp), state.messages, state.bytes, UInt64(state.deleted.count)] {
            out.appendLE(v)
        }
        for s in state.deleted.sorted() { out.appendLE(s) }
        out.appendLE(UInt64(state.subjects.count))
        for (name, info) in state.subjects {
            var n = name
            n.withUTF8 { u in
                out.appendLE(UInt32(u.count))
                out.append(contentsOf: u)
            }
            out.appendLE(info.first)
            out.appendLE(info.last)
            out.appendLE(info.count)
            out.append((info.firstStale ? 1 : 0) | (info.lastStale ? 2 : 0))
        }
        out.appendLE(CRC32C.checksum(out))
        return out
    }

    static func decode(_ bytes: [UInt8]) -> StateSnapshot? {
        guard bytes.count >= 92 else { return nil }
        return bytes.withUnsafeBytes { b -> StateSnapshot? in
            let body = b.count - 4
            guard b.le(0, as: UInt32.self) == magic, b.le(4, as: UInt32.self) == 1,
                  CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<body])) == b.le(body, as: UInt32.self)
            else { return nil }
            var p = 8
            func u64() -> UInt64? {
                guard p + 8 <= body else { return nil }
                defer { p += 8 }
                return b.le(p)
            }
            guard let seg = u64(), let off = u64(), let floor = u64(), let last = u64(), let ri = u64(),
                  let term = u64(), let ts = u64(), let msgs = u64(), let bytesCount = u64(), let nDel = u64(),
                  nDel <= UInt64(body / 8) else { return nil }
            var st = CoreState(floor: floor, lastSeq: last, lastRaftIndex: ri, lastTerm: term,
                               lastTimestamp: Int64(bitPattern: ts), messages: msgs, bytes: bytesCount)
            st.deleted.reserveCapacity(Int(nDel))
            for _ in 0..<nDel {
                guard let s = u64() else { return nil }
                st.deleted.insert(s)
            }
            guard let nSubj = u64(), nSubj <= UInt64(body / 29) else { return nil }
            st.subjects.reserveCapacity(Int(nSubj))
            for _ in 0..<nSubj {
                guard p + 4 <= body else { return nil }
                let len = Int(b.le(p, as: UInt32.self))
                p += 4
                guard len <= body - p else { return nil }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[p..<(p + len)]), as: UTF8.self)
                p += len
                guard let first = u64(), let lastS = u64(), let count = u64(), p < body else { return nil }
                let flags = b[p]
                p += 1
                st.subjects[name] = SubjectInfo(first: first, last: lastS, count: count,
                                                firstStale: flags & 1 != 0, lastStale: flags & 2 != 0)
            }
            guard p == body else { return nil }
            return StateSnapshot(coveredSegment: seg, coveredOffset: off, state: st)
        }
    }
}
