import Foundation

/// Subject delete markers (`subject_delete_marker_ttl`, nats-server 2.11+; KV buckets with
/// `limit_marker_ttl`). When max_age or a message TTL removes the last message of a subject, a
/// marker takes its place: no payload, headers `Nats-Marker-Reason: MaxAge`, `Nats-TTL` (the
/// stream's marker TTL as a Go duration) and `Nats-Rollup: sub`, so a KV watcher sees the key
/// go. Only age and TTL removals leave markers (not API deletes or purges), and a marker that
/// expires leaves none (all as nats-server 2.15.1 does, checked side by side).
///
/// Removals only note which markers are due (`markersDue`); the service writes them at the end
/// of its round (`JetStreamService.emitMarkers`): on one node straight into the store, in a
/// cluster as one log entry each from the stream's leader (`StreamEntry.marker`), which every
/// replica stores only if the subject is still empty when it applies. A marker is then a message
/// like any other (replayed, caught up, copied with the stream). Markers due when a leader is
/// lost are lost with it, as in nats-server.
extension Stream {
    /// The marker's header block, in nats-server's order.
    static func markerHeaders(ttlNanos: Int64) -> [UInt8] {
        NATSHeaderBlock.make([("Nats-Marker-Reason", "MaxAge"), ("Nats-TTL", formatDuration(ttlNanos)),
                              ("Nats-Rollup", "sub")])
    }

    /// What one age or TTL removal pass saw of the subjects it removed from: for each, whether
    /// the last message removed was itself a marker (which leaves no marker behind): a server's
    /// marker, or a KV purge (`KV-Operation: PURGE`; a KV delete does leave one), as on
    /// nats-server 2.15.1.
    struct RemovedSubjects {
        private(set) var order: [String] = []
        private var lastWasMarker: [String: Bool] = [:]

        mutating func note(_ m: StreamMessage) {
            let marker = NATSHeaderBlock.value("Nats-Marker-Reason", in: m.headers) != nil
                || NATSHeaderBlock.value("KV-Operation", in: m.headers) == "PURGE"
            if lastWasMarker.updateValue(marker, forKey: m.subject) == nil { order.append(m.subject) }
        }

        func leavesMarker(_ subject: String) -> Bool { lastWasMarker[subject] == false }
    }

    /// Whether removals of this stream must be looked at for markers.
    var writesMarkers: Bool { config.subjectDeleteMarkerTTLNanos > 0 }

    /// The subjects of the messages with sequences in `range` (about to be removed by age).
    func subjectsRemoved(in range: Range<UInt64>) -> RemovedSubjects {
        var seen = RemovedSubjects()
        var seq = range.lowerBound
        while seq < range.upperBound, let m = store.next(from: seq, filters: []), m.seq < range.upperBound {
            seen.note(m)
            seq = m.seq + 1
        }
        return seen
    }

    /// After a removal pass: every subject it emptied, whose last message was not a marker,
    /// gets a marker due at `now`.
    func noteMarkersDue(_ removed: RemovedSubjects, now: Int64) {
        for subject in removed.order where removed.leavesMarker(subject) && store.lastSequence(forSubject: subject) == nil {
            markersDue.append((subject, now))
        }
        guard !markersDue.isEmpty else { return }
        service.markersPending.insert(self)
        service.scheduleFlush()
    }

    /// Stores a marker on `subject` at `now` if the stream still writes markers and the subject
    /// has no message; nil when none was stored for that reason. Through `ingest`, so limits,
    /// the marker's own TTL and a clustered entry's Raft index apply as to a publish.
    func storeMarker(subject: String, now: Int64) -> PublishOutcome? {
        guard writesMarkers, store.lastSequence(forSubject: subject) == nil else { return nil }
        // A marker has no `Nats-Msg-Id`: its dedup time only has to keep the stream's offset
        // between message and dedup times as it is (no new mark in `dedupSkews`).
        return ingest(subject: subject, headers: Self.markerHeaders(ttlNanos: config.subjectDeleteMarkerTTLNanos),
                      payload: [], now: now, dedupNow: saturatingAdd(now, dedupSkews.current))
    }

    /// A `Nats-TTL` shorter than the marker TTL is raised to it (whole seconds), except in a
    /// stream keeping one message per subject (a KV bucket without history): what nats-server
    /// 2.15.1 stores, checked side by side. Returns the headers to store.
    func raisingTTL(_ headers: [UInt8]?, ttlNanos: inout Int64) -> [UInt8]? {
        let floor = config.subjectDeleteMarkerTTLNanos
        guard floor > 0, config.maxMsgsPerSubject != 1, ttlNanos > 0, ttlNanos < floor else { return headers }
        ttlNanos = floor
        return NATSHeaderBlock.appending([("Nats-TTL", "\(floor / 1_000_000_000)")],
                                         to: NATSHeaderBlock.removing(["Nats-TTL"], from: headers))
    }
}

extension JetStreamService {
    /// Writes the markers removals made due (one node), or proposes them (a clustered stream's
    /// leader; the other replicas drop theirs: the leader's entries bring them). Runs at the
    /// start of `flush`, so a single node's markers are synced with the round's other writes.
    func emitMarkers() {
        for s in markersPending.takeAll() where streams[s.name] === s {
            let due = s.markersDue
            s.markersDue.removeAll()
            if let cluster {
                guard let r = cluster.replicas[s.name], r.isLeader, r.writesMarkers() else { continue }
                for (subject, at) in due {
                    try? r.proposeEntry(StreamEntry.encodeMarker(subject: subject, timestamp: at), answer: nil)
                }
                continue
            }
            for (subject, at) in due {
                guard let outcome = s.storeMarker(subject: subject, now: at), outcome.stored else { continue }
                for c in s.consumers.values { c.newMessageStored(subject: subject) }
            }
        }
    }
}
