import Foundation
import NIOCore

/// The publish path of one node's JetStream: publishes gathered from the ingest mailbox are
/// stored, then one `flush` syncs every dirty store and only then sends the PubAcks (and the
/// work-queue acks of copied messages) and wakes the consumers: a positive PubAck always
/// follows the fsync.
extension JetStreamService {
    /// The publishes gathered in `ingestMailbox`, in arrival order.
    func drainIngest() {
        for i in ingestMailbox.take() {
            if case .unrouted(let noResponders) = i.arrival {
                if let cluster, !stopped { cluster.takeUnrouted(i, noResponders: noResponders) } else { refuseUnrouted(i, noResponders) }
                continue
            }
            ingest(stream: i.stream, subject: i.subject, reply: i.reply, headers: i.headers, payload: i.payload)
        }
    }

    /// A publish on a stream's subjects, or a message one of its sources (`sourced`) or its
    /// mirror (`mirrored`: at the origin's sequence and time) copied in, stored under its
    /// subject as given; `sourceAck` is acknowledged to its origin once durable. False when it
    /// was not stored for a reason of this node's, or a copy was refused (clustered ones:
    /// proposed, see `clusterIngest`).
    @discardableResult
    func ingest(stream name: String, subject: String, reply: String?, headers: [UInt8]?, payload: [UInt8],
                sourced: Bool = false, mirrored: (seq: UInt64, time: Int64)? = nil, sourceAck: String? = nil) -> Bool {
        let copied = sourced || mirrored != nil
        if let cluster, !stopped {
            clusterIngest(cluster, stream: name, subject: subject, reply: reply, headers: headers, payload: payload)
            return true
        }
        guard let stream = streams[name], !stopped else { return false }
        if subject.hasPrefix("$JS.API.") && !stream.config.noAck { return true }
        if !copied, stream.restoring {
            // Its restore is putting the archive's messages in (`StreamRestore.swift`).
            if let reply, !stream.config.noAck {
                pendingReplies.append((reply, Stream.errorAck(.beingRestored, stream: name), nil))
                scheduleFlush()
            }
            return true
        }
        guard let subject = copied ? subject : stream.storedSubject(subject) else {
            if let reply, !stream.config.noAck {
                pendingReplies.append((reply, Stream.errorAck(Stream.invalidMappedSubject(subject), stream: name), nil))
                scheduleFlush()
            }
            return true
        }
        let wall = JSTime.nowNanos()
        let outcome = stream.ingest(subject: subject, headers: headers, payload: payload, now: mirrored?.time ?? wall,
                                    dedupNow: stream.stampDedupTime(wall: wall), sourced: sourced, mirrorSeq: mirrored?.seq)
        if outcome.stored {
            for c in stream.consumers.values { c.newMessageStored(subject: subject) }
        }
        if let reply, !stream.config.noAck {
            pendingReplies.append((reply, outcome.response, outcome.stored ? stream.name : nil))
        }
        if let sourceAck, !outcome.refused { pendingSourceAcks.append((sourceAck, stream.name)) }
        scheduleFlush()
        // A copy the stream refused (a discard-new limit) was not taken: its session tries it
        // again later instead of moving past it.
        return outcome.localFailure == nil && !(copied && outcome.refused)
    }

    func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        queue.async { self.flush() }
    }

    /// Syncs dirty stores, then answers publishers and wakes consumers. A store whose sync
    /// failed gets error PubAcks: nothing is acknowledged that is not durable.
    func flush() {
        flushScheduled = false
        proposeRetentionRemovals()
        emitMarkers()
        let now = JSTime.nowNanos()
        var synced: [Stream] = []
        var failed: [String: String] = [:]
        for s in dirtyStreams.takeAll() where s.dirty && streams[s.name] === s {
            s.dirty = false
            if cluster?.replicas[s.name] != nil {
                // A replica's store is not what makes a publish durable (its Raft log is, and
                // a store that lost its tail replays it from the log, which is compacted only
                // after a store sync): no fsync here, on the queue every publish goes through.
                synced.append(s)
                continue
            }
            if syncIntervalSeconds != nil {
                // Opt-in `sync_interval`: acknowledged once written; the tick syncs it.
                periodicSyncs[s.name] = s
                synced.append(s)
                continue
            }
            do {
                try s.syncStore()
                synced.append(s)
            } catch {
                failed[s.name] = "\(error)"
                server.logger.error("JetStream store sync failed for stream '\(s.name)': \(error)")
            }
        }
        let replies = pendingReplies
        pendingReplies.removeAll()
        for a in pendingSourceAcks where failed[a.stream] == nil { bus.publishInternal(subject: a.subject, payload: ByteBuffer()) }
        pendingSourceAcks.removeAll()
        for r in replies {
            var body = r.body
            if let name = r.stream, failed[name] != nil {
                let e = JSAPIError.storageResources("insufficient storage resources available")
                body = Stream.errorAck(e, stream: name)
            }
            bus.publishInternal(subject: r.subject, payload: ByteBuffer(bytes: body))
        }
        for s in synced {
            for c in s.consumers.values { c.pump(now: now) }
        }
    }

    /// The opt-in `sync_interval`'s fsync of the stores written since the last one (their
    /// publishes were acknowledged already: a failure can only be logged).
    func syncPeriodically() {
        let due = periodicSyncs
        periodicSyncs.removeAll()
        for (name, s) in due where streams[name] === s {
            do { try s.syncStore() } catch {
                server.logger.error("JetStream store sync failed for stream '\(name)' (sync_interval: acknowledged messages may not be durable): \(error)")
            }
        }
    }
}
