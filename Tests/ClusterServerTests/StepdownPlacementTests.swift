import Raft
import XCTest
@testable import ClusterServer

/// A leader stepdown request's placement: parsing as nats-server 2.11 does (its answers were
/// taken from a three-node nats-server 2.15 cluster) and the choice of the next leader.
final class StepdownPlacementTests: XCTestCase {
    private let a = NodeID(1), b = NodeID(2), c = NodeID(3)

    private func voters(reachable: Set<NodeID>? = nil, match: [NodeID: UInt64] = [:]) -> [StepdownPlacement.Voter] {
        [(a, "n1"), (b, "n2"), (c, "n3")].map { id, name in
            StepdownPlacement.Voter(id: id, name: name, match: LogIndex(match[id] ?? 10), reachable: reachable?.contains(id) ?? true)
        }
    }

    private func parse(_ text: String) throws -> StepdownPlacement? { try StepdownPlacement.parse(Array(text.utf8)) }

    private func assertRefused(_ text: String, _ description: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { e in
            XCTAssertEqual(e as? JSAPIError, .invalidJSON(description), file: file, line: line)
        }
    }

    func test_parse_aPlainStepdown_hasNoPlacement() throws {
        for text in ["", "  ", "{}", #"{"placement":null}"#, #"{"placement":{}}"#, #"{"placement":{"preferred":""}}"#] {
            XCTAssertNil(try parse(text), text)
        }
    }

    func test_parse_readsEveryField() throws {
        let p = try parse(#"{"placement":{"preferred":"n3","cluster":"c","tags":["ssd","eu"]}}"#)
        XCTAssertEqual(p, StepdownPlacement(preferred: "n3", cluster: "c", tags: ["ssd", "eu"]))
    }

    func test_parse_refusesWhatNatsServerRefuses() {
        assertRefused(#"{"foo":1}"#, #"json: unknown field "foo""#)
        assertRefused(#"{"placement":{"foo":1}}"#, #"json: unknown field "foo""#)
        assertRefused(#"{"placement":{"preferred":5}}"#,
                      "json: cannot unmarshal number into Go struct field JSApiLeaderStepdownRequest.placement.preferred of type string")
        assertRefused(#"{"placement":"x"}"#,
                      "json: cannot unmarshal string into Go struct field JSApiLeaderStepdownRequest.placement of type server.Placement")
        assertRefused("[]", "json: cannot unmarshal array into Go value of type server.JSApiLeaderStepdownRequest")
        XCTAssertThrowsError(try parse("{bad")) { e in XCTAssertEqual((e as? JSAPIError)?.errCode, 10025) }
    }

    func test_preferred_picksThatVoter_evenBehindOrUnreachable_andWinsOverTheFilters() throws {
        let p = StepdownPlacement(preferred: "n3", cluster: "elsewhere")
        XCTAssertEqual(try p.target(voters: voters(reachable: [a, b], match: [c: 1]), me: a, clusterName: "c"), c)
    }

    func test_preferred_thatLeadsOrIsNoVoter_isRefusedWith10005() {
        XCTAssertThrowsError(try StepdownPlacement(preferred: "n1").target(voters: voters(), me: a, clusterName: "c")) { e in
            XCTAssertEqual(e as? JSAPIError, JSAPIError(400, 10005, #"preferred server "n1" is already leader"#))
        }
        XCTAssertThrowsError(try StepdownPlacement(preferred: "n9").target(voters: voters(), me: a, clusterName: "c")) { e in
            XCTAssertEqual(e as? JSAPIError, JSAPIError(400, 10005, #"preferred server "n9" not known"#))
        }
    }

    func test_filters_keepTheMostCaughtUpReachableVoterOfThisCluster() throws {
        let p = StepdownPlacement(cluster: "c")
        XCTAssertEqual(try p.target(voters: voters(match: [b: 5, c: 9]), me: a, clusterName: "c"), c)
        XCTAssertEqual(try p.target(voters: voters(reachable: [a, b], match: [b: 5, c: 9]), me: a, clusterName: "c"), b)
        for (placement, reachable) in [(StepdownPlacement(cluster: "other"), Set([a, b, c])),
                                       (StepdownPlacement(tags: ["ssd"]), Set([a, b, c])),
                                       (StepdownPlacement(cluster: "c"), Set([a]))] {
            XCTAssertThrowsError(try placement.target(voters: voters(reachable: reachable), me: a, clusterName: "c")) { e in
                XCTAssertEqual(e as? JSAPIError, JSAPIError(400, 10005, "no replacement peer connected"))
            }
        }
    }
}
