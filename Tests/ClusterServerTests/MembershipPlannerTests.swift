import Raft
import XCTest
@testable import ClusterServer

/// The pure membership decisions: who the meta leader adds, promotes and removes, how a stream's
/// leader moves its group to a new replica set, replica placement on changes, storage identity.
final class MembershipPlannerTests: XCTestCase {
    private let a = NodeID(1), b = NodeID(2), c = NodeID(3), d = NodeID(4), e = NodeID(5)
    private let names: [NodeID: String] = [NodeID(1): "n1", NodeID(2): "n2", NodeID(3): "n3", NodeID(4): "n4", NodeID(5): "n5"]

    private func meta(voters: [NodeID], learners: [NodeID] = [], live: [String: NodeID], match: [NodeID: LogIndex] = [:],
                      commit: UInt64 = 10, names: [NodeID: String]? = nil, removed: Set<NodeID> = []) -> MetaMembershipView {
        MetaMembershipView(conf: ConfState(voters: voters, learners: learners), changePending: false, leader: a,
                           names: names ?? self.names, live: live, match: match, commit: LogIndex(commit), removed: removed)
    }

    func test_meta_stableMembership_doesNothing() {
        let v = meta(voters: [a, b, c], live: ["n1": a, "n2": b, "n3": c])
        XCTAssertNil(MetaMembershipPlanner.next(v))
    }

    func test_meta_newServer_isNamedThenAddedAsLearner() {
        var v = meta(voters: [a, b, c], live: ["n1": a, "n2": b, "n3": c, "n4": d], names: [a: "n1", b: "n2", c: "n3"])
        XCTAssertEqual(MetaMembershipPlanner.next(v), .recordName(d, "n4"))
        v.names[d] = "n4"
        XCTAssertEqual(MetaMembershipPlanner.next(v), .change(ConfChange(.addLearner, d)))
    }

    func test_meta_learner_promotedOnlyOnceCaughtUp() {
        var v = meta(voters: [a, b, c], learners: [d], live: ["n1": a, "n2": b, "n3": c, "n4": d], match: [d: LogIndex(9)])
        XCTAssertNil(MetaMembershipPlanner.next(v), "a learner behind the commit index stays a learner")
        v.match[d] = LogIndex(10)
        XCTAssertEqual(MetaMembershipPlanner.next(v), .change(ConfChange(.addVoter, d)))
    }

    func test_meta_pendingChange_waits() {
        var v = meta(voters: [a, b, c], live: ["n1": a, "n2": b, "n3": c, "n4": d])
        v.changePending = true
        XCTAssertNil(MetaMembershipPlanner.next(v))
    }

    func test_meta_replacedStore_oldVoterRemovedBeforeNewOnePromoted() {
        // n2 came back with an empty disk: new id `e` under the same name.
        var names = self.names
        names[e] = "n2"
        let live = ["n1": a, "n2": e, "n3": c]
        XCTAssertEqual(MetaMembershipPlanner.next(meta(voters: [a, b, c], live: live, names: names)),
                       .change(ConfChange(.addLearner, e)), "the new store joins as a learner; the old one keeps its vote meanwhile")
        let caughtUp = meta(voters: [a, b, c], learners: [e], live: live, match: [e: LogIndex(10)], names: names)
        XCTAssertEqual(MetaMembershipPlanner.next(caughtUp), .change(ConfChange(.remove, b)),
                       "never two voters for one server: the old identity leaves first")
        let oldGone = meta(voters: [a, c], learners: [e], live: live, match: [e: LogIndex(10)], names: names)
        XCTAssertEqual(MetaMembershipPlanner.next(oldGone), .change(ConfChange(.addVoter, e)))
    }

    func test_meta_learnerOfAStoreReplacedAgain_isRemoved() {
        var names = self.names
        names[e] = "n4"
        let v = meta(voters: [a, b, c], learners: [d], live: ["n1": a, "n2": b, "n3": c, "n4": e], names: names)
        XCTAssertEqual(MetaMembershipPlanner.next(v), .change(ConfChange(.remove, d)))
    }

    func test_meta_operatorRemoved_isRemovedAndNeverReadded() {
        let v = meta(voters: [a, b, c], live: ["n1": a, "n2": b, "n3": c], removed: [c])
        XCTAssertEqual(MetaMembershipPlanner.next(v), .change(ConfChange(.remove, c)))
        let after = meta(voters: [a, b], live: ["n1": a, "n2": b, "n3": c], removed: [c])
        XCTAssertNil(MetaMembershipPlanner.next(after), "a removed store that is still running is not added back")
    }

    func test_meta_removingTheLeader_handsLeadershipOverFirst() {
        let v = meta(voters: [a, b, c], live: ["n1": a, "n2": b, "n3": c], match: [b: LogIndex(8), c: LogIndex(10)], removed: [a])
        XCTAssertEqual(MetaMembershipPlanner.next(v), .transferLeadership(c))
    }

