import Foundation
import Raft

/// The Raft identity of this node: its server name plus a random **storage id** created the first
/// time its store directory is used. Everything a Raft member promised (votes, acknowledged
/// entries) lives in that store, so the identity must die with it: a node that comes back with
/// the same name but an empty disk gets a new storage id, hence a new `NodeID`, and the meta
/// leader treats it as a new member (learner, catch up, voter) while the old identity is removed.
/// It can never vote or count toward a quorum with promises it forgot.
struct NodeIdentity: Equatable {
    let name: String
    /// 16 hex digits; empty for a store created before storage ids existed (the id is then the
    /// hash of the name alone, so such a store keeps its place in its groups).
    let storageID: String

    var nodeID: NodeID { Self.nodeID(name: name, storageID: storageID) }

    /// FNV-1a 64 of `name` (and `"\0" + storageID` when there is one); never 0.
    static func nodeID(name: String, storageID: String) -> NodeID {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ b: UInt8) { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        for b in name.utf8 { mix(b) }
        if !storageID.isEmpty {
            mix(0)
            for b in storageID.utf8 { mix(b) }
        }
        return NodeID(h == 0 ? 1 : h)
    }

    static let fileName = "identity.json"

    /// Reads `<root>/identity.json`, creating it (fsync'd) on first use. A root that already
    /// holds a meta log but no identity file predates storage ids: it keeps the legacy id.
    static func load(root: String, name: String) throws -> NodeIdentity {
        let path = root + "/" + fileName
        if let bytes = AtomicFile.read(path) {
            guard let o = try? JSONObject.parse(bytes, typeName: "Identity"), let id = try? o.string("storage_id") else {
                // Never guess: a wrong id would either split this node in two or reuse promises.
                throw StoreError.io("\(path) is damaged; move it away only together with the whole store")
            }
            return NodeIdentity(name: name, storageID: id)
        }
        let legacy = FileManager.default.fileExists(atPath: root + "/_meta")
        var rng = SystemRandomNumberGenerator()
        let hex = String(rng.next() as UInt64, radix: 16)
        let id = legacy ? "" : String(repeating: "0", count: 16 - hex.count) + hex
        try AtomicFile.write(JSJSON.encode(["storage_id": id, "created": JSTime.format(JSTime.nowNanos())]), to: path)
        return NodeIdentity(name: name, storageID: id)
    }
}
