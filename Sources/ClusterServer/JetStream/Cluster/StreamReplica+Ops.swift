import Foundation
import Raft

/// The stream log's operations other than messages (`StreamEntry.encodeOp`): purges, deletes,
/// consumer records, compaction, expiry, configs, retention removals; applied by every
/// replica at the same point of the log.
extension StreamReplica {
    func applyOp(_ o: JSONObject, at index: LogIndex) throws -> [String: Any] {
        switch try o.string("op") ?? "" {
        case "purge":
            let n = try stream.purge(subject: try o.string("filter"), upTo: try o.uint64("seq"), keep: try o.uint64("keep"))
            stream.consumersPurged()
            return ["success": true, "purged": n]
        case "delete":
            guard let seq = try o.uint64("seq") else { throw JSAPIError(500, 10057, "no message found") }
            guard try stream.remove(seq) else { throw JSAPIError.messageNotDeleted(seq, lastSeq: stream.store.state.lastSeq) }
            stream.consumersPurged()
            return ["success": true]
        case "consumer":
            try applyConsumerRecordOp(o)
            return [:]
        case "compact":
            // Every member holds the log up to `upTo` (the leader saw their match indexes), so no
            // one will need those entries again: make the store durable, then drop them.
            guard let upTo = try o.uint64("up_to") else { return [:] }
            compactAfterStoreSync(upTo: LogIndex(upTo))
            return [:]
        case "expire":
            guard let now = try o.int64("now") else { return [:] }
            applyExpiry(now: now)
            return [:]
        case "config":
            try applyConfigOp(o, at: index)
            return [:]
        case "no_interest":
            applyNoInterestRemoval(try o.uint64("index"))
            return [:]
        case "consumer_delete":
            if let name = try o.string("name"), let dir = stream.directory {
                AtomicFile.remove(dir + "/consumers/\(name).json")
            }
            return ["success": true]
        default:
            return [:]
        }
    }

    /// A `consumer` op: a consumer record in the form of logs written before
    /// `StreamEntry.consumerRecord`, and a restored consumer's (`restored`: the leader runs it
    /// from now on).
    func applyConsumerRecordOp(_ o: JSONObject) throws {
        guard let name = try o.string("name"), let record = o.fields["record"] as? [String: Any] else { return }
        let bytes = JSJSON.encode(record)
        if let dir = stream.directory { try AtomicFile.write(bytes, to: dir + "/consumers/\(name).json") }
        if try o.bool("restored") == true, isLeader, stream.consumers[name] == nil {
            let c = try Consumer.restored(from: bytes, stream: stream, now: JSTime.nowNanos())
            stream.consumers[name] = c
            js.schedulePump(c)
        }
    }
}
