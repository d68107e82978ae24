import NIOCore

/// `/jsz` and `/metrics` for one JetStream (one account's).
extension JetStreamService {
    // MARK: - monitoring

    var usage: (memory: UInt64, storage: UInt64, consumers: Int, messages: UInt64, bytes: UInt64) {
        var mem: UInt64 = 0, disk: UInt64 = 0, cons = 0, msgs: UInt64 = 0
        for s in streams.values {
            let st = s.store.state
            if s.config.storage == .memory { mem += st.bytes } else { disk += st.bytes }
            cons += s.consumers.count
            msgs += st.messages
        }
        return (mem, disk, cons, msgs, mem + disk)
    }

    func jsz(_ query: [String: String]) -> [String: Any] {
        queue.sync {
            let u = usage
            var o: [String: Any] = [
                "server_id": server.serverID, "now": JSTime.format(JSTime.nowNanos()),
                "config": server.options.jszConfig(storeDirectory: root ?? ""),
                "memory": u.memory, "storage": u.storage, "reserved_memory": reserved(.memory), "reserved_storage": reserved(.file),
                "accounts": streams.isEmpty ? 0 : 1, "ha_assets": 0, "api": ["level": JetStreamService.apiLevel, "total": apiTotal, "errors": apiErrors],
                "streams": streams.count, "consumers": u.consumers, "messages": u.messages, "bytes": u.bytes,
            ]
            if let cluster, let meta = cluster.host.node(JetStreamCluster.metaGroup) {
                var mc: [String: Any] = ["name": server.routeManager?.clusterName ?? "", "cluster_size": meta.conf.voters.count,
                                         "quorum_needed": meta.conf.quorum,
                                         "raft_groups": cluster.host.groupCount, "leader_term": meta.term.rawValue]
                if let l = meta.leader, let name = cluster.serverName(l) { mc["leader"] = name }
                let (replicas, members) = cluster.metaMembersJSON()
                mc["replicas"] = replicas
                mc["members"] = members // clusterd: every member, its role and reachability
                mc["peer"] = StreamAssignment.hex(cluster.host.me)
                o["meta_cluster"] = mc
            } else if let retired = cluster?.retiredMetaJSON() {
                o["meta_cluster"] = retired
            }
            if query["streams"] == "true" || query["streams"] == "1" || query["consumers"] == "true" || query["accounts"] == "true" {
                let details: [[String: Any]] = streams.keys.sorted().compactMap { name in
                    guard let s = streams[name] else { return nil }
                    var d: [String: Any] = ["name": name, "created": JSTime.format(s.created),
                                            "state": s.stateJSON(subjectsFilter: nil, deletedDetails: false)]
                    if query["config"] == "true" { d["config"] = s.config.json }
                    // clusterd: this replica's Raft log (where compaction has cut it, what it applied).
                    if let cluster, let r = cluster.replicas[name] { d["raft"] = raftJSON(cluster, r) }
                    if query["consumers"] == "true" || query["consumers"] == "1" {
                        d["consumer_detail"] = s.consumers.keys.sorted().compactMap { s.consumers[$0]?.infoJSON(now: JSTime.nowNanos()) }
                    }
                    return d
                }
                // The account's usage as nats-server shows it here: in a cluster, every node's bytes.
                let remote = cluster?.remoteUsage
                o["account_details"] = [["name": account.name, "id": account.name, "stream_detail": details,
                                         "memory": saturatingAdd(u.memory, remote?.total(.memory) ?? 0),
                                         "storage": saturatingAdd(u.storage, remote?.total(.file) ?? 0)]]
            }
            return o
        }
    }

