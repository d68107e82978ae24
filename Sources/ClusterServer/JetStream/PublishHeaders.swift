/// The JetStream headers of one published message, read in one pass over its header block.
///
/// A publish with headers used to be scanned once per header a check asked about: nine times
/// to see whether it could join a batched apply, ten in `Stream.ingest`, twice more for the
/// leader's dedup, on every replica. Each field holds what `NATSHeaderBlock.value` returns for
/// its name (the first such field, trimmed; the scan stops where that one stops on a malformed
/// block), so the checks are unchanged. Pure: no I/O.
struct PublishHeaders: Equatable {
    /// `Nats-Msg-Id`, nil when absent or empty (an empty id is no id, as in nats-server).
    var msgID: String?
    var expectedStream: String?
    var expectedLastMsgID: String?
    var expectedLastSequence: String?
    var expectedLastSubjectSequence: String?
    var expectedLastSubjectSequenceSubject: String?
    var rollup: String?
    var ttl: String?
    var requiredAPILevel: String?
    var streamSource: String?

    /// No headers at all.
    static let none = PublishHeaders()

    private init() {}

    /// True when a check of this publish reads the store or changes what is stored (it is then
    /// ingested alone, not in a batch; `Stream.canBatch`).
    var readsStore: Bool {
        requiredAPILevel != nil || streamSource != nil || expectedStream != nil || expectedLastMsgID != nil
            || expectedLastSequence != nil || expectedLastSubjectSequence != nil
            || expectedLastSubjectSequenceSubject != nil || rollup != nil || ttl != nil
    }

    private enum Name: CaseIterable {
        case msgID, expectedStream, expectedLastMsgID, expectedLastSequence, expectedLastSubjectSequence
        case expectedLastSubjectSequenceSubject, rollup, ttl, requiredAPILevel, streamSource

        var text: String {
            switch self {
            case .msgID: return "Nats-Msg-Id"
            case .expectedStream: return "Nats-Expected-Stream"
            case .expectedLastMsgID: return "Nats-Expected-Last-Msg-Id"
            case .expectedLastSequence: return "Nats-Expected-Last-Sequence"
            case .expectedLastSubjectSequence: return "Nats-Expected-Last-Subject-Sequence"
            case .expectedLastSubjectSequenceSubject: return "Nats-Expected-Last-Subject-Sequence-Subject"
            case .rollup: return "Nats-Rollup"
            case .ttl: return "Nats-TTL"
            case .requiredAPILevel: return "Nats-Required-Api-Level"
            case .streamSource: return "Nats-Stream-Source"
            }
        }
    }

    private static let names: [(bytes: [UInt8], name: Name)] = Name.allCases.map { (Array($0.text.utf8), $0) }

    /// Reads `block` (nil or empty: no headers).
    init(_ block: [UInt8]?) {
        guard let block, !block.isEmpty else { return }
        block.withUnsafeBufferPointer { b in
            func lineEnd(from start: Int) -> Int {
                var e = start
                while e < b.count && !(b[e] == 13 && e + 1 < b.count && b[e + 1] == 10) { e += 1 }
                return e
            }
            var i = lineEnd(from: 0) + 2 // the version/status line
            while i < b.count {
                let end = lineEnd(from: i)
                if end == i { break }
                // Every name starts "Nats-"; most application headers do not.
                if end - i > 5 && b[i] == 78 && b[i + 4] == 45, let colon = (i..<end).first(where: { b[$0] == 58 }) {
                    for (bytes, name) in Self.names where bytes.count == colon - i && self[name] == nil {
                        if bytes.elementsEqual(b[i..<colon]) {
                            var lo = colon + 1, hi = end
                            while lo < hi && (b[lo] == 32 || b[lo] == 9) { lo += 1 }
                            while hi > lo && (b[hi - 1] == 32 || b[hi - 1] == 9) { hi -= 1 }
                            self[name] = String(decoding: UnsafeBufferPointer(rebasing: b[lo..<hi]), as: UTF8.self)
                            break
                        }
                    }
                }
                i = end + 2
            }
        }
        if msgID?.isEmpty == true { msgID = nil }
    }

    private subscript(name: Name) -> String? {
        get {
            switch name {
            case .msgID: return msgID
            case .expectedStream: return expectedStream
            case .expectedLastMsgID: return expectedLastMsgID
            case .expectedLastSequence: return expectedLastSequence
            case .expectedLastSubjectSequence: return expectedLastSubjectSequence
            case .expectedLastSubjectSequenceSubject: return expectedLastSubjectSequenceSubject
            case .rollup: return rollup
            case .ttl: return ttl
            case .requiredAPILevel: return requiredAPILevel
            case .streamSource: return streamSource
            }
        }
        set {
            switch name {
            case .msgID: msgID = newValue
            case .expectedStream: expectedStream = newValue
            case .expectedLastMsgID: expectedLastMsgID = newValue
            case .expectedLastSequence: expectedLastSequence = newValue
            case .expectedLastSubjectSequence: expectedLastSubjectSequence = newValue
            case .expectedLastSubjectSequenceSubject: expectedLastSubjectSequenceSubject = newValue
            case .rollup: rollup = newValue
            case .ttl: ttl = newValue
            case .requiredAPILevel: requiredAPILevel = newValue
            case .streamSource: streamSource = newValue
            }
        }
    }
}
