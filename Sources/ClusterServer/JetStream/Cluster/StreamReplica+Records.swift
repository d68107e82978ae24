import Raft

/// Consumer records at apply: every replica writes the last record of each consumer in a round
/// to `consumers/<name>.json`, the file a new leader loads its consumers from.
extension StreamReplica {
    /// Writes the round's consumer records (the last of each consumer), in log order, then
    /// answers them. A record this node's storage refuses (a full disk, an I/O error) stops the
    /// replica at that record's entry like a refused publish (`StreamReplica+StoreFailure`):
    /// the caller stores no publish after it, so the store's last entry precedes it and the
    /// reopen replays the log from there, writing the record then. Before, the write failed, the
    /// proposer got an error and the replica applied on: its file kept the older record (or none,
    /// for a new consumer), which it would load as leader. Records after the refused one are not
    /// written and nothing from it on is answered.
    func flushRecords() {
        guard !recordBatch.isEmpty || !recordAnswers.isEmpty else { return }
        let records = recordBatch, answers = recordAnswers
        recordBatch.removeAll()
        recordAnswers.removeAll()
        if let dir = stream.directory {
            for (name, r) in records.sorted(by: { $0.value.index < $1.value.index }) where precedesStoreFailure(r.index) {
                do {
                    if let fault = js.consumerRecordFault { throw fault }
                    try AtomicFile.write(r.record, to: dir + "/consumers/\(name).json")
                } catch {
                    // AtomicFile fails only with this node's storage errors.
                    storeFailed(error as? StoreError ?? .io("\(error)"), at: r.index)
                    break
                }
            }
        }
        for a in answers where precedesStoreFailure(a.index) { answer(a.answer, [:]) }
    }
}
