import NIOConcurrencyHelpers

/// This node's JetStream storage against the server's `jetstream { max_memory_store,
/// max_file_store }`: limits of the node, over every account's JetStream on it (as
/// nats-server's server limits). Each account's service reports what it stores and reserves
/// here; a publish that would take the node past its limit is refused with 503/10023, and (on
/// a single node) a stream whose `max_bytes` does not fit the limit beside the others' is
/// refused with 10047/10028. In a cluster, placement uses `fits` per server instead
/// (`JetStreamCluster.maxBytesFits`).
///
/// Each service reports on every publish it admits and recounts every 1.5 s (30 housekeeping
/// ticks): until then a removal (purge, expiry, ack) or a follower's apply goes unseen. The
/// account that publishes is counted from its own current numbers.
final class NodeStoreUsage: @unchecked Sendable {
    /// -1: no limit.
    let maxMemory: Int64
    let maxFile: Int64
    private let lock = NIOLock()
    private var reports: [ObjectIdentifier: Report] = [:]

    /// What one account's JetStream stores and reserves on this node, per storage kind.
    struct Report: Equatable {
        var memory: UInt64 = 0
        var file: UInt64 = 0
        var reservedMemory: Int64 = 0
        var reservedFile: Int64 = 0

        func stored(_ kind: StreamConfig.Storage) -> UInt64 { kind == .memory ? memory : file }
        func reserved(_ kind: StreamConfig.Storage) -> Int64 { kind == .memory ? reservedMemory : reservedFile }
    }

    init(maxMemory: Int64, maxFile: Int64) {
        self.maxMemory = maxMemory
        self.maxFile = maxFile
    }

    /// The limit for `kind`; -1 when none is set.
    func limit(_ kind: StreamConfig.Storage) -> Int64 { kind == .memory ? maxMemory : maxFile }

    /// Whether any limit is set (only then do services keep reporting).
    var isLimited: Bool { maxMemory >= 0 || maxFile >= 0 }

    /// Replaces the report of the service `id`.
    func report(_ id: ObjectIdentifier, _ report: Report) {
        lock.withLock { reports[id] = report }
    }

    /// Drops the report of a service that stopped.
    func remove(_ id: ObjectIdentifier) {
        _ = lock.withLock { reports.removeValue(forKey: id) }
    }

    /// 503/10023 when storing `size` more bytes of `kind` would take the node past its limit;
    /// `own` is the publishing service's current stored bytes of `kind` (its report may be older).
    func publishRefusal(_ kind: StreamConfig.Storage, adding size: UInt64, for id: ObjectIdentifier, own: UInt64) -> JSAPIError? {
        let limit = limit(kind)
        guard limit >= 0 else { return nil }
        let others = lock.withLock { reports.reduce(UInt64(0)) { $1.key == id ? $0 : Self.sum($0, $1.value.stored(kind)) } }
        return Self.exceeds(limit: limit, used: Self.sum(others, own), adding: size) ? .insufficientResources : nil
    }

    /// 10047 (file) or 10028 (memory) when a stream that reserves `maxBytes` does not fit the
    /// node's limit beside what every account's other streams reserve here; `ownOthers` is
    /// what the asking service's other streams reserve now.
    func streamRefusal(_ kind: StreamConfig.Storage, maxBytes: Int64, for id: ObjectIdentifier, ownOthers: Int64) -> JSAPIError? {
        let limit = limit(kind)
        guard limit >= 0 else { return nil }
        let others = lock.withLock { reports.reduce(Int64(0)) { $1.key == id ? $0 : Self.sum($0, $1.value.reserved(kind)) } }
        guard !Self.fits(maxBytes: maxBytes, reserved: Self.sum(others, ownOthers), limit: limit) else { return nil }
        return kind == .memory ? .memoryResources : .storageResources("insufficient storage resources available")
    }

    /// Whether a stream reserving `maxBytes` fits beside `reserved` under `limit` (-1: none).
    static func fits(maxBytes: Int64, reserved: Int64, limit: Int64) -> Bool {
        guard limit >= 0 else { return true }
        return reserved <= limit && max(maxBytes, 0) <= limit - reserved
    }

    /// True when `used` plus `adding` passes `limit` (saturating: hostile sizes cannot wrap).
    static func exceeds(limit: Int64, used: UInt64, adding: UInt64) -> Bool {
        guard limit >= 0 else { return false }
        let (total, overflow) = used.addingReportingOverflow(adding)
        return overflow || total > UInt64(limit)
    }

    private static func sum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? .max : s
    }

    static func sum(_ a: Int64, _ b: Int64) -> Int64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? .max : s
    }
}

extension JSAPIError {
    /// nats-server's answer to a publish past the server's storage limit.
    static let insufficientResources = JSAPIError(503, 10023, "insufficient resources")
}
