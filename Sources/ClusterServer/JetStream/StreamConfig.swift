/// A stream's configuration (`stream.go: StreamConfig`), decoded strictly from API JSON and
/// normalised the way nats-server does (0 limits become -1, default subjects, windows).
public struct StreamConfig: Equatable, Sendable {
    public enum Retention: String, Sendable { case limits, interest, workqueue }
    public enum Discard: String, Sendable { case old, new }
    public enum Storage: String, Sendable { case file, memory }

    public var name: String
    public var description: String?
    public var subjects: [String] = []
    public var retention: Retention = .limits
    public var maxConsumers = -1
    public var maxMsgs: Int64 = -1
    public var maxBytes: Int64 = -1
    public var maxAgeNanos: Int64 = 0
    public var maxMsgsPerSubject: Int64 = -1
    public var maxMsgSize: Int64 = -1
    public var discard: Discard = .old
    public var discardNewPerSubject = false
    public var storage: Storage = .file
    public var numReplicas = 1
    public var noAck = false
    public var duplicateWindowNanos: Int64 = 0
    public var allowRollup = false
    public var denyDelete = false
    public var denyPurge = false
    public var allowDirect = false
    public var mirrorDirect = false
    public var sealed = false
    public var firstSeq: UInt64 = 0
    public var metadata: [String: String]?
    public var compression = "none"
    public var allowMsgTTL = false
    public var subjectDeleteMarkerTTLNanos: Int64 = 0
    public var consumerInactiveThresholdNanos: Int64 = 0
    public var consumerMaxAckPending = 0
    /// `subject_transform`: publishes are stored under the mapped subject.
    public var subjectTransform: SubjectMappingConfig?
    /// `republish`: each stored message is also published to the mapped subject.
    public var republish: RePublishConfig?
    /// `sources`: streams whose messages this one copies in (`StreamSources.swift`).
    public var sources: [StreamSourceConfig] = []
    /// `mirror`: the stream this one is a copy of, at the same sequences (`StreamSources.swift`).
    public var mirror: StreamSourceConfig?

    /// A `subject_transform` as configured (`src` "" means every subject).
    public struct SubjectMappingConfig: Equatable, Sendable {
        public var source: String
        public var destination: String

        static func decode(_ o: JSONObject) throws -> SubjectMappingConfig {
            try o.rejectUnknown(["src", "dest"])
            return .init(source: try o.string("src") ?? "", destination: try o.string("dest") ?? "")
        }

        /// Whose transform it is: nats-server 2.15.1 words and numbers the refusals apart.
        enum Owner: String {
            case stream, source, mirror

            /// The codes for a bad source subject and a bad destination.
            var codes: (source: Int, destination: Int) {
                switch self {
                case .stream: return (10155, 10156)
                case .source: return (10145, 10146)
                case .mirror: return (10151, 10154)
                }
            }
        }

        /// nats-server's checks of a transform (codes and texts probed).
        func check(_ owner: Owner = .stream) throws {
            if !source.isEmpty && !Subject.isValidSubscription(source) {
                throw JSAPIError(400, owner.codes.source, "\(owner.rawValue) transform source: invalid subject \(source)")
            }
            do { _ = try SubjectTransform(source: source, destination: destination) } catch {
                throw JSAPIError(400, owner.codes.destination, "\(owner.rawValue) transform: \(error)")
            }
        }
    }

    /// A `republish` as configured (`src` "" is stored as `>`, as nats-server does).
    public struct RePublishConfig: Equatable, Sendable {
        public var source: String
        public var destination: String
        /// Send only the headers, with the payload's size in `Nats-Msg-Size`.
        public var headersOnly: Bool
    }

    static let defaultDuplicateWindowNanos: Int64 = 120_000_000_000

    /// Every field nats-server's StreamConfig knows; anything else is refused (strict mode).
    static let knownFields: Set<String> = [
        "name", "description", "subjects", "retention", "max_consumers", "max_msgs", "max_bytes", "max_age",
        "max_msgs_per_subject", "max_msg_size", "discard", "discard_new_per_subject", "storage", "num_replicas",
        "no_ack", "template_owner", "duplicate_window", "placement", "mirror", "sources", "compression", "first_seq",
        "subject_transform", "republish", "allow_direct", "mirror_direct", "sealed", "deny_delete", "deny_purge",
        "allow_rollup_hdrs", "consumer_limits", "allow_msg_ttl", "subject_delete_marker_ttl", "metadata",
        "allow_msg_counter", "allow_atomic", "allow_msg_schedules", "persist_mode", "allow_batched",
    ]

    public init(name: String) { self.name = name }

