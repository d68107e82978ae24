/// Stream info and state as the API shows them.
extension Stream {
    func stateJSON(subjectsFilter: String?, deletedDetails: Bool) -> [String: Any] {
        let st = store.state
        var o: [String: Any] = [
            // A stream that never stored anything shows 0, as on nats-server (then last + 1).
            "messages": st.messages, "bytes": st.bytes, "first_seq": st.messages == 0 && st.lastSeq == 0 ? 0 : st.firstSeq,
            "first_ts": JSTime.format(st.firstTime), "last_seq": st.lastSeq, "last_ts": JSTime.format(st.lastTime),
            "consumer_count": publicConsumerCount,
        ]
        if st.numSubjects > 0 { o["num_subjects"] = st.numSubjects }
        if st.numDeleted > 0 {
            o["num_deleted"] = st.numDeleted
            if deletedDetails {
                var deleted: [UInt64] = []
                var s = st.firstSeq
                while s <= st.lastSeq && deleted.count < 100_000 {
                    if store.load(s) == nil { deleted.append(s) }
                    s += 1
                }
                o["deleted"] = deleted
            }
        }
        if let f = subjectsFilter, !f.isEmpty {
            let counts = store.subjectCounts(matching: f)
            if !counts.isEmpty { o["subjects"] = counts }
        }
        return o
    }

    func infoJSON(subjectsFilter: String? = nil, deletedDetails: Bool = false) -> [String: Any] {
        let shown = committedConfig
        var cfg = shown.json
        // The API level a client needs to use the stream as configured: message TTLs are level 1.
        cfg["metadata"] = JetStreamService.serverMetadata(shown.metadata, requiredLevel: shown.allowMsgTTL ? 1 : 0)
        var info: [String: Any] = [
            "config": cfg, "created": JSTime.format(created),
            "state": stateJSON(subjectsFilter: subjectsFilter, deletedDetails: deletedDetails),
            "ts": JSTime.format(JSTime.nowNanos()),
        ]
        if !shown.sources.isEmpty { info["sources"] = sourcesInfo() }
        if shown.mirror != nil { info["mirror"] = sourcesInfo().first }
        return info
    }
}
