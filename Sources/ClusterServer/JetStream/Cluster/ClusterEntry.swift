import Foundation

/// The entries of a stream's Raft group. Messages are binary (they are the hot path); the rare
/// operations (purge, delete, consumer records, compaction) are JSON.
enum StreamEntry {
    /// A publish accepted by the leader. The checks (dedup, expected-*) run again at apply on
    /// every replica against the same state, so every replica decides the same way. `reply` is
    /// the publisher's reply subject: whichever node leads when the entry applies sends the
    /// PubAck, so a publish in flight during a leader change is still answered. `timestamp` is
    /// the leader's wall clock (the message's time); `dedupTime` is "now" for the duplicate
    /// window (`DedupClock`), equal to `timestamp` in entries written before it existed.
    case message(subject: String, reply: String?, headers: [UInt8]?, payload: [UInt8], timestamp: Int64, dedupTime: Int64)
    case op([String: Any])
    /// A consumer's record (`ConsumerRecord`), written as is to its file by every replica.
    /// Older logs carry it as the op `consumer` (still applied).
    case consumerRecord(name: String, record: [UInt8])
    /// Stream sequences the leader removed because every interested consumer acknowledged them
    /// (interest and work-queue retention): every replica removes them too, so a new leader's
    /// store does not bring acknowledged messages back (`Stream.retentionRemoved`).
    case retentionRemoved([Range<UInt64>])
    /// A subject delete marker the leader found due (`Stream.markersDue`): every replica stores
    /// it at `timestamp` if the subject still has no message when the entry applies.
    case marker(subject: String, timestamp: Int64)

    struct DecodeError: Error, CustomStringConvertible {
        let description: String
    }

    static let messageTag: UInt8 = 1
    private static let opTag: UInt8 = 2
    private static let consumerRecordTag: UInt8 = 3
    /// A message with its dedup time (tag 1, without it, is still read).
    static let messageDedupTag: UInt8 = 4
    /// Tag 4 whose `Nats-Msg-Id` the proposing leader already found new (`isDedupDecided`):
    /// apply records the id without looking it up, so a replica whose duplicate window lacks
    /// ids (restarted, or copied from the leader) stores what its peers store.
    static let messageDecidedTag: UInt8 = 5
    private static let retentionRemovedTag: UInt8 = 6
    private static let markerTag: UInt8 = 7
    /// Tag 4's layout, for a message a stream's source copied in (`StreamSources.swift`): its
    /// `Nats-Stream-Source` header is the server's own, not refused as a client's would be.
    static let messageSourcedTag: UInt8 = 8
    /// Tag 4's layout with the stream sequence first (tag | seq u64 | ...), for a message the
    /// stream's mirror copied in: stored at that sequence, as it is (`StreamSources.swift`).
    static let messageMirroredTag: UInt8 = 9
    /// Ranges per `retentionRemoved` entry at most (12 bytes each): a consumer acking far out
    /// of order makes many entries, never one huge one.
    static let maxRetentionRanges = 4_096
    private static let none = UInt32.max

    /// tag | timestamp i64 | [dedup time i64, tags 4 and 5] | subject | reply | headers | payload,
    /// where subject, reply and headers are u32 length (0xFFFFFFFF = absent) + bytes, all
    /// little-endian. Without `dedupTime` the entry is written as before it existed (tag 1);
    /// `dedupDecided` (tag 5) needs a dedup time.
    static func encodeMessage(subject: String, reply: String?, headers: [UInt8]?, payload: [UInt8], timestamp: Int64,
                              dedupTime: Int64? = nil, dedupDecided: Bool = false, sourced: Bool = false,
                              mirrorSeq: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(37 + subject.utf8.count + (reply?.utf8.count ?? 0) + (headers?.count ?? 0) + payload.count)
        let dedupTime = sourced || mirrorSeq != nil ? dedupTime ?? timestamp : dedupTime
        if let mirrorSeq {
            out.append(messageMirroredTag)
            withUnsafeBytes(of: mirrorSeq.littleEndian) { out.append(contentsOf: $0) }
        } else {
            out.append(sourced ? messageSourcedTag : dedupTime == nil ? messageTag : dedupDecided ? messageDecidedTag : messageDedupTag)
        }
        withUnsafeBytes(of: timestamp.littleEndian) { out.append(contentsOf: $0) }
        if let dedupTime { withUnsafeBytes(of: dedupTime.littleEndian) { out.append(contentsOf: $0) } }
        func put<C: Collection>(_ bytes: C?) where C.Element == UInt8 {
            let n = bytes.map { UInt32($0.count) } ?? none
            withUnsafeBytes(of: n.littleEndian) { out.append(contentsOf: $0) }
            if let bytes { out.append(contentsOf: bytes) }
        }
        put(Array(subject.utf8))
        put(reply.map { Array($0.utf8) })
        put(headers)
        out.append(contentsOf: payload)
        return out
    }

    /// Whether an encoded entry is a message whose dedup the leader decided (tag 5).
    static func isDedupDecided(_ bytes: [UInt8]) -> Bool { bytes.first == messageDecidedTag }

    /// Whether an encoded entry is a sourced message (tag 8).
    static func isSourced(_ bytes: [UInt8]) -> Bool { bytes.first == messageSourcedTag }

