import Raft

/// The stream leader's dedup clock (`DedupClock`, docs/jetstream-cluster.md "Dedup clock").
extension StreamReplica {
    /// A dedup clock after every dedup time this node knows: the applied ones, the round waiting
    /// for its store write, and the log's entries past the applied index (an earlier leader's,
    /// which apply before anything this leader proposes), so dedup times grow along the log.
    func resumeDedupClock() -> DedupClock {
        var logged = applyBatch.map(\.item.dedupNow).max()
        if let node = cluster.host.node(group), node.lastIndex > node.appliedIndex,
           let entries = node.entries(from: node.appliedIndex.next, to: node.lastIndex.next) {
            for e in entries {
                if case let .message(_, _, _, _, _, d)? = try? StreamEntry.decode(e.data) { logged = max(logged ?? d, d) }
            }
        }
        return stream.resumeDedupClock(logged: logged)
    }

    /// The dedup time of an entry proposed now (wall time `now`), from this leader's clock.
    func stampDedupTime(_ now: Int64) -> Int64 {
        var clock = dedupClock ?? resumeDedupClock()
        let stamped = clock.stamp(wall: now, mono: Stream.monoNanos())
        dedupClock = clock
        return stamped
    }

    /// Whether this leader's entries carry dedup times: only when every other member of the
    /// group is known to read them (route INFO `js_dedup_times`), so a node of an older version
    /// in the group (a rolling upgrade) still reads every entry. Rechecked once per tick.
    func writesDedupTimes() -> Bool { entryForms().dedupTimes }

    /// Whether this leader may write entries whose dedup it decided (tag 5): every other member
    /// reads them (route INFO `js_dedup_decided`); they carry dedup times too.
    func writesDecidedDedup() -> Bool { entryForms().decided }

    /// Whether this leader may propose subject delete markers (tag 7): every other member reads
    /// them (route INFO `js_markers`). A member that would skip them (an older version, in a
    /// rolling upgrade) would differ from the others by the markers, so none are written until
    /// every member reads them (expiries then leave no marker, as without the setting).
    func writesMarkers() -> Bool { entryForms().markers }

    /// Whether this leader may propose sourced messages (tag 8): every other member reads them
    /// (route INFO `js_sourced`); until then the stream's sources wait.
    func writesSourced() -> Bool { entryForms().sourced }

    /// Whether this leader may propose mirrored messages (tag 9), the same way (`js_mirrored`).
    func writesMirrored() -> Bool { entryForms().mirrored }

    /// The entry forms every other member reads, rechecked once per tick.
    private func entryForms() -> EntryForms {
        if let c = entryFormsChecked, c.tick == cluster.ticks { return c.forms }
        let others = (raftNode?.conf.allMembers ?? []).filter { $0 != cluster.host.me }.map { cluster.host.name(of: $0) }
        let times = Self.allRead(others, readers: cluster.dedupTimeReaders)
        let forms = EntryForms(dedupTimes: times, decided: times && Self.allRead(others, readers: cluster.decidedDedupReaders),
                               markers: Self.allRead(others, readers: cluster.markerReaders),
                               sourced: Self.allRead(others, readers: cluster.sourcedReaders),
                               mirrored: Self.allRead(others, readers: cluster.mirroredReaders))
        entryFormsChecked = (cluster.ticks, forms)
        return forms
    }

    /// True when every member (by server name; nil when its name is not known yet) is a reader.
    static func allRead(_ members: [String?], readers: Set<String>) -> Bool {
        members.allSatisfy { $0.map(readers.contains) ?? false }
    }
}

/// The stream entry forms every other member of a group announced it reads (route INFO).
struct EntryForms {
    var dedupTimes: Bool
    var decided: Bool
    var markers: Bool
    var sourced: Bool
    var mirrored: Bool
}