    /// A config as stored (`meta.json`, meta and stream-log entries, copies): decoded and
    /// normalized as a create would.
    static func decodeNormalized(_ o: JSONObject, clustered: Bool) throws -> StreamConfig {
        var cfg = try decode(o)
        try cfg.normalize(clustered: clustered)
        return cfg
    }

    /// Decodes an API body. Type errors and unknown fields become 10025.
    static func decode(_ o: JSONObject) throws -> StreamConfig {
        try o.rejectUnknown(knownFields)
        var c = StreamConfig(name: try o.string("name") ?? "")
        c.description = try o.string("description")
        c.subjects = try o.stringArray("subjects") ?? []
        if let r = try o.string("retention") {
            guard let v = Retention(rawValue: r) else { throw JSAPIError.cannotUnmarshal(r) }
            c.retention = v
        }
        c.maxConsumers = try o.int("max_consumers") ?? -1
        c.maxMsgs = try o.int64("max_msgs") ?? -1
        c.maxBytes = try o.int64("max_bytes") ?? -1
        c.maxAgeNanos = try o.int64("max_age", goType: "time.Duration") ?? 0
        c.maxMsgsPerSubject = try o.int64("max_msgs_per_subject") ?? -1
        c.maxMsgSize = try o.int64("max_msg_size", goType: "int32") ?? -1
        if let d = try o.string("discard") {
            guard let v = Discard(rawValue: d) else { throw JSAPIError.cannotUnmarshal(d) }
            c.discard = v
        }
        c.discardNewPerSubject = try o.bool("discard_new_per_subject") ?? false
        if let s = try o.string("storage") {
            guard let v = Storage(rawValue: s) else { throw JSAPIError.cannotUnmarshal(s) }
            c.storage = v
        }
        c.numReplicas = try o.int("num_replicas") ?? 1
        c.noAck = try o.bool("no_ack") ?? false
        c.duplicateWindowNanos = try o.int64("duplicate_window", goType: "time.Duration") ?? 0
        c.allowRollup = try o.bool("allow_rollup_hdrs") ?? false
        c.denyDelete = try o.bool("deny_delete") ?? false
        c.denyPurge = try o.bool("deny_purge") ?? false
        c.allowDirect = try o.bool("allow_direct") ?? false
        c.mirrorDirect = try o.bool("mirror_direct") ?? false
        c.sealed = try o.bool("sealed") ?? false
        c.firstSeq = try o.uint64("first_seq") ?? 0
        // Server-added `_nats.*` keys come back from clients that echo a config; not user data.
        c.metadata = try o.stringMap("metadata")?.filter { !$0.key.hasPrefix("_nats.") }
        if c.metadata?.isEmpty == true { c.metadata = nil }
        if let comp = try o.string("compression") {
            guard comp == "none" || comp == "s2" || comp.isEmpty else {
                throw JSAPIError.invalidJSON("unknown compression algorithm")
            }
            c.compression = comp.isEmpty ? "none" : comp
        }
        c.allowMsgTTL = try o.bool("allow_msg_ttl") ?? false
        c.subjectDeleteMarkerTTLNanos = try o.int64("subject_delete_marker_ttl", goType: "time.Duration") ?? 0
        if let cl = try o.object("consumer_limits", typeName: "StreamConsumerLimits") {
            try cl.rejectUnknown(["inactive_threshold", "max_ack_pending"])
            c.consumerInactiveThresholdNanos = try cl.int64("inactive_threshold", goType: "time.Duration") ?? 0
            c.consumerMaxAckPending = try cl.int("max_ack_pending") ?? 0
        }
        if let t = try o.object("subject_transform", typeName: "SubjectTransformConfig") {
            c.subjectTransform = try .decode(t)
        }
        if let r = try o.object("republish", typeName: "RePublish") {
            try r.rejectUnknown(["src", "dest", "headers_only"])
            c.republish = .init(source: try r.string("src") ?? "", destination: try r.string("dest") ?? "",
                                headersOnly: try r.bool("headers_only") ?? false)
        }
        c.sources = try o.objectArray("sources", typeName: "StreamSource")?.map { try StreamSourceConfig.decode($0, owner: .source) } ?? []
        c.mirror = try o.object("mirror", typeName: "StreamSource").map { try StreamSourceConfig.decode($0, owner: .mirror) }
        for feature in ["allow_msg_counter", "allow_atomic", "allow_msg_schedules", "allow_batched"] where (try o.bool(feature)) == true {
            throw JSAPIError.streamConfig("stream \(feature) is not supported by clusterd yet")
        }
        if let pm = try o.string("persist_mode"), pm != "default", !pm.isEmpty {
            throw JSAPIError.streamConfig("stream persist_mode \(pm) is not supported by clusterd yet")
        }
        return c
    }