    /// The sequence a mirrored message (tag 9) is stored at; nil for any other entry.
    static func mirroredSeq(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.first == messageMirroredTag, bytes.count >= 9 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[1 + i]) << (8 * UInt64(i)) }
        return v
    }

    static func encodeOp(_ body: [String: Any]) -> [UInt8] {
        [opTag] + JSJSON.encode(body)
    }

    /// tag | u32 name length | name | record (JSON), little-endian.
    static func encodeConsumerRecord(name: String, record: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [consumerRecordTag]
        out.reserveCapacity(5 + name.utf8.count + record.count)
        withUnsafeBytes(of: UInt32(name.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out += Array(name.utf8)
        out += record
        return out
    }

    /// tag | (first seq u64, count u32) per run of consecutive sequences, little-endian; one
    /// entry per `maxRetentionRanges` runs of the ascending, distinct `seqs`.
    static func encodeRetentionRemoved(_ seqs: [UInt64]) -> [[UInt8]] {
        var entries: [[UInt8]] = []
        var out: [UInt8] = [retentionRemovedTag], runs = 0
        var i = seqs.startIndex
        while i < seqs.endIndex {
            var j = i + 1
            while j < seqs.endIndex, seqs[j] == seqs[j - 1] &+ 1, j - i < Int(UInt32.max) { j += 1 }
            withUnsafeBytes(of: seqs[i].littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(j - i).littleEndian) { out.append(contentsOf: $0) }
            runs += 1
            if runs == maxRetentionRanges {
                entries.append(out)
                out = [retentionRemovedTag]
                runs = 0
            }
            i = j
        }
        if runs > 0 { entries.append(out) }
        return entries
    }

    /// tag | timestamp i64 little-endian | subject.
    static func encodeMarker(subject: String, timestamp: Int64) -> [UInt8] {
        var out: [UInt8] = [markerTag]
        withUnsafeBytes(of: timestamp.littleEndian) { out.append(contentsOf: $0) }
        out += Array(subject.utf8)
        return out
    }

    /// Decodes an entry; throws on anything `encode*` cannot have produced (never traps).
    static func decode(_ bytes: [UInt8]) throws -> StreamEntry {
        guard let tag = bytes.first else { throw DecodeError(description: "empty entry") }
        if tag == opTag {
            return .op(try JSONObject.parse(Array(bytes[1...]), typeName: "StreamOp").fields)
        }
        if tag == consumerRecordTag {
            guard bytes.count >= 5 else { throw DecodeError(description: "truncated entry") }
            var n = 0
            for i in 0..<4 { n |= Int(bytes[1 + i]) << (8 * i) }
            guard n > 0, n <= bytes.count - 5 else { throw DecodeError(description: "bad consumer name length") }
            let name = String(decoding: bytes[5..<(5 + n)], as: UTF8.self)
            // A name that could escape the consumers directory was never proposed by a leader.
            guard StreamConfig.isValidName(name) else { throw DecodeError(description: "bad consumer name") }
            return .consumerRecord(name: name, record: Array(bytes[(5 + n)...]))
        }
        if tag == retentionRemovedTag {
            return .retentionRemoved(try decodeRetentionRemoved(bytes))
        }
        if tag == markerTag {
            guard bytes.count > 9 else { throw DecodeError(description: "truncated marker") }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[1 + i]) << (8 * UInt64(i)) }
            let subject = String(decoding: bytes[9...], as: UTF8.self)
            guard Subject.isValidLiteral(subject) else { throw DecodeError(description: "bad marker subject") }
            return .marker(subject: subject, timestamp: Int64(bitPattern: v))
        }
        guard tag == messageTag || tag == messageDedupTag || tag == messageDecidedTag || tag == messageSourcedTag
                || tag == messageMirroredTag else {
            throw DecodeError(description: "unknown entry tag \(tag)")
        }
        var at = 1
        if tag == messageMirroredTag {
            // A leader mirrors what its origin stored: never sequence 0.
            guard let seq = mirroredSeq(bytes), seq > 0 else { throw DecodeError(description: "bad mirrored sequence") }
            at = 9
        }
        func u32() throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw DecodeError(description: "truncated entry") }
            defer { at += 4 }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        func field() throws -> ArraySlice<UInt8>? {
            let n = try u32()
            if n == none { return nil }
            guard Int(n) <= bytes.count - at else { throw DecodeError(description: "field longer than the entry") }
            defer { at += Int(n) }
            return bytes[at..<(at + Int(n))]
        }
        func i64() throws -> Int64 {
            guard at + 8 <= bytes.count else { throw DecodeError(description: "truncated entry") }
            defer { at += 8 }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return Int64(bitPattern: v)
        }
        let ts = try i64()
        let dedupTime = tag == messageTag ? ts : try i64()
        guard let subject = try field() else { throw DecodeError(description: "message without subject") }
        let reply = try field()
        let headers = try field()
        return .message(subject: String(decoding: subject, as: UTF8.self), reply: reply.map { String(decoding: $0, as: UTF8.self) },
                        headers: headers.map(Array.init), payload: Array(bytes[at...]), timestamp: ts, dedupTime: dedupTime)
    }

    private static func decodeRetentionRemoved(_ bytes: [UInt8]) throws -> [Range<UInt64>] {
        let body = bytes.count - 1
        guard body > 0, body % 12 == 0, body / 12 <= maxRetentionRanges else {
            throw DecodeError(description: "bad retention removal length \(body)")
        }
        var runs: [Range<UInt64>] = []
        runs.reserveCapacity(body / 12)
        var at = 1
        while at < bytes.count {
            var first: UInt64 = 0, count: UInt32 = 0
            for k in 0..<8 { first |= UInt64(bytes[at + k]) << (8 * UInt64(k)) }
            for k in 0..<4 { count |= UInt32(bytes[at + 8 + k]) << (8 * UInt32(k)) }
            at += 12
            // A leader removes what it stored: no run is empty, starts at 0 or wraps.
            let (end, overflow) = first.addingReportingOverflow(UInt64(count))
            guard count > 0, first > 0, !overflow else { throw DecodeError(description: "bad retention removal run") }
            runs.append(first..<end)
        }
        return runs
    }
}
