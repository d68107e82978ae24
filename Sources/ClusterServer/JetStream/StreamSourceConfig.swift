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

    static func decode(_ o: JSONObject) throws -> StreamSourceConfig {
        try o.rejectUnknown(["name", "opt_start_seq", "opt_start_time", "filter_subject", "subject_transforms", "external", "domain"])
        if o.has("external") || o.has("domain") {
            throw JSAPIError.streamConfig("stream sources from another domain or account are not supported by clusterd yet")
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
            for t in s.transforms { try t.check() }
            guard seen.insert(s.identity).inserted else { throw JSAPIError(400, 10140, "duplicate source configuration detected") }
            if s.name == name { throw JSAPIError.streamConfig("detected cycle") }
        }
    }
}