    func test_meta_lastVoter_isNeverRemoved() {
        let v = meta(voters: [b], live: ["n1": a], removed: [b])
        XCTAssertNil(MetaMembershipPlanner.next(v))
    }

    func test_meta_bootstrapMembersWithoutNames_getNamed() {
        let v = meta(voters: [a, b], live: ["n1": a, "n2": b], names: [a: "n1"])
        XCTAssertEqual(MetaMembershipPlanner.next(v), .recordName(b, "n2"))
    }

    func test_meta_autoRemoval_onlyWhenEnabledAndLongEnough() {
        var v = meta(voters: [a, b, c], live: ["n1": a, "n2": b])
        v.unreachableTicks = [c: 50]
        XCTAssertNil(MetaMembershipPlanner.next(v), "off by default")
        v.autoRemoveAfterTicks = 100
        XCTAssertNil(MetaMembershipPlanner.next(v))
        v.unreachableTicks = [c: 100]
        XCTAssertEqual(MetaMembershipPlanner.next(v), .change(ConfChange(.remove, c)))
    }

    // MARK: - stream groups

    private func stream(voters: [NodeID], learners: [NodeID] = [], target: [NodeID], match: [NodeID: LogIndex] = [:],
                        leader: NodeID? = nil) -> StreamMembershipView {
        StreamMembershipView(conf: ConfState(voters: voters, learners: learners), changePending: false,
                             leader: leader ?? a, target: target, match: match, commit: LogIndex(10))
    }

