import Atomics
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
///
/// The limits change on a config reload (`setLimits`); `generation` tells the services to
/// report their reservations again (they may not have counted any while unlimited).
final class NodeStoreUsage: @unchecked Sendable {
    /// Atomics: read on every publish, written only by a reload.
    private let memoryLimit: ManagedAtomic<Int64>
    private let fileLimit: ManagedAtomic<Int64>
    private let changes = ManagedAtomic<UInt64>(0)
    private let lock = NIOLock()
    private var reports: [ObjectIdentifier: Report] = [:]

    /// -1: no limit.
    var maxMemory: Int64 { memoryLimit.load(ordering: .relaxed) }
    var maxFile: Int64 { fileLimit.load(ordering: .relaxed) }
    /// Counts the limit changes since start.
    var generation: UInt64 { changes.load(ordering: .acquiring) }

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
        memoryLimit = ManagedAtomic(max(maxMemory, -1))
        fileLimit = ManagedAtomic(max(maxFile, -1))
    }

    /// New limits (a config reload; -1: none). Lowering one below what is stored refuses
    /// publishes from then on; nothing stored is removed.
    func setLimits(maxMemory: Int64, maxFile: Int64) {
        memoryLimit.store(max(maxMemory, -1), ordering: .relaxed)
        fileLimit.store(max(maxFile, -1), ordering: .relaxed)
        changes.wrappingIncrement(ordering: .releasing)
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
        lock.withLock { refusalLocked(kind, adding: size, for: id, own: own) }
    }

    /// The publish path's `publishRefusal` and, when the publish is admitted, `report` (the
    /// service's figures with it counted) under one lock.
    func admit(_ kind: StreamConfig.Storage, adding size: UInt64, for id: ObjectIdentifier, own: UInt64,
               reporting report: Report) -> JSAPIError? {
        lock.withLock {
            if let refusal = refusalLocked(kind, adding: size, for: id, own: own) { return refusal }
            reports[id] = report
            return nil
        }
    }

    private func refusalLocked(_ kind: StreamConfig.Storage, adding size: UInt64, for id: ObjectIdentifier, own: UInt64) -> JSAPIError? {
        let limit = limit(kind)
        guard limit >= 0 else { return nil }
        let others = reports.reduce(UInt64(0)) { $1.key == id ? $0 : saturatingAdd($0, $1.value.stored(kind)) }
        return Self.exceeds(limit: limit, used: saturatingAdd(others, own), adding: size) ? .insufficientResources : nil
    }

    /// What the limit for `kind` leaves for the service `id` beside what every other account's
    /// streams reserve here (never below 0); -1 when no limit is set. In a cluster this is the
    /// limit this node announces to the account's meta leader, so its placement counts the
    /// other accounts' streams too.
    func room(_ kind: StreamConfig.Storage, for id: ObjectIdentifier) -> Int64 {
        let limit = limit(kind)
        guard limit >= 0 else { return -1 }
        let others = lock.withLock { reports.reduce(Int64(0)) { $1.key == id ? $0 : saturatingAdd($0, $1.value.reserved(kind)) } }
        return max(0, limit - min(others, limit))
    }

    /// 10047 (file) or 10028 (memory) when a stream that reserves `maxBytes` does not fit the
    /// node's limit beside what every account's other streams reserve here; `ownOthers` is
    /// what the asking service's other streams reserve now.
    func streamRefusal(_ kind: StreamConfig.Storage, maxBytes: Int64, for id: ObjectIdentifier, ownOthers: Int64) -> JSAPIError? {
        let limit = limit(kind)
        guard limit >= 0 else { return nil }
        let others = lock.withLock { reports.reduce(Int64(0)) { $1.key == id ? $0 : saturatingAdd($0, $1.value.reserved(kind)) } }
        guard !Self.fits(maxBytes: maxBytes, reserved: saturatingAdd(others, ownOthers), limit: limit) else { return nil }
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
}

extension JSAPIError {
    /// nats-server's answer to a publish past the server's storage limit.
    static let insufficientResources = JSAPIError(503, 10023, "insufficient resources")
}
