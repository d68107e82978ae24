import Raft

/// The meta state's stream assignments by name, with what each create asks of all of them kept
/// up to date on every change: the subjects in use (overlap check), the Raft group ids in use,
/// and the replicas and preferred leaders per server (placement). A create then costs about
/// the same with 10 or 10,000 streams (docs/jetstream-cluster.md, "Many streams").
///
/// A reference type (it owns a `SubjectIndex`); the meta layer holds one.
final class AssignmentTable {
    private(set) var byName: [String: StreamAssignment] = [:]
    private let subjects = SubjectIndex()
    private var groups: [UInt64: Int] = [:]
    /// Replicas assigned per server name.
    private(set) var load: [String: Int] = [:]
    /// Streams whose preferred leader (first peer) is each server name.
    private(set) var leads: [String: Int] = [:]
    /// Replicas assigned per Raft id (store).
    private var idLoad: [NodeID: Int] = [:]

    init() {}

    var count: Int { byName.count }
    var isEmpty: Bool { byName.isEmpty }
    var values: Dictionary<String, StreamAssignment>.Values { byName.values }
    var keys: Dictionary<String, StreamAssignment>.Keys { byName.keys }

    subscript(name: String) -> StreamAssignment? {
        get { byName[name] }
        set {
            if let old = byName[name] { forget(old) }
            byName[name] = newValue
            if let newValue { record(newValue) }
        }
    }

    @discardableResult
    func removeValue(forKey name: String) -> StreamAssignment? {
        guard let old = byName.removeValue(forKey: name) else { return nil }
        forget(old)
        return old
    }

    /// The Raft ids (stores) some assignment places a replica on.
    var nodeIDs: Dictionary<NodeID, Int>.Keys { idLoad.keys }

    /// Every assignment's subjects, owned by stream name. Safe to read from any thread.
    var subjectIndex: SubjectIndex { subjects }

    /// Some assignment uses this Raft group id.
    func usesGroup(_ group: UInt64) -> Bool { groups[group] != nil }

    /// Names of the streams other than `except` with a subject overlapping one of `subjects`.
    func streams(overlapping subjects: [String], except: String? = nil) -> Set<String> {
        var out: Set<String> = []
        for s in subjects { out.formUnion(self.subjects.owners(overlapping: s)) }
        if let except { out.remove(except) }
        return out
    }

    private func record(_ a: StreamAssignment) {
        let name = a.config.name
        for s in a.config.subjects { subjects.insert(s, owner: name) }
        groups[a.group, default: 0] += 1
        for p in a.peers { load[p, default: 0] += 1 }
        for id in a.ids { idLoad[id, default: 0] += 1 }
        if let first = a.peers.first { leads[first, default: 0] += 1 }
    }

    private func forget(_ a: StreamAssignment) {
        let name = a.config.name
        for s in a.config.subjects { subjects.remove(s, owner: name) }
        Self.decrement(&groups, a.group)
        for p in a.peers { Self.decrement(&load, p) }
        for id in a.ids { Self.decrement(&idLoad, id) }
        if let first = a.peers.first { Self.decrement(&leads, first) }
    }

    private static func decrement<K: Hashable>(_ d: inout [K: Int], _ k: K) {
        guard let n = d[k] else { return }
        d[k] = n > 1 ? n - 1 : nil
    }
}
