/// The JetStream headers of one published message, read in one pass over its header block.
///
/// A publish with headers used to be scanned once per header a check asked about: nine times
/// to see whether it could join a batched apply, ten in `Stream.ingest`, twice more for the
/// leader's dedup, on every replica. Each field holds what `NATSHeaderBlock.value` returns for
/// its name (the first such field, trimmed; the scan stops where that one stops on a malformed
/// block), so the checks are unchanged. Pure: no I/O.
struct PublishHeaders: Equatable {
    /// `Nats-Msg-Id`, nil when absent or empty (an empty id is no id, as in nats-server).
    private(set) var msgID: String?
    /// The other names, nil unless the block had one of them (most publishes have none).
    private var rare: Rare?

    /// The nine names besides `Nats-Msg-Id` behind one reference: a publish's headers are copied
    /// a few times on their way (proposal, batch item), and ten optional strings inline cost ten
    /// retains and releases per copy (1.4% of a cluster's CPU under a publish load, `perf`).
    /// Never changed once built, so sharing it keeps value semantics.
    private final class Rare: Equatable {
        let values: [String?]
        init(_ values: [String?]) { self.values = values }
        static func == (a: Rare, b: Rare) -> Bool { a.values == b.values }
    }

    var expectedStream: String? { self[.expectedStream] }
    var expectedLastMsgID: String? { self[.expectedLastMsgID] }
    var expectedLastSequence: String? { self[.expectedLastSequence] }
    var expectedLastSubjectSequence: String? { self[.expectedLastSubjectSequence] }
    var expectedLastSubjectSequenceSubject: String? { self[.expectedLastSubjectSequenceSubject] }
    var rollup: String? { self[.rollup] }
    var ttl: String? { self[.ttl] }
    var requiredAPILevel: String? { self[.requiredAPILevel] }
    var streamSource: String? { self[.streamSource] }

    /// No headers at all.
    static let none = PublishHeaders()

    private init() {}

    /// True when a check of this publish reads the store or changes what is stored (it is then
    /// ingested alone, not in a batch; `Stream.canBatch`): any name but `Nats-Msg-Id`.
    var readsStore: Bool { rare != nil }

    private enum Name: Int, CaseIterable {
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
        // The rare names' array is made only when one of them is there (most blocks carry at
        // most `Nats-Msg-Id`): no allocation for those.
        var id: String?, others: [String?]?
        func seen(_ n: Name) -> Bool { n == .msgID ? id != nil : others?[n.rawValue] != nil }
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
                    for (bytes, name) in Self.names where bytes.count == colon - i && !seen(name) {
                        if bytes.elementsEqual(b[i..<colon]) {
                            var lo = colon + 1, hi = end
                            while lo < hi && (b[lo] == 32 || b[lo] == 9) { lo += 1 }
                            while hi > lo && (b[hi - 1] == 32 || b[hi - 1] == 9) { hi -= 1 }
                            let value = String(decoding: UnsafeBufferPointer(rebasing: b[lo..<hi]), as: UTF8.self)
                            if name == .msgID {
                                id = value
                            } else {
                                if others == nil { others = Array(repeating: nil, count: Name.allCases.count) }
                                others![name.rawValue] = value
                            }
                            break
                        }
                    }
                }
                i = end + 2
            }
        }
        msgID = id?.isEmpty == true ? nil : id
        rare = others.map(Rare.init)
    }

    private subscript(name: Name) -> String? { rare?.values[name.rawValue] }
}