    /// clusterd: one replica's Raft state, to tell from outside why a group is stuck (no
    /// commit in the term, no lease, a follower not matching): where compaction has cut the
    /// log, what it committed and applied, its term, role and leader; on a leader, whether it
    /// holds its lease and each follower's match.
    private func raftJSON(_ cluster: JetStreamCluster, _ r: StreamReplica) -> [String: Any] {
        guard let node = cluster.host.node(r.group) else { return [:] }
        var o: [String: Any] = ["first_index": node.firstIndex.rawValue, "applied": node.appliedIndex.rawValue,
                                "committed": node.commitIndex.rawValue, "last_index": node.lastIndex.rawValue,
                                "term": node.term.rawValue, "role": "\(node.role)", "quiesced": node.isQuiesced]
        if let l = node.leader { o["leader"] = cluster.serverName(l) ?? StreamAssignment.hex(l) }
        if node.role == .leader {
            o["lease"] = cluster.host.holdsLease(r.group)
            var match: [String: UInt64] = [:]
            for peer in node.conf.allMembers where peer != node.id {
                match[cluster.serverName(peer) ?? StreamAssignment.hex(peer)] = node.progress(of: peer)?.match.rawValue
            }
            o["match"] = match
        }
        return o
    }

    /// One labelled gauge row: a consumer's (num_pending, num_ack_pending, num_redelivered)
    /// when `consumer` is set, else the stream's (messages, bytes).
    struct MetricRow {
        var account: String?
        var stream: String
        var consumer: String
        var values: [UInt64]
    }

    /// This JetStream's gauge rows; `account` labels them unless it is `$G` (so the series
    /// of a server without accounts keep their names).
    func metricRows() -> [MetricRow] {
        let label = account.isGlobal ? nil : account.name
        return queue.sync {
            var out: [MetricRow] = []
            for s in streams.values {
                for c in s.consumers.values {
                    out.append(MetricRow(account: label, stream: s.name, consumer: c.name,
                                         values: [c.numPending, UInt64(c.pending.count), UInt64(c.numRedelivered)]))
                }
                let st = s.store.state
                out.append(MetricRow(account: label, stream: s.name, consumer: "", values: [st.messages, st.bytes]))
            }
            return out
        }
    }

    /// Prometheus text for `/metrics`: per-consumer pending counts and per-stream sizes, to be
    /// appended to the server's own exposition.
    public func prometheusText() -> String { Self.prometheusText(metricRows()) }

    /// One exposition for the rows of every account's JetStream (each family's HELP/TYPE once).
    static func prometheusText(_ unsorted: [MetricRow]) -> String {
        func esc(_ v: String) -> String {
            v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        }
        func labels(_ r: MetricRow, consumer: Bool) -> String {
            var l = r.account.map { "account=\"\(esc($0))\"," } ?? ""
            l += "stream=\"\(esc(r.stream))\""
            if consumer { l += ",consumer=\"\(esc(r.consumer))\"" }
            return l
        }
        let rows = unsorted.sorted { ($0.account ?? "", $0.stream, $0.consumer) < ($1.account ?? "", $1.stream, $1.consumer) }
        let consumerFamilies = [
            ("clusterd_jetstream_consumer_num_pending", "Messages not yet delivered to the consumer"),
            ("clusterd_jetstream_consumer_num_ack_pending", "Delivered messages awaiting ack"),
            ("clusterd_jetstream_consumer_num_redelivered", "Pending messages delivered more than once"),
        ]
        let streamFamilies = [
            ("clusterd_jetstream_stream_messages", "Messages stored in the stream"),
            ("clusterd_jetstream_stream_bytes", "Bytes stored in the stream"),
        ]
        var out = ""
        for (i, family) in consumerFamilies.enumerated() {
            out += "# HELP \(family.0) \(family.1)\n# TYPE \(family.0) gauge\n"
            for r in rows where !r.consumer.isEmpty {
                out += "\(family.0){\(labels(r, consumer: true))} \(r.values[i])\n"
            }
        }
        for (i, family) in streamFamilies.enumerated() {
            out += "# HELP \(family.0) \(family.1)\n# TYPE \(family.0) gauge\n"
            for r in rows where r.consumer.isEmpty {
                out += "\(family.0){\(labels(r, consumer: false))} \(r.values[i])\n"
            }
        }
        return out
    }

    /// Per-consumer pending counts for `/metrics` (stream, consumer, num_pending, num_ack_pending).
    public func consumerPendingCounts() -> [(stream: String, consumer: String, pending: UInt64, ackPending: Int)] {
        queue.sync {
            streams.values.flatMap { s in
                s.consumers.values.map { (s.name, $0.name, $0.numPending, $0.pending.count) }
            }
        }
    }
}
