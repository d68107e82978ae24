import Raft

/// A publish this node proposed, as it was proposed: what `StreamEntry.encodeMessage` encoded.
struct ProposedPublish {
    var subject: String
    /// The reply subject the entry carries (nil for no-ack streams).
    var reply: String?
    var headers: [UInt8]?
    var payload: [UInt8]
    var timestamp: Int64
    /// The entry's dedup time (`DedupClock`); nil as in entries without one (the timestamp).
    var dedupTime: Int64? = nil
    /// Proposed as `StreamEntry.messageDecidedTag` (the leader found its `Nats-Msg-Id` new).
    var dedupDecided = false
    /// `headers` as read when proposing, reused at apply.
    var parsed = PublishHeaders.none
    /// An interest stream's leader found no consumer interested and proposed its removal
    /// right behind it (`StreamReplica+NoInterest.swift`).
    var noInterest = false
    /// Copied in by one of the stream's sources (`StreamEntry.messageSourcedTag`).
    var sourced = false
    /// Copied in by the stream's mirror, stored at this sequence (`StreamEntry.messageMirroredTag`).
    var mirrorSeq: UInt64? = nil
    /// A sourced or mirrored message of a work-queue stream: its ack subject there, acked
    /// once the entry applied here (never answered with a PubAck: any body but a known verb
    /// would ack it).
    var sourceAck: String? = nil
}

/// The publishes this node proposed and has not applied yet, in log order (a FIFO, not a
/// dictionary: proposals and applies both walk the log forwards, so each publish costs one
/// append and one pop). At apply, an entry with the index *and term* of a proposal is that
/// proposal (Raft's Log Matching property), so the leader reuses the message instead of decoding
/// the entry again, and the node that proposed it knows to send the PubAck
/// (`StreamReplica.answersPublish`). A proposal replaced by another leader's entry at its index
/// shows up with the wrong term and is dropped; one at an index no entry will reach (cut by a
/// truncation) is dropped when a later proposal or apply passes it. Pure logic, no I/O.
struct ProposalQueue {
    private var items: [(index: LogIndex, term: Term, publish: ProposedPublish)] = []
    /// `items[..<head]` were taken already (dropped in bulk now and then).
    private var head = 0
    /// Queued proposals that carry a reply subject (a stopping node answers them first).
    private(set) var withReply = 0

    var count: Int { items.count - head }

    /// Records a proposal at `index` in `term`. Proposals of this node at `index` or later that
    /// are still queued were cut from its log (it proposes at its last index + 1), so no entry
    /// of theirs can apply: they are dropped.
    mutating func append(index: LogIndex, term: Term, _ publish: ProposedPublish) {
        while items.count > head, let last = items.last, last.index >= index {
            drop(items.removeLast().publish)
        }
        items.append((index, term, publish))
        if publish.reply != nil { withReply += 1 }
    }

    /// The proposal made at `index` (and the term it was made in), if one is queued; proposals
    /// before `index` are dropped (entries apply in index order, so theirs never will).
    mutating func take(index: LogIndex) -> (term: Term, publish: ProposedPublish)? {
        while head < items.count, items[head].index < index { pop() }
        guard head < items.count, items[head].index == index else { return nil }
        // Moved out, not copied: the slot keeps an empty publish until the bulk drop.
        drop(items[head].publish)
        let term = items[head].term
        var publish = ProposedPublish(subject: "", reply: nil, headers: nil, payload: [], timestamp: 0)
        swap(&publish, &items[head].publish)
        advance()
        return (term, publish)
    }

    mutating func removeAll() {
        items.removeAll()
        head = 0
        withReply = 0
    }

    private mutating func pop() {
        drop(items[head].publish)
        advance()
    }

    private mutating func advance() {
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    private mutating func drop(_ p: ProposedPublish) {
        if p.reply != nil { withReply -= 1 }
    }
}