    /// Validates and fills defaults (`checkStreamCfg`). Errors use 10052 with nats-server's text.
    /// `clustered`: replicas above 1 are allowed (placement checks them against the cluster).
    mutating func normalize(clustered: Bool = false) throws {
        guard StreamConfig.isValidName(name) else { throw JSAPIError.invalidStreamName }
        if let d = description, d.utf8.count > 4096 { throw JSAPIError.streamDescriptionTooLong }
        if let md = metadata, md.reduce(0, { $0 + $1.key.utf8.count + $1.value.utf8.count }) > 128 * 1024 {
            throw JSAPIError.streamConfig("stream metadata exceeds maximum size of 128 KiB")
        }
        if numReplicas == 0 { numReplicas = 1 }
        if numReplicas < 0 { throw JSAPIError(400, 10133, "replicas count cannot be negative") }
        if numReplicas > 5 { throw JSAPIError.streamConfig("maximum replicas is 5") }
        if numReplicas > 1 && !clustered { throw JSAPIError.replicasNotSupported }
        if firstSeq > UInt64(Int64.max) { throw JSAPIError.streamConfig("first sequence is too large") }
        if maxMsgs == 0 { maxMsgs = -1 }
        if maxBytes == 0 { maxBytes = -1 }
        if maxMsgSize <= 0 { maxMsgSize = -1 } // a negative one too, as nats-server 2.15.1
        if maxConsumers == 0 { maxConsumers = -1 }
        if maxMsgsPerSubject == 0 { maxMsgsPerSubject = -1 }
        if maxAgeNanos < 0 { throw JSAPIError.streamConfig("max age needs to be >= 0") }
        if maxAgeNanos != 0 && maxAgeNanos < 100_000_000 { throw JSAPIError.streamConfig("max age needs to be >= 100ms") }
        if maxMsgSize > Int64(Int32.max) { throw JSAPIError.streamConfig("max message size exceeds maximum of 2147483647") }
        if duplicateWindowNanos < 0 { throw JSAPIError.streamConfig("duplicates window can not be negative") }
        if duplicateWindowNanos == 0 {
            duplicateWindowNanos = StreamConfig.defaultDuplicateWindowNanos
            if maxAgeNanos != 0 && maxAgeNanos < duplicateWindowNanos { duplicateWindowNanos = maxAgeNanos }
        } else {
            if duplicateWindowNanos < 100_000_000 && duplicateWindowNanos != 0 {
                throw JSAPIError.streamConfig("duplicates window needs to be >= 100ms")
            }
            if maxAgeNanos != 0 && duplicateWindowNanos > maxAgeNanos {
                throw JSAPIError.streamConfig("duplicates window can not be larger then max age")
            }
        }
        if discardNewPerSubject {
            if discard != .new { throw JSAPIError.streamConfig("discard new per subject requires discard new policy to be set") }
            if maxMsgsPerSubject <= 0 { throw JSAPIError.streamConfig("discard new per subject requires max msgs per subject > 0") }
        }
        if subjectDeleteMarkerTTLNanos < 0 {
            throw JSAPIError.streamConfig("subject delete marker TTL must not be negative")
        }
        if subjectDeleteMarkerTTLNanos > 0 {
            if subjectDeleteMarkerTTLNanos < 1_000_000_000 {
                throw JSAPIError.streamConfig("subject delete marker TTL must be at least 1 second")
            }
            // Markers carry `Nats-TTL` and `Nats-Rollup: sub`: nats-server turns on what they
            // need rather than refusing the config (checked against 2.15.1).
            allowMsgTTL = true
            allowRollup = true
            denyPurge = false
        }
        if allowRollup && denyPurge { throw JSAPIError.streamConfig("roll-ups require the purge permission") }
        try checkMirror()
        // A stream fed only by its sources, or a mirror, listens on nothing (as nats-server).
        if subjects.isEmpty && sources.isEmpty && mirror == nil { subjects = [name] }
        var seen = Set<String>()
        for s in subjects {
            guard Subject.isValidSubscription(s) else { throw JSAPIError.streamConfig("invalid subject") }
            guard seen.insert(s).inserted else { throw JSAPIError.streamConfig("duplicate subjects detected") }
            if s.hasPrefix("$JS.API") || s == ">" || s.hasPrefix("$JSC.") || s.hasPrefix("$NRG.") {
                if Subject.overlaps(s, "$JS.API.>") {
                    throw JSAPIError.streamConfig("subjects that overlap with jetstream api require no-ack to be true")
                }
            }
        }
        for (i, a) in subjects.enumerated() {
            for b in subjects[(i + 1)...] where Subject.overlaps(a, b) {
                throw JSAPIError.streamConfig("subject \"\(a)\" overlaps with \"\(b)\"")
            }
        }
        try checkTransforms()
        try checkSources()
    }

