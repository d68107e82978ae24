/// One node's stored bytes of one account (every replica it holds, leader or follower), sent to
/// the other nodes over the route (namespace `jsusage`, per account) so each stream leader can
/// check a publish against the account's cluster-wide usage, as nats-server's `$JSC.ARU`
/// updates let it do. Absolute values, so a lost or repeated report does no harm.
///
/// Layout: version byte, node name (u32 length + bytes), memory bytes (u64), file bytes (u64);
/// version 2 adds what the node's `max_memory_store` and `max_file_store` leave for the account
/// beside the other accounts' reservations there (u64 each, all ones for no limit), so the meta
/// leader places streams only where their `max_bytes` fits. Version 2 travels
/// in a namespace of its own (`limitsNamespace`, only from a node with limits): nodes built
/// before it have no handler there and ignore it, and keep reading version 1 in `namespace`
/// (a decoder refuses any byte more).
struct AccountUsageReport: Equatable {
    var node: String
    var memory: UInt64
    var file: UInt64
    /// What the sender's server limits leave for the account (-1: no limit of that kind); nil in
    /// a version 1 report.
    var limits: Limits?

    struct Limits: Equatable {
        var memory: Int64
        var file: Int64
    }

    static let namespace = "jsusage"
    static let limitsNamespace = "jslimits"
    static let version: UInt8 = 1
    static let versionWithLimits: UInt8 = 2
    /// Longer names are refused: a server name is short, and the table is keyed by it.
    static let maxNodeNameBytes = 256

    func encode() -> [UInt8] {
        var w = CatchupWire.Writer()
        w.bytes.append(limits == nil ? Self.version : Self.versionWithLimits)
        w.data(Array(node.utf8))
        w.u64(memory)
        w.u64(file)
        if let limits {
            w.u64(UInt64(bitPattern: max(limits.memory, -1)))
            w.u64(UInt64(bitPattern: max(limits.file, -1)))
        }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> AccountUsageReport {
        var r = CatchupWire.Reader(bytes: bytes)
        let v = try r.byte()
        guard v == version || v == versionWithLimits else { throw CatchupWireError(description: "unknown usage-report version") }
        guard let name = try r.data(), !name.isEmpty, name.count <= maxNodeNameBytes else {
            throw CatchupWireError(description: "usage report without a valid node name")
        }
        var report = AccountUsageReport(node: String(decoding: name, as: UTF8.self), memory: try r.u64(), file: try r.u64())
        if v == versionWithLimits {
            // Any negative value means "no limit".
            report.limits = Limits(memory: max(Int64(bitPattern: try r.u64()), -1), file: max(Int64(bitPattern: try r.u64()), -1))
        }
        guard r.at == bytes.count else { throw CatchupWireError(description: "malformed usage report") }
        return report
    }
}

/// The other nodes' last reported bytes of one account, with running totals so the publish
/// check reads two numbers, never the whole table. Pure: time is the caller's tick count.
///
/// Staleness: a report is as old as its sender's send interval plus the route's delay (see
/// `JetStreamCluster+Usage`); between reports a total can only lag what the other nodes
/// store. A node that stops reporting (down, partitioned, removed) is dropped after
/// `expiryTicks`, so a removed server's copies are not counted forever.
struct RemoteAccountUsage {
    /// Cluster sizes are small; a bound keeps a confused or hostile peer from growing the table.
    static let maxNodes = 64

    private var byNode: [String: (memory: UInt64, file: UInt64, tick: Int)] = [:]
    /// The server limits each node announced (version 2 reports) and when; a node that stops
    /// announcing them (restarted without limits) is unlimited again after `expiryTicks`.
    private var limitsByNode: [String: (limits: AccountUsageReport.Limits, tick: Int)] = [:]
    private var memory: UInt64 = 0
    private var file: UInt64 = 0

    init() {}

    /// Sum of every node's last report of `kind` (saturating).
    func total(_ kind: StreamConfig.Storage) -> UInt64 { kind == .memory ? memory : file }

    var nodes: [String] { byNode.keys.sorted() }

    /// `node`'s server limit for `kind` as last reported; -1 when none (or not known).
    func limit(of node: String, _ kind: StreamConfig.Storage) -> Int64 {
        guard let l = limitsByNode[node]?.limits else { return -1 }
        return kind == .memory ? l.memory : l.file
    }

    /// Replaces `report.node`'s figures. False (ignored) when the table is full of other nodes.
    @discardableResult
    mutating func record(_ report: AccountUsageReport, tick: Int) -> Bool {
        if byNode[report.node] == nil && byNode.count >= Self.maxNodes { return false }
        byNode[report.node] = (report.memory, report.file, tick)
        if let limits = report.limits { limitsByNode[report.node] = (limits, tick) }
        recount()
        return true
    }

    /// Drops the nodes whose last report is older than `expiryTicks` at `tick`.
    mutating func expire(now tick: Int, expiryTicks: Int) {
        // Called every tick: copies a table only when something in it expired.
        if limitsByNode.values.contains(where: { tick - $0.tick > expiryTicks }) {
            limitsByNode = limitsByNode.filter { tick - $0.value.tick <= expiryTicks }
        }
        guard byNode.values.contains(where: { tick - $0.tick > expiryTicks }) else { return }
        byNode = byNode.filter { tick - $0.value.tick <= expiryTicks }
        recount()
    }

    mutating func forget(_ node: String) {
        limitsByNode[node] = nil
        if byNode.removeValue(forKey: node) != nil { recount() }
    }

    /// Sums again (at most `maxNodes` entries): hostile figures saturate instead of wrapping.
    private mutating func recount() {
        memory = 0
        file = 0
        for v in byNode.values {
            memory = saturatingAdd(memory, v.memory)
            file = saturatingAdd(file, v.file)
        }
    }
}
