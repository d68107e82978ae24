import Raft
import StreamLog

/// One Raft entry is one StreamLog record: the record's sequence *is* the Raft index (the log
/// is reset to `snapshot.index + 1` when a snapshot replaces it), term and index sit in the
/// record header, the entry type is a one-character subject and the data is the payload.
enum EntryCodec {
    static func subject(_ type: EntryType) -> String {
        switch type {
        case .normal: return "n"
        case .confChange: return "c"
        case .empty: return "e"
        }
    }

    static func record(_ e: Entry) -> NewMessage {
        NewMessage(subject: subject(e.type), payload: e.data, timestamp: 0,
                   term: e.term.rawValue, raftIndex: e.index.rawValue)
    }

    /// The entry stored at `expected`, or a description of what is wrong with the record.
    static func entry(_ m: StoredMessage, expected: LogIndex) throws -> Entry {
        guard m.sequence.rawValue == expected.rawValue else {
            throw RaftLogStorageError.missingEntry(expected)
        }
        guard m.raftIndex == expected.rawValue else {
            throw RaftLogStorageError.corrupt("record \(m.sequence) holds raft index \(m.raftIndex), expected \(expected)")
        }
        let type: EntryType
        switch m.subject {
        case "n": type = .normal
        case "c": type = .confChange
        case "e": type = .empty
        default: throw RaftLogStorageError.corrupt("record \(m.sequence) has unknown entry kind \"\(m.subject.prefix(16))\"")
        }
        return Entry(term: Term(m.term), index: expected, type: type, data: m.payload)
    }
}

/// Failures of `StreamLogRaftStorage` beyond the protocol's `StorageError`. Damage is always
/// reported, never skipped: a missing entry or a bad record stops the group rather than
/// letting Raft run on a log with a hole.
public enum RaftLogStorageError: Error, Equatable, CustomStringConvertible {
    /// A file or record is damaged or inconsistent with the others.
    case corrupt(String)
    /// The entry at this index should be in the log but is not (a gap).
    case missingEntry(LogIndex)
    /// The underlying log failed (I/O error, full disk, failed fsync, closed).
    case log(StreamLogError)
    /// Reading or writing the state or snapshot file failed.
    case storage(FileSystemError)
    /// `close()` was called.
    case closed

    /// The device is full (ENOSPC, EDQUOT), whether the log or a state file found it: writes
    /// may work again once there is room.
    public var isNoSpace: Bool {
        switch self {
        case .storage(.noSpace), .log(.storage(.noSpace)): return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .corrupt(let why): return "raft log corrupt: \(why)"
        case .missingEntry(let i): return "raft log is missing entry \(i)"
        case .log(let e): return "raft log: \(e)"
        case .storage(let e): return "raft state: \(e)"
        case .closed: return "raft storage is closed"
        }
    }
}