    /// `subject_transform` and `republish` as nats-server checks them (texts and codes probed
    /// against 2.15.1).
    private mutating func checkTransforms() throws {
        try subjectTransform?.check()
        guard var r = republish else { return }
        if r.source.isEmpty { r.source = ">" }
        republish = r
        if subjects.contains(where: { Subject.overlaps($0, r.destination) }) {
            throw JSAPIError.streamConfig("stream configuration for republish destination forms a cycle")
        }
        // An empty destination is no transform (accepted, nothing is republished).
        if !r.destination.isEmpty, (try? SubjectTransform(source: r.source, destination: r.destination)) == nil {
            throw JSAPIError.streamConfig("stream configuration for republish with transform from '\(r.source)' to '\(r.destination)' not valid")
        }
    }

    /// nats-server's `isValidName`: non-empty, no whitespace, `.`, `*`, `>`, path separators.
    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        for b in name.utf8 {
            switch b {
            case UInt8(ascii: "."), UInt8(ascii: "*"), UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "\\"),
                 UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"), 0:
                return false
            default: continue
            }
        }
        return true
    }

    /// Refusals of an update (`stream.go: checkStreamUpdate` rules).
    func checkUpdate(to new: StreamConfig) throws {
        if new.storage != storage { throw JSAPIError.streamUpdate("stream configuration update can not change storage type") }
        if (new.retention == .workqueue) != (retention == .workqueue) && new.retention != retention {
            throw JSAPIError.streamUpdate("stream configuration update can not change retention policy to/from workqueue")
        }
        if sealed && !new.sealed { throw JSAPIError.streamUpdate("stream configuration update can not unseal a sealed stream") }
        if denyDelete && !new.denyDelete { throw JSAPIError.streamUpdate("stream configuration update can not cancel deny message deletes") }
        if denyPurge && !new.denyPurge { throw JSAPIError.streamUpdate("stream configuration update can not cancel deny purge") }
        if allowMsgTTL && !new.allowMsgTTL { throw JSAPIError.streamUpdate("message TTL status can not be disabled") }
        if new.firstSeq != firstSeq && new.firstSeq != 0 {
            throw JSAPIError.streamUpdate("stream configuration update can not change first sequence")
        }
        // Dropping the mirror makes the stream an ordinary one (nats-server 2.15.1 allows it).
        if new.mirror != nil && new.mirror != mirror {
            throw JSAPIError(400, 10055, "stream mirror configuration can not be updated")
        }
    }

    /// The config as the API shows it.
    var json: [String: Any] {
        var o: [String: Any] = [
            "name": name, "retention": retention.rawValue, "max_consumers": maxConsumers,
            "max_msgs": maxMsgs, "max_bytes": maxBytes, "max_age": maxAgeNanos, "max_msgs_per_subject": maxMsgsPerSubject,
            "max_msg_size": maxMsgSize, "discard": discard.rawValue, "storage": storage.rawValue,
            "num_replicas": numReplicas, "duplicate_window": duplicateWindowNanos, "compression": compression,
            "allow_direct": allowDirect, "mirror_direct": mirrorDirect, "sealed": sealed, "deny_delete": denyDelete,
            "deny_purge": denyPurge, "allow_rollup_hdrs": allowRollup,
        ]
        var limits: [String: Any] = [:]
        if consumerInactiveThresholdNanos > 0 { limits["inactive_threshold"] = consumerInactiveThresholdNanos }
        if consumerMaxAckPending > 0 { limits["max_ack_pending"] = consumerMaxAckPending }
        o["consumer_limits"] = limits
        if let description, !description.isEmpty { o["description"] = description }
        if noAck { o["no_ack"] = true }
        if discardNewPerSubject { o["discard_new_per_subject"] = true }
        if firstSeq > 0 { o["first_seq"] = firstSeq }
        if let metadata, !metadata.isEmpty { o["metadata"] = metadata }
        o["allow_msg_ttl"] = allowMsgTTL
        if subjectDeleteMarkerTTLNanos > 0 { o["subject_delete_marker_ttl"] = subjectDeleteMarkerTTLNanos }
        if let t = subjectTransform { o["subject_transform"] = ["src": t.source, "dest": t.destination] }
        if !sources.isEmpty { o["sources"] = sources.map(\.json) }
        if let mirror { o["mirror"] = mirror.json }
        // A stream fed only by sources has none (nats-server leaves the field out).
        if !subjects.isEmpty { o["subjects"] = subjects }
        if let r = republish {
            var rp: [String: Any] = ["src": r.source, "dest": r.destination]
            if r.headersOnly { rp["headers_only"] = true }
            o["republish"] = rp
        }
        return o
    }
}
