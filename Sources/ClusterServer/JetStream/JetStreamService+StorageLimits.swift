/// What a JetStream account stores and reserves on this node, against the account's own
/// `jetstream { ... }` limits and the server's `max_memory_store` / `max_file_store`
/// (`NodeStoreUsage`).
extension JetStreamService {
    /// Recounts the account's stored bytes from every stream (at start and each tick) and,
    /// under a server limit, what its streams reserve here.
    func rebuildUsageLedger() {
        guard limits != nil || cluster != nil || nodeUsage.isLimited else { return }
        // Cached kind and the store's byte count only: with 10,000 streams every 1.5 s, copying
        // each config and building each store's whole state was most of an idle node's CPU.
        storedBytes = AccountUsageLedger(streams.map { ($0.key, $0.value.storageKind, $0.value.store.storedBytes) })
        if nodeUsage.isLimited { reportNodeUsage(withReservations: true) }
    }

    /// Tells `nodeUsage` what this account stores here and, when asked, what its streams
    /// reserve (every copy held here, leader or follower: each holds up to its `max_bytes`).
    /// Reservations are counted at start, when a stream here is created, updated or removed,
    /// and with each recount; a publish reports only its bytes.
    func reportNodeUsage(withReservations: Bool) {
        var r = lastNodeReport
        r.memory = storedBytes.total(.memory)
        r.file = storedBytes.total(.file)
        if withReservations {
            r.reservedMemory = nodeReservation(.memory)
            r.reservedFile = nodeReservation(.file)
        }
        lastNodeReport = r
        nodeUsage.report(ObjectIdentifier(self), r)
    }

    /// What the account's copies here reserve of `kind` (each its `max_bytes` once), leaving
    /// out `except`: the cached figures, a pass over the streams without copying a config.
    func nodeReservation(_ kind: StreamConfig.Storage, except: String? = nil) -> Int64 {
        var total: Int64 = 0
        for (name, s) in streams where s.storageKind == kind && name != except { total = saturatingAdd(total, s.reservedBytes) }
        return total
    }

    /// Each tick: after a reload changed the server's limits, count again and report (a
    /// service counts no reservations while the node is unlimited); after clustered copies
    /// were opened or removed, report the reservations.
    func noteNodeLimitsChange() {
        let generation = nodeUsage.generation
        if generation != nodeLimitsSeen {
            nodeLimitsSeen = generation
            reservationsChanged = false
            rebuildUsageLedger()
        } else if reservationsChanged {
            reservationsChanged = false
            if nodeUsage.isLimited { reportNodeUsage(withReservations: true) }
        }
    }

    /// Bytes of `kind` this node stores for the account (every replica held here).
    func localStoredBytes(_ kind: StreamConfig.Storage) -> UInt64 { storedBytes.total(kind) }

    /// The refusal of a publish of `size` more bytes to `stream` by a storage limit, or nil.
    /// - 10002: it would pass the account's own limit for the stream's storage kind. In a
    ///   cluster the account's usage is this node's bytes plus the other nodes' last reports,
    ///   and the message counts once per replica (nats-server's clustered check).
    /// - 503/10023: it would take this node past the server's `max_memory_store` /
    ///   `max_file_store` (every account's bytes here; in a cluster, checked on the leader's node).
    /// Admitted bytes are counted at once, so the next publish (to any stream) sees them before
    /// the store is even synced.
    func storageRefusal(for stream: Stream, adding size: UInt64) -> JSAPIError? {
        // The cached kind: copying the whole config on every publish costs.
        let kind = stream.storageKind
        let nodeLimited = nodeUsage.limit(kind) >= 0
        guard limits != nil || nodeLimited else { return nil }
        // The store's byte count, not its whole state (built per call): this runs per publish.
        let bytes = stream.store.storedBytes
        storedBytes.record(stream.name, kind, bytes)
        if let limits {
            let used = saturatingAdd(storedBytes.total(kind), cluster?.remoteUsage.total(kind) ?? 0)
            if limits.wouldExceed(storage: kind, used: used, adding: size, replicas: stream.replicaCount) {
                return .accountResourcesExceeded
            }
        }
        let own = storedBytes.total(kind)
        storedBytes.record(stream.name, kind, bytes &+ size)
        guard nodeLimited else { return nil }
        // Checked against the node's limit and, if admitted, reported in one step.
        var r = lastNodeReport
        r.memory = storedBytes.total(.memory)
        r.file = storedBytes.total(.file)
        if let e = nodeUsage.admit(kind, adding: size, for: ObjectIdentifier(self), own: own, reporting: r) {
            storedBytes.record(stream.name, kind, bytes)
            return e
        }
        lastNodeReport = r
        return nil
    }
}
