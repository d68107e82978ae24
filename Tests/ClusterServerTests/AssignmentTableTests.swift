import Raft
import XCTest
@testable import ClusterServer

/// The indexes that keep a stream create's checks independent of the stream count: the
/// subject overlap index against the plain pairwise rule, and the assignment table's counts
/// against a recount of its assignments.
final class AssignmentTableTests: XCTestCase {
    private static func randomSubject(_ rng: inout Raft.SplitMix64) -> String {
        let length = Int(rng.next() % 4) + 1
        var tokens: [String] = []
        for i in 0..<length {
            let pick = rng.next() % 6
            if pick == 5 && i == length - 1 {
                tokens.append(">")
            } else if pick == 4 {
                tokens.append("*")
            } else {
                tokens.append(["a", "b", "c", "d"][Int(pick % 4)])
            }
        }
        return tokens.joined(separator: ".")
    }

    func test_subjectIndex_agreesWithPairwiseOverlap_afterInsertsAndRemovals() {
        var rng = Raft.SplitMix64(seed: 42)
        let index = SubjectIndex()
        var stored: [(subject: String, owner: String)] = []
        for i in 0..<80 {
            let s = Self.randomSubject(&rng)
            stored.append((s, "S\(i)"))
            index.insert(s, owner: "S\(i)")
        }
        func check(_ label: String) {
            for _ in 0..<300 {
                let q = Self.randomSubject(&rng)
                let expected = Set(stored.filter { Subject.overlaps($0.subject, q) }.map(\.owner))
                XCTAssertEqual(index.owners(overlapping: q), expected, "\(label): \(q)")
            }
        }
        check("after inserts")
        for i in stride(from: 0, to: 80, by: 2) { index.remove(stored[i].subject, owner: stored[i].owner) }
        stored = stored.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        check("after removals")
        XCTAssertFalse(index.isEmpty)
        for e in stored { index.remove(e.subject, owner: e.owner) }
        XCTAssertEqual(index.owners(overlapping: ">"), [])
        XCTAssertTrue(index.isEmpty)
    }

    func test_subjectIndex_sharedSubjectKeepsTheOtherOwner() {
        let index = SubjectIndex()
        index.insert("orders.*", owner: "A")
        index.insert("orders.*", owner: "B")
        index.remove("orders.*", owner: "A")
        // Removing what is not there (again, or another subject) does not count as a removal.
        index.remove("orders.*", owner: "A")
        index.remove("orders.x", owner: "B")
        XCTAssertFalse(index.isEmpty)
        XCTAssertEqual(index.owners(overlapping: "orders.new"), ["B"])
        XCTAssertEqual(index.owners(overlapping: "orders"), [])
        XCTAssertEqual(index.owners(overlapping: "orders.new.x"), [])
    }

    private func assignment(_ name: String, _ subjects: [String], peers: [String], group: UInt64) throws -> StreamAssignment {
        let cfg = try StreamConfig.decode(JSONObject(["name": name, "subjects": subjects], typeName: "StreamConfig"))
        return StreamAssignment(config: cfg, peers: peers, ids: peers.map { NodeID(UInt64($0.dropFirst())!) }, group: group, created: 0)
    }

    func test_assignmentTable_countsMatchARecount_throughCreateUpdateDelete() throws {
        let t = AssignmentTable()
        t["A"] = try assignment("A", ["a.>"], peers: ["n1", "n2", "n3"], group: 100)
        t["B"] = try assignment("B", ["b"], peers: ["n2", "n3", "n4"], group: 101)
        t["C"] = try assignment("C", ["c.*"], peers: ["n2"], group: 102)
        // An update that moves replicas and changes subjects.
        t["B"] = try assignment("B", ["b.x"], peers: ["n4", "n1", "n3"], group: 101)
        XCTAssertNotNil(t.removeValue(forKey: "C"))
        XCTAssertNil(t.removeValue(forKey: "C"))
        let recount = Placement.counts(Array(t.values))
        XCTAssertEqual(t.load, recount.load)
        XCTAssertEqual(t.leads, recount.leads)
        XCTAssertEqual(Set(t.nodeIDs), Set([1, 2, 3, 4].map { NodeID(UInt64($0)) }))
        XCTAssertTrue(t.usesGroup(100))
        XCTAssertTrue(t.usesGroup(101))
        XCTAssertFalse(t.usesGroup(102), "a deleted stream's group id is free")
        XCTAssertEqual(t.streams(overlapping: ["a.b"]), ["A"])
        XCTAssertEqual(t.streams(overlapping: ["b"]), [], "B's old subject left with its update")
        XCTAssertEqual(t.streams(overlapping: ["*.x"]), ["A", "B"])
        XCTAssertEqual(t.streams(overlapping: ["*.x"], except: "B"), ["A"], "an update is not checked against itself")
        XCTAssertEqual(t.streams(overlapping: ["c.d"]), [], "C was deleted")
        XCTAssertEqual(Placement.choose(replicas: 3, among: ["n1", "n2", "n3", "n4"], load: t.load, leads: t.leads),
                       Placement.choose(replicas: 3, among: ["n1", "n2", "n3", "n4"], assignments: Array(t.values)))
    }
}
