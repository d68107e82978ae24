/// One of a stream's `sources` (nats-server's `StreamSource`): another stream of the same
/// account whose messages (all, or those under `filter_subject` / the sources of
/// `subject_transforms`) this stream copies in as they come, from `opt_start_seq` or
/// `opt_start_time` on. `external` (another domain or account) is refused: it needs leafnodes.
public struct StreamSourceConfig: Equatable, Sendable {
    public var name: String
    public var optStartSeq: UInt64 = 0
    /// ns since 1970; nil when not set.
    public var optStartTime: Int64?
    public var filterSubject: String?
    public var transforms: [StreamConfig.SubjectMappingConfig] = []

    public init(name: String) { self.name = name }

    /// `owner`: `.source` or `.mirror` (nats-server's `mirror` has the same fields).
    static func decode(_ o: JSONObject, owner: StreamConfig.SubjectMappingConfig.Owner) throws -> StreamSourceConfig {
        try o.rejectUnknown(["name", "opt_start_seq", "opt_start_time", "filter_subject", "subject_transforms", "external", "domain"])
        if o.has("external") || o.has("domain") {
            throw JSAPIError.streamConfig("stream \(owner.rawValue)s from another domain or account are not supported by clusterd yet")
        }
        var s = StreamSourceConfig(name: try o.string("name") ?? "")
        s.optStartSeq = try o.uint64("opt_start_seq") ?? 0
        s.optStartTime = try o.time("opt_start_time")
        if let f = try o.string("filter_subject"), !f.isEmpty { s.filterSubject = f }
        s.transforms = try o.objectArray("subject_transforms", typeName: "SubjectTransformConfig")?
            .map(StreamConfig.SubjectMappingConfig.decode) ?? []
        return s
    }

    /// The filter and destination fields of its `Nats-Stream-Source` header (`>`: none, or
    /// several transforms), which with the stream name tell its messages apart.
    var headerFilter: String? { filterSubject ?? (transforms.count == 1 ? transforms[0].source : nil) }
    var headerDestination: String? { transforms.count == 1 ? transforms[0].destination : nil }
    var headerKey: String { SourceHeader.key(stream: name, filter: headerFilter, destination: headerDestination) }

    /// The subjects this source takes from its stream (none: all of them).
    var filters: [String] {
        if let filterSubject { return [filterSubject] }
        return transforms.map { $0.source.isEmpty ? ">" : $0.source }
    }

    /// What makes two sources the same (nats-server refuses duplicates): the stream and what
    /// is taken from it, and where it goes.
    var identity: String {
        ([name, filterSubject ?? ">"] + transforms.map { "\($0.source)>\($0.destination)" }).joined(separator: " ")
    }

    /// As stream info and the config echo show it (nats-server leaves out what is not set).
    var json: [String: Any] {
        var o: [String: Any] = ["name": name]
        if optStartSeq > 0 { o["opt_start_seq"] = optStartSeq }
        if let optStartTime { o["opt_start_time"] = JSTime.format(optStartTime) }
        if let filterSubject { o["filter_subject"] = filterSubject }
        if !transforms.isEmpty { o["subject_transforms"] = transforms.map { ["src": $0.source, "dest": $0.destination] } }
        return o
    }
}

extension StreamConfig {
    /// `sources` as nats-server 2.15.1 checks them (codes and texts probed).
    func checkSources() throws {
        var seen = Set<String>()
        for s in sources {
            guard StreamConfig.isValidName(s.name) else { throw JSAPIError(400, 10141, "sourced stream name is invalid") }
            if s.filterSubject != nil && !s.transforms.isEmpty {
                throw JSAPIError(400, 10144, "source with multiple subject transforms cannot also have a single subject filter")
            }
            if let f = s.filterSubject, !Subject.isValidSubscription(f) {
                throw JSAPIError(400, 10145, "source filter subject is invalid")
            }
            try s.checkTransforms(.source, overlap: JSAPIError(400, 10147, "source filters can not overlap"))
            guard seen.insert(s.identity).inserted else { throw JSAPIError(400, 10140, "duplicate source configuration detected") }
            if s.name == name { throw JSAPIError.streamConfig("detected cycle") }
        }
    }

    /// `mirror` as nats-server 2.15.1 checks it, in its order (codes and texts probed). A
    /// mirror's own filter is checked when its consumer is made (500/10049), as there.
    func checkMirror() throws {
        guard let m = mirror else { return }
        if firstSeq > 0 { throw JSAPIError(400, 10143, "stream mirrors can not have first sequence configured") }
        if !subjects.isEmpty { throw JSAPIError(400, 10034, "stream mirrors can not contain subjects") }
        if !sources.isEmpty { throw JSAPIError(400, 10031, "stream mirrors can not also contain other sources") }
        if m.filterSubject != nil && !m.transforms.isEmpty {
            throw JSAPIError(400, 10150, "mirror with multiple subject transforms cannot also have a single subject filter")
        }
        try m.checkTransforms(.mirror, overlap: JSAPIError(400, 10152, "mirror subject filters can not overlap"))
        guard StreamConfig.isValidName(m.name) else { throw JSAPIError(400, 10142, "mirrored stream name is invalid") }
        if m.name == name { throw JSAPIError.streamConfig("detected cycle") }
        if let f = m.filterSubject, !Subject.isValidSubscription(f) {
            throw JSAPIError(500, 10049, "subject filter '\(f)' for the mirror invalid subject")
        }
    }
}

extension StreamConfig {
    /// What the stream copies from: its mirror, or its sources (never both).
    var copiedFrom: [StreamSourceConfig] { mirror.map { [$0] } ?? sources }

    /// The streams this one copies from: its sources' and its mirror's.
    var upstreams: [String] { sources.map(\.name) + (mirror.map { [$0.name] } ?? []) }
}

extension StreamSourceConfig {
    /// Each transform's own checks, then that no two take the same subjects.
    func checkTransforms(_ owner: StreamConfig.SubjectMappingConfig.Owner, overlap: JSAPIError) throws {
        for t in transforms { try t.check(owner) }
        let sources = transforms.map { $0.source.isEmpty ? ">" : $0.source }
        for (i, a) in sources.enumerated() where sources[(i + 1)...].contains(where: { Subject.overlaps(a, $0) }) {
            throw overlap
        }
    }
}
