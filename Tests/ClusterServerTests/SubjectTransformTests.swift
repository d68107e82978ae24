@testable import ClusterServer
import XCTest

/// Subject transforms give nats-server's results: every expected subject below is what
/// nats-server 2.15.1 delivered for the same mapping (probed with a `mappings` block, one
/// publish each), and every error text is the one its stream API answered.
final class SubjectTransformTests: XCTestCase {
    private func map(_ source: String, _ destination: String, _ subject: String) throws -> String? {
        try XCTUnwrap(SubjectTransform(source: source, destination: destination)).apply(subject)
    }

    func test_tokenFunctionsMatchNatsServer() throws {
        let cases: [(String, String, [(String, String)])] = [
            ("l.*", "out.l.{{left(1,2)}}", [("l.abcdef", "out.l.ab"), ("l.a", "out.l.a")]),
            ("r.*", "out.r.{{right(1,2)}}", [("r.abcdef", "out.r.ef"), ("r.a", "out.r.a")]),
            ("s.*", "out.s.{{split(1,-)}}", [("s.a-b-c", "out.s.a.b.c"), ("s.-a--b-", "out.s.a.b"), ("s.abc", "out.s.abc")]),
            ("sl.*", "out.sl.{{sliceFromLeft(1,3)}}",
             [("sl.abcdefgh", "out.sl.abc.def.gh"), ("sl.ab", "out.sl.ab"), ("sl.abcdef", "out.sl.abc.def")]),
            ("sr.*", "out.sr.{{sliceFromRight(1,3)}}",
             [("sr.abcdefgh", "out.sr.ab.cde.fgh"), ("sr.abcdef", "out.sr.abc.def"), ("sr.ab", "out.sr.ab")]),
            ("fl.*", "out.fl.{{splitFromLeft(1,2)}}", [("fl.abcd", "out.fl.ab.cd"), ("fl.a", "out.fl.a")]),
            ("fr.*", "out.fr.{{splitFromRight(1,2)}}", [("fr.abcd", "out.fr.ab.cd"), ("fr.ab", "out.fr.ab")]),
            ("w.*.*", "out.w.$2.$1", [("w.one.two", "out.w.two.one")]),
            ("g.*.>", "out.g.{{wildcard(1)}}.>", [("g.x.y.z", "out.g.x.y.z"), ("g.x.y", "out.g.x.y")]),
            ("lit", "out.lit", [("lit", "out.lit")]),
        ]
        for (source, destination, pairs) in cases {
            for (subject, expected) in pairs {
                XCTAssertEqual(try map(source, destination, subject), expected, "\(source) -> \(destination) on \(subject)")
            }
        }
    }

    func test_partitionHashesTheChosenTokensOrTheWholeSubjectAsNatsServer() throws {
        // FNV-1a of the named wildcard tokens concatenated; with none named, of the whole subject.
        let cases: [(String, String, [(String, String)])] = [
            ("p.*", "out.p.{{partition(5)}}",
             [("p.foo", "out.p.0"), ("p.bar", "out.p.3"), ("p.baz", "out.p.0"), ("p.q1", "out.p.2"), ("p.q2", "out.p.0"), ("p.q3", "out.p.4")]),
            ("p0.*.*", "out.p0.{{partition(5)}}", [("p0.a.b", "out.p0.2"), ("p0.x.y", "out.p0.2")]),
            ("p1.*.*", "out.p1.{{partition(5,1,2)}}", [("p1.a.b", "out.p1.1"), ("p1.x.y", "out.p1.2"), ("p1.ab.c", "out.p1.1")]),
            ("p2.*.*", "out.p2.{{partition(7,2)}}", [("p2.a.b", "out.p2.6"), ("p2.a.zz", "out.p2.0")]),
            ("lp", "out.lp.{{partition(4)}}", [("lp", "out.lp.1")]),
        ]
        for (source, destination, pairs) in cases {
            for (subject, expected) in pairs {
                XCTAssertEqual(try map(source, destination, subject), expected, "\(source) -> \(destination) on \(subject)")
            }
        }
    }

