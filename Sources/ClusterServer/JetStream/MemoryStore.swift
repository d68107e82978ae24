/// The in-memory message store (`storage: memory`), also the index the file store keeps in RAM.
public final class MemoryStore: MessageStore {
    private var messages: [UInt64: StreamMessage] = [:]
    /// Live sequences per subject, ascending.
    private var bySubject: [String: [UInt64]] = [:]
    private var st = StoreState()
    /// nats-server counts file-store bytes with a different per-message overhead.
    private let fileAccounting: Bool

    public init(fileAccounting: Bool = false) {
        self.fileAccounting = fileAccounting
        st.firstSeq = 1
    }

    public var state: StoreState {
        var s = st
        s.numSubjects = bySubject.count
        if s.messages == 0 { s.firstSeq = s.lastSeq + 1; s.firstTime = 0 }
        return s
    }

    public func size(subject: String, headers: [UInt8]?, payload: [UInt8]) -> UInt64 {
        let h = headers?.count ?? 0
        if fileAccounting {
            return UInt64(22 + subject.utf8.count + h + payload.count + 8 + (h > 0 ? 4 : 0))
        }
        return UInt64(subject.utf8.count + h + payload.count + 16)
    }

    public func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64) throws -> UInt64 {
        let seq = st.lastSeq + 1
        insert(StreamMessage(seq: seq, subject: subject, headers: headers, payload: payload, time: time))
        return seq
    }

    public func append(subject: String, headers: [UInt8]?, payload: [UInt8], time: Int64, raftIndex: UInt64, at seq: UInt64) throws {
        guard seq > st.lastSeq else { throw StoreError.io("sequence \(seq) not above \(st.lastSeq)") }
        insert(StreamMessage(seq: seq, subject: subject, headers: headers, payload: payload, time: time))
    }

    /// Puts a message at its own sequence (append or replay of a log).
    func insert(_ m: StreamMessage) {
        precondition(m.seq > st.lastSeq || st.messages == 0 && m.seq >= st.lastSeq, "sequences only grow")
        messages[m.seq] = m
        bySubject[m.subject, default: []].append(m.seq)
        if st.messages == 0 { st.firstSeq = m.seq; st.firstTime = m.time }
        st.messages += 1
        st.bytes += size(of: m)
        st.lastSeq = m.seq
        st.lastTime = m.time
    }

    public func load(_ seq: UInt64) -> StreamMessage? { messages[seq] }

    public func next(from seq: UInt64, filters: [String]) -> StreamMessage? {
        guard st.messages > 0 else { return nil }
        let start = max(seq, st.firstSeq)
        guard start <= st.lastSeq else { return nil }
        if filters.count == 1, !Subject.hasWildcard(filters[0]) {
            guard let seqs = bySubject[filters[0]] else { return nil }
            let i = seqs.lowerBound(start)
            return i < seqs.count ? messages[seqs[i]] : nil
        }
        let all = filters.isEmpty || filters.contains(">")
        var s = start
        while s <= st.lastSeq {
            if let m = messages[s], all || filters.contains(where: { Subject.matches(pattern: $0, subject: m.subject) }) {
                return m
            }
            s += 1
        }
        return nil
    }

    public func last(matching filter: String) -> StreamMessage? {
        if !Subject.hasWildcard(filter) {
            return bySubject[filter]?.last.flatMap { messages[$0] }
        }
        guard st.messages > 0 else { return nil }
        var s = st.lastSeq
        while s >= st.firstSeq && s > 0 {
            if let m = messages[s], Subject.matches(pattern: filter, subject: m.subject) { return m }
            s -= 1
        }
        return nil
    }

    public func lastSequence(forSubject subject: String) -> UInt64? { bySubject[subject]?.last }
    public func firstSequence(forSubject subject: String) -> UInt64? { bySubject[subject]?.first }

    public func firstSequence(atOrAfter time: Int64) -> UInt64 {
        guard st.messages > 0 else { return st.lastSeq + 1 }
        var s = st.firstSeq
        while s <= st.lastSeq {
            if let m = messages[s], m.time >= time { return s }
            s += 1
        }
        return st.lastSeq + 1
    }

    public func count(from seq: UInt64, filters: [String]) -> UInt64 {
        guard st.messages > 0 else { return 0 }
        let start = max(seq, st.firstSeq)
        if start > st.lastSeq { return 0 }
        if filters.isEmpty || filters.contains(">") {
            if start == st.firstSeq { return st.messages }
        }
        if filters.allSatisfy({ !Subject.hasWildcard($0) }) && !filters.isEmpty {
            var n: UInt64 = 0
            for f in Set(filters) {
                if let seqs = bySubject[f] { n += UInt64(seqs.count - seqs.lowerBound(start)) }
            }
            return n
        }
        let all = filters.isEmpty || filters.contains(">")
        // Scan whichever is smaller: the remaining range, or the subject index.
        if Int(st.lastSeq - start) < bySubject.count * 4 || all {
            var n: UInt64 = 0
            var s = start
            while s <= st.lastSeq {
                if let m = messages[s], all || filters.contains(where: { Subject.matches(pattern: $0, subject: m.subject) }) { n += 1 }
                s += 1
            }
            return n
        }
        var n: UInt64 = 0
        for (subject, seqs) in bySubject where filters.contains(where: { Subject.matches(pattern: $0, subject: subject) }) {
            n += UInt64(seqs.count - seqs.lowerBound(start))
        }
        return n
    }

    public func subjectCounts(matching filter: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (subject, seqs) in bySubject where filter.isEmpty || Subject.matches(pattern: filter, subject: subject) {
            out[subject] = UInt64(seqs.count)
        }
        return out
    }

    @discardableResult
    public func remove(_ seq: UInt64) throws -> Bool {
        guard let m = messages.removeValue(forKey: seq) else { return false }
        if var seqs = bySubject[m.subject] {
            let i = seqs.lowerBound(seq)
            if i < seqs.count && seqs[i] == seq { seqs.remove(at: i) }
            bySubject[m.subject] = seqs.isEmpty ? nil : seqs
        }
        st.messages -= 1
        st.bytes -= size(of: m)
        if st.messages == 0 {
            st.firstSeq = st.lastSeq + 1
            st.firstTime = 0
        } else if seq == st.firstSeq {
            var s = seq + 1
            while messages[s] == nil && s <= st.lastSeq { s += 1 }
            st.firstSeq = s
            st.firstTime = messages[s]?.time ?? 0
        }
        return true
    }

    public func purge(subject: String?, upTo: UInt64?, keep: UInt64?) throws -> UInt64 {
        var victims: [UInt64] = []
        if let subject {
            for (subj, seqs) in bySubject where Subject.matches(pattern: subject, subject: subj) || subj == subject {
                var candidates = seqs
                if let upTo { candidates = candidates.filter { $0 < upTo } }
                if let keep, keep > 0 { candidates = Array(candidates.dropLast(Int(min(UInt64(candidates.count), keep)))) }
                victims += candidates
            }
            if let keep, keep > 0, Subject.hasWildcard(subject) {
                // keep applies to the filter as a whole, not per subject.
                var all = bySubject.filter { Subject.matches(pattern: subject, subject: $0.key) }.flatMap { $0.value }.sorted()
                if let upTo { all = all.filter { $0 < upTo } }
                victims = Array(all.dropLast(Int(min(UInt64(all.count), keep))))
            }
        } else {
            var all = Array(messages.keys).sorted()
            if let upTo { all = all.filter { $0 < upTo } }
            if let keep, keep > 0 { all = Array(all.dropLast(Int(min(UInt64(all.count), keep)))) }
            if upTo == nil && (keep ?? 0) == 0 {
                let n = st.messages
                messages.removeAll()
                bySubject.removeAll()
                st.messages = 0
                st.bytes = 0
                st.firstSeq = st.lastSeq + 1
                st.firstTime = 0
                return n
            }
            victims = all
        }
        var n: UInt64 = 0
        for s in victims.sorted() where try remove(s) { n += 1 }
        if st.messages == 0, let upTo, upTo > st.lastSeq + 1 { st.lastSeq = upTo - 1; st.firstSeq = upTo }
        return n
    }

    /// Raises the last sequence without a message (a copied stream whose newest ones were removed).
    func advanceLastSeq(to seq: UInt64) {
        guard seq > st.lastSeq else { return }
        st.lastSeq = seq
        if st.messages == 0 { st.firstSeq = seq + 1 }
    }

    public func skip(toNext seq: UInt64) throws {
        guard st.messages == 0, seq > 0 else { return }
        st.lastSeq = seq - 1
        st.firstSeq = seq
    }

    public func sync() throws {}
    public func syncJob() -> (() throws -> Void)? { nil }
    public func close() {}
    public func destroy() {
        messages.removeAll()
        bySubject.removeAll()
    }

    /// Every live message in sequence order (file-store compaction).
    func allMessages() -> [StreamMessage] {
        messages.keys.sorted().compactMap { messages[$0] }
    }
}