    func test_stream_replacement_addsBeforeRemoving() {
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a, b, c], target: [a, b, d])), .change(ConfChange(.addLearner, d)))
        XCTAssertNil(StreamMembershipPlanner.next(stream(voters: [a, b, c], learners: [d], target: [a, b, d], match: [d: LogIndex(3)])),
                     "the old replica stays while the new one catches up")
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a, b, c], learners: [d], target: [a, b, d], match: [d: LogIndex(10)])),
                       .change(ConfChange(.addVoter, d)))
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a, b, c, d], target: [a, b, d])), .change(ConfChange(.remove, c)))
        XCTAssertNil(StreamMembershipPlanner.next(stream(voters: [a, b, d], target: [a, b, d])))
    }

    func test_stream_replacedStore_goneVoterRemovedBeforeTheNewOneIsPromoted() {
        // c's server came back with store d: c can never vote again. Promoting d first would make
        // four voters (quorum three) of which c is one; losing d then would stop the group.
        var v = stream(voters: [a, b, c], learners: [d], target: [a, b, d], match: [d: LogIndex(10)])
        v.gone = [c]
        XCTAssertEqual(StreamMembershipPlanner.next(v), .change(ConfChange(.remove, c)))
        v.conf = ConfState(voters: [a, b], learners: [d])
        XCTAssertEqual(StreamMembershipPlanner.next(v), .change(ConfChange(.addVoter, d)))
        // A voter that is only unreachable (not known to be gone) stays until the new one is a voter.
        v.conf = ConfState(voters: [a, b, c], learners: [d])
        v.gone = []
        XCTAssertEqual(StreamMembershipPlanner.next(v), .change(ConfChange(.addVoter, d)))
        // A gone voter that the assignment still wants is not removed here.
        v.gone = [c]
        v.target = [a, b, c]
        v.conf = ConfState(voters: [a, b, c])
        XCTAssertNil(StreamMembershipPlanner.next(v))
    }

    func test_stream_scaleUp_oneAtATime() {
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a], target: [a, b, c])), .change(ConfChange(.addLearner, b)))
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a, b], target: [a, b, c])), .change(ConfChange(.addLearner, c)))
    }

    func test_stream_scaleDown_removesExtras_leaderHandsOverFirst() {
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a, b, c], target: [a])), .change(ConfChange(.remove, b)))
        let leaderLeaving = stream(voters: [a, b, c], target: [b], match: [b: LogIndex(10), c: LogIndex(10)])
        XCTAssertEqual(StreamMembershipPlanner.next(leaderLeaving), .transferLeadership(b))
        let targetEmpty = stream(voters: [a, b, c], target: [b], match: [b: .zero])
        XCTAssertNil(StreamMembershipPlanner.next(targetEmpty), "leadership goes only to a target that holds entries")
    }

    func test_stream_learner_promotedOnceItHoldsWhatWasCommittedWhenItJoined() {
        var v = stream(voters: [a, b, c], learners: [d], target: [a, b, c, d], match: [d: LogIndex(7)])
        XCTAssertNil(StreamMembershipPlanner.next(v), "commit is 10: behind")
        v.catchUpIndex = [d: LogIndex(7)]
        XCTAssertEqual(StreamMembershipPlanner.next(v), .change(ConfChange(.addVoter, d)),
                       "it holds everything committed when it joined; the rest streams in")
        v.match = [:] // offered a snapshot it cannot install: it never acknowledged an entry
        XCTAssertNil(StreamMembershipPlanner.next(v), "a learner without the data is never promoted")
    }

    func test_stream_learnerNoLongerWanted_isRemoved() {
        XCTAssertEqual(StreamMembershipPlanner.next(stream(voters: [a, b, c], learners: [d], target: [a, b, c])),
                       .change(ConfChange(.remove, d)))
    }

    // MARK: - placement and identity

    func test_resize_keepsOrderDropsExcludedFillsLeastLoaded() {
        let others = [StreamAssignment(config: try! StreamConfig.decode(JSONObject(["name": "X", "subjects": ["x"]], typeName: "StreamConfig")),
                                       peers: ["n1", "n4"], ids: [a, d], group: 100, created: 0)]
        let servers = ["n1", "n2", "n3", "n4", "n5"]
        XCTAssertEqual(Placement.resize(["n2", "n1", "n3"], replicas: 3, among: servers, excluding: ["n1"], assignments: others),
                       ["n2", "n3", "n5"], "n5 holds nothing, n4 holds one replica")
        XCTAssertEqual(Placement.resize(["n2", "n1", "n3"], replicas: 1, among: servers, excluding: [], assignments: others), ["n2"])
        XCTAssertEqual(Placement.resize(["n1"], replicas: 3, among: servers, excluding: [], assignments: others), ["n1", "n2", "n3"])
        XCTAssertNil(Placement.resize(["n1", "n2", "n3"], replicas: 3, among: ["n1", "n2", "n3"], excluding: ["n3"], assignments: []))
    }

    func test_assignment_idsRoundTrip_andLegacyAssignmentsGetNameIDs() throws {
        let cfg = try StreamConfig.decode(JSONObject(["name": "S", "subjects": ["s"]], typeName: "StreamConfig"))
        let big = NodeID(UInt64.max - 7)
        let x = StreamAssignment(config: cfg, peers: ["n1", "n2"], ids: [big, b], group: 101, created: 5, initial: [big])
        let back = try StreamAssignment.decode(JSONObject.parse(JSJSON.encode(x.json), typeName: "StreamAssignment"))
        XCTAssertEqual(back.ids, [big, b])
        XCTAssertEqual(back.initial, [big])
        var legacy = x.json
        legacy["ids"] = nil
        legacy["initial"] = nil
        let old = try StreamAssignment.decode(JSONObject.parse(JSJSON.encode(legacy), typeName: "StreamAssignment"))
        XCTAssertEqual(old.ids, [NodeIdentity.nodeID(name: "n1", storageID: ""), NodeIdentity.nodeID(name: "n2", storageID: "")])
    }

    func test_identity_isCreatedOnce_andAnEmptyStoreGetsANewOne() throws {
        let root = NSTemporaryDirectory() + "/ident-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let first = try NodeIdentity.load(root: root, name: "n1")
        XCTAssertEqual(first.storageID.count, 16)
        XCTAssertEqual(try NodeIdentity.load(root: root, name: "n1"), first, "a restart keeps the identity")
        try FileManager.default.removeItem(atPath: root)
        let replaced = try NodeIdentity.load(root: root, name: "n1")
        XCTAssertNotEqual(replaced.nodeID, first.nodeID, "a wiped store is a new member")
        XCTAssertNotEqual(NodeIdentity.nodeID(name: "n1", storageID: replaced.storageID), NodeIdentity.nodeID(name: "n2", storageID: replaced.storageID))
    }

    func test_identity_damagedFile_isRefused() throws {
        let root = NSTemporaryDirectory() + "/ident-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: root + "/identity.json"))
        XCTAssertThrowsError(try NodeIdentity.load(root: root, name: "n1"))
    }

    func test_hello_roundTrips_andGarbageIsRejected() {
        let h = PeerHello(id: NodeID(UInt64.max), meta: true, boot: [a, b], bootNames: ["n1", ""], removed: [(group: 7, id: c)])
        guard let (name, back) = PeerHello.decode(h.encoded(name: "n9")) else { return XCTFail("no decode") }
        XCTAssertEqual(name, "n9")
        XCTAssertEqual(back, h)
        XCTAssertEqual(back.removed.map(\.group), [7])
        XCTAssertEqual(back.bootNames, ["n1", ""])
        XCTAssertNil(PeerHello.decode(Array("{\"name\":\"x\",\"id\":\"zz\"}".utf8)))
        XCTAssertNil(PeerHello.decode(Array("[1,2]".utf8)))
    }
}
