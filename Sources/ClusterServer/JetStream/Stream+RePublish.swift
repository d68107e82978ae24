import NIOCore

/// `subject_transform` and `republish` (nats-server's stream options; `SubjectTransform` maps).
extension Stream {
    /// The transforms of a config, built once per config change (`cacheFlags`). The config
    /// was checked when it was accepted, so building cannot fail here.
    static func transforms(of config: StreamConfig) -> (ingest: SubjectTransform?, republish: SubjectTransform?) {
        let ingest = config.subjectTransform.flatMap { try? SubjectTransform(source: $0.source, destination: $0.destination) }
        let republish = config.republish.flatMap { try? SubjectTransform(source: $0.source, destination: $0.destination) }
        return (ingest, republish)
    }

    /// The subject a publish on `subject` is stored under: mapped by `subject_transform` when
    /// it matches, else unchanged. nil when the mapping makes something that is not a subject
    /// (a `split` leaving an empty token): the publish is refused rather than stored under it.
    func storedSubject(_ subject: String) -> String? {
        guard let t = ingestTransform, let mapped = t.apply(subject) else { return subject }
        return Subject.isValidLiteral(mapped) ? mapped : nil
    }

    /// The refusal of a publish whose mapped subject is not a subject.
    static func invalidMappedSubject(_ subject: String) -> JSAPIError {
        JSAPIError(400, 10156, "stream transform: \(subject) maps to an invalid subject")
    }

    /// Before storing messages: the last sequence of each of their subjects when this node
    /// republishes them (`Nats-Last-Sequence`), nil otherwise (followers, no `republish`).
    func lastSequencesForRepublish<S: Sequence>(_ subjects: S) -> [String: UInt64]? where S.Element == String {
        guard republishTransform != nil, actsForStream else { return nil }
        var last: [String: UInt64] = [:]
        for s in subjects where last[s] == nil { last[s] = store.lastSequence(forSubject: s) ?? 0 }
        return last
    }

    /// Publishes a copy of a message just stored at `seq` to the republish destination when
    /// its subject matches the source (only the node that acts for the stream: one copy per
    /// cluster). Headers as nats-server 2.15.1 sends them: the message's own, then
    /// `Nats-Stream`, `Nats-Subject`, `Nats-Sequence`, `Nats-Time-Stamp`, `Nats-Last-Sequence`
    /// (the subject's previous sequence, 0 for none), and with `headers_only` no payload and
    /// `Nats-Msg-Size`. `last` is updated to `seq` for the next message of the same batch.
    func republish(subject: String, headers: [UInt8]?, payload: [UInt8], seq: UInt64, time: Int64, last: inout [String: UInt64]) {
        let previous = last[subject] ?? 0
        last[subject] = seq
        guard let t = republishTransform, let destination = t.apply(subject), Subject.isValidLiteral(destination) else { return }
        // A destination function can land back on the stream's own subjects, which the config
        // check (by tokens, as nats-server's) does not see: that copy would be stored and
        // republished again, forever.
        if config.subjects.contains(where: { Subject.matches(pattern: $0, subject: destination) }) { return }
        let headersOnly = config.republish?.headersOnly ?? false
        var fields = [("Nats-Stream", name), ("Nats-Subject", subject), ("Nats-Sequence", String(seq)),
                      ("Nats-Time-Stamp", JSTime.format(time)), ("Nats-Last-Sequence", String(previous))]
        if headersOnly { fields.append(("Nats-Msg-Size", String(payload.count))) }
        let block = NATSHeaderBlock.appending(fields, to: headers)
        service.bus.publishInternal(subject: destination, headers: ByteBuffer(bytes: block),
                                    payload: headersOnly ? ByteBuffer() : ByteBuffer(bytes: payload))
    }
}
