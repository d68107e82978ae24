import ServerConfig
import XCTest
@testable import ClusterServer

/// Account `mappings`: the config forms and refusals nats-server 2.15.1 has (texts probed by
/// starting it with each bad file), and the weighted choice with an injected draw.
final class SubjectMappingsTests: XCTestCase {
    private func load(_ text: String) throws -> ServerOptions {
        let root = try ConfigParser().parse(text, fileName: "test.conf")
        var warnings: [String] = []
        return try ConfigLoader.map(root, into: ServerOptions(), warnings: &warnings)
    }

    private func mappings(_ text: String, cluster: String? = nil) throws -> SubjectMappings {
        try XCTUnwrap(try SubjectMappings(try load(text).mappings, cluster: cluster))
    }

    func test_configForms() throws {
        let o = try load("""
        mappings {
          "a": "b"
          "s.*.*": "t.$2.$1"
          "w": [ {destination: "w1", weight: 40%}, {dest: "w2", weight: "60%"} ]
          "c": {destination: "c1", weight: 100, cluster: "east"}
        }
        accounts { A: { mappings: { "in.*": "out.$1" } } }
        """)
        XCTAssertEqual(o.mappings, [
            .init(source: "a", destinations: [.init(subject: "b", weight: 100)]),
            .init(source: "s.*.*", destinations: [.init(subject: "t.$2.$1", weight: 100)]),
            .init(source: "w", destinations: [.init(subject: "w1", weight: 40), .init(subject: "w2", weight: 60)]),
            .init(source: "c", destinations: [.init(subject: "c1", weight: 100, cluster: "east")]),
        ])
        XCTAssertEqual(o.accounts.first?.mappings, [.init(source: "in.*", destinations: [.init(subject: "out.$1", weight: 100)])])
    }

    func test_refusalsNameWhatNatsServerNames() {
        let refused: [(String, String)] = [
            (#"mappings: { "a.*": "b.{{foo(1)}}" }"#,
             #"Error adding mapping for "a.*" to "b.{{foo(1)}}" : invalid mapping destination: unknown function in {{foo(1)}}"#),
            (#"mappings: { "a.*": "b.{{wildcard(2)}}" }"#,
             #"Error adding mapping for "a.*" to "b.{{wildcard(2)}}" : invalid mapping destination: wildcard index out of range in {{wildcard(2)}}: [2]"#),
            (#"mappings: { "a": [ {destination: "b", weight: "60%"}, {destination: "c", weight: "50%"} ] }"#,
             #"Error adding mapping for "a" : total weight needs to be <= 100"#),
            (#"mappings: { "a": [ {destination: "b", weight: 120} ] }"#, "Invalid weight 120 for mapping destination"),
            (#"mappings: { "a": [ {destination: "b"} ] }"#, #"Missing weight for mapping destination "b""#),
            (#"mappings: { "a": [ {destination: "b", weight: 50, foo: 1} ] }"#, #"Unknown field "foo" for mapping destination"#),
            (#"mappings: { "a..b": "c" }"#, #"Subject "a..b" is not a valid subject"#),
            (#"mappings: { "a": 5 }"#, "Expected an entry for the mapping destination"),
            (#"mappings: { "a.*": "b c" }"#, #"Error adding mapping for "a.*" to "b c" : invalid mapping destination: invalid transform"#),
            (#"accounts: { A: { mappings: { "a.*": "b.{{wildcard(3)}}" } } }"#,
             #"Error adding mapping for "a.*" to "b.{{wildcard(3)}}" : invalid mapping destination: wildcard index out of range in {{wildcard(3)}}: [3]"#),
        ]
        for (text, message) in refused {
            XCTAssertThrowsError(try load(text), text) { XCTAssertTrue("\($0)".hasSuffix(message), "\($0)") }
        }
    }

    func test_literalAndWildcardSources_firstMatchWins() throws {
        let m = try mappings("""
        mappings { "a": "b", "s.*.*": "t.$2.$1", "s.x.*": "never.$1" }
        """)
        XCTAssertEqual(m.map("a"), "b")
        XCTAssertEqual(m.map("s.x.y"), "t.y.x")
        XCTAssertNil(m.map("a.b"))
        XCTAssertNil(m.map("s.x"))
    }

    func test_weightsAreCumulative_andTheRestKeepsTheSubject() throws {
        let m = try mappings(#"mappings { "w.*": [ {destination: "one.$1", weight: 30%}, {destination: "two.$1", weight: 50%} ] }"#)
        XCTAssertEqual(m.map("w.k") { XCTAssertEqual($0, 100); return 0 }, "one.k")
        XCTAssertEqual(m.map("w.k") { _ in 29 }, "one.k")
        XCTAssertEqual(m.map("w.k") { _ in 30 }, "two.k")
        XCTAssertEqual(m.map("w.k") { _ in 79 }, "two.k")
        XCTAssertNil(m.map("w.k") { _ in 80 }, "the 20% left over: published as is")
        XCTAssertNil(m.map("w.k") { _ in 99 })
    }

    func test_clusterScopedDestinationsReplaceTheOthersOnThatClusterOnly() throws {
        let text = #"mappings { "c": [ {destination: "east", weight: 100%, cluster: "east"}, {destination: "any", weight: 100%} ] }"#
        XCTAssertEqual(try mappings(text, cluster: "east").map("c"), "east")
        XCTAssertEqual(try mappings(text, cluster: "west").map("c"), "any")
        XCTAssertEqual(try mappings(text).map("c"), "any")
    }

    func test_noMappingsIsNil() throws {
        XCTAssertNil(try SubjectMappings([], cluster: nil))
    }
}