    func test_randomDrawsFromTheGivenGeneratorBelowTheBound() throws {
        let t = try XCTUnwrap(SubjectTransform(source: "rnd.*", destination: "out.{{random(3)}}.$1"))
        var bounds: [UInt32] = []
        XCTAssertEqual(t.apply("rnd.a") { bounds.append($0); return 2 }, "out.2.a")
        XCTAssertEqual(bounds, [3])
        for _ in 0..<50 {
            let n = try XCTUnwrap(t.apply("rnd.b")?.split(separator: ".")[1]).description
            XCTAssertTrue(["0", "1", "2"].contains(n), n)
        }
    }

    func test_nonMatchingSubjectsAreNotMapped() throws {
        XCTAssertNil(try map("a.*", "b.$1", "c.x"))
        XCTAssertNil(try map("a.*", "b.$1", "a.x.y"))
        XCTAssertEqual(try map("", "x.>", "any.thing"), "x.any.thing")
        XCTAssertEqual(try map(">", ">", "same.subject"), "same.subject")
    }

    func test_caseAndSpacesInFunctionsAsNatsServer() throws {
        XCTAssertEqual(try map("a.*", "x.{{ Wildcard( 1 ) }}", "a.q"), "x.q")
        XCTAssertEqual(try map("a.*", "x.{{SplitFromLeft(1, 1)}}", "a.qr"), "x.q.r")
        XCTAssertThrowsError(try SubjectTransform(source: "a.*", destination: "x.{{WILDCARD(1)}}")) {
            XCTAssertEqual("\($0)", "invalid mapping destination: unknown function in {{WILDCARD(1)}}")
        }
    }

    func test_emptyDestinationIsNoTransform() throws {
        XCTAssertNil(try SubjectTransform(source: "a.*", destination: ""))
    }

    func test_refusalsUseNatsServersWords() {
        let refused: [(String, String, String)] = [
            ("a.*", "x.{{wildcard(2)}}", "invalid mapping destination: wildcard index out of range in {{wildcard(2)}}: [2]"),
            ("a.*", "x.{{foo(1)}}", "invalid mapping destination: unknown function in {{foo(1)}}"),
            ("a.>", "x", "invalid subject"),
            ("a.*", "x.*", "invalid subject"),
            ("a..b", "x", "invalid subject"),
            ("a", "x.{{wildcard(1)}}", "invalid mapping destination: wildcard index out of range in {{wildcard(1)}}"),
            ("a.*", "x.{{wildcard()}}", "invalid mapping destination: not enough arguments passed to the function in {{wildcard()}}"),
            ("a.*", "x.{{wildcard(1,2)}}", "invalid mapping destination: too many arguments passed to the function in {{wildcard(1,2)}}"),
            ("a.*", "x.{{wildcard(a)}}",
             "invalid mapping destination: function argument is invalid or in the wrong format in {{wildcard(a)}}"),
            ("a.*", "x.{{split(1)}}", "invalid mapping destination: not enough arguments passed to the function in {{split(1)}}"),
            ("a.*", "x.{{left(1,2,3)}}", "invalid mapping destination: too many arguments passed to the function in {{left(1,2,3)}}"),
            // Beyond nats-server (which divides by zero or reads token 0): refused.
            ("a.*", "x.{{partition(0,1)}}",
             "invalid mapping destination: function argument is invalid or in the wrong format in {{partition(0,1)}}"),
            ("a.*", "x.{{wildcard(0)}}", "invalid mapping destination: wildcard index out of range in {{wildcard(0)}}: [0]"),
        ]
        for (source, destination, text) in refused {
            XCTAssertThrowsError(try SubjectTransform(source: source, destination: destination), "\(source) -> \(destination)") {
                XCTAssertEqual("\($0)", text)
            }
        }
    }
}
