import Raft

/// A memory stream's copy from the leader (`storage: memory`): built in a fresh `MemoryStore`
/// beside the live one, which the reopened replica then uses (`JetStreamCluster.reinstall`).
/// Sequences the leader no longer holds are simply skipped: a memory store keeps each message
/// at its own sequence, so no placeholders are needed.
final class StagedMemoryCopy: StagedCopy {
    private(set) var store = MemoryStore()
    /// The leader's dedup offset marks, from the committed state.
    private(set) var dedupSkews = DedupSkews()

    func apply(_ op: StreamCatchup.Op) throws {
        switch op {
        case .reset:
            store = MemoryStore()
        case .removeBelow(let seq):
            _ = try store.purge(subject: nil, upTo: seq, keep: nil)
        case .remove(let seq):
            _ = try store.remove(seq)
        case .append(let m):
            guard m.seq > store.state.lastSeq else { throw StoreError.io("staged message \(m.seq) is not after \(store.state.lastSeq)") }
            store.insert(StreamMessage(seq: m.seq, subject: m.subject, headers: m.headers, payload: m.payload, time: m.time))
        case .finish(let lastSeq):
            store.advanceLastSeq(to: lastSeq)
        }
    }

    func commit(_ state: CatchupState) throws {
        let st = store.state
        guard st.lastSeq == state.lastSeq, st.messages == 0 || st.firstSeq == state.firstSeq else {
            throw StoreError.io("staged copy ends at \(st.firstSeq)...\(st.lastSeq), expected \(state.firstSeq)...\(state.lastSeq)")
        }
        dedupSkews = state.copiedDedupSkews
    }

    func abandon() {}
}
