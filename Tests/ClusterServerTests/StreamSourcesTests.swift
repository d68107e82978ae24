@testable import ClusterServer
import XCTest

/// The pure parts of stream `sources`: the `Nats-Stream-Source` header (nats-server 2.15.1's
/// layout, probed; its older ack-reply layout read back), a delivery's reply subject, the
/// config's checks (codes and texts probed) and the sourced entry form (tag 8).
final class StreamSourcesTests: XCTestCase {
    func test_header_layoutAndBothReadBackForms() throws {
        XCTAssertEqual(SourceHeader.value(stream: "O2", seq: 1, filter: "o2.b", destination: nil, subject: "o2.b"), "O2 1 o2.b > o2.b")
        let new = try XCTUnwrap(SourceHeader.parse("O1 4 > > o1.z JJiCQVPi"))
        XCTAssertEqual(new.key, SourceHeader.key(stream: "O1", filter: nil, destination: nil))
        XCTAssertEqual(new.seq, 4)
        XCTAssertEqual(SourceHeader.parse("O2 7 o2.b x.> o2.b")?.key, "O2 o2.b x.>")
        XCTAssertEqual(SourceHeader.parse("O3 9")?.key, "O3 > >", "the two-field form of nats-server 2.9")
        let old = try XCTUnwrap(SourceHeader.parse("$JS.ACK.O4.c.1.12.3.1700000000.0"))
        XCTAssertEqual(old.key, "O4 > >")
        XCTAssertEqual(old.seq, 12)
        XCTAssertNil(SourceHeader.parse("O5"))
        XCTAssertNil(SourceHeader.parse("O5 x"))
        XCTAssertNil(SourceHeader.parse("$JS.ACK.short"))
    }

    func test_deliveryReply() {
        XCTAssertEqual(SourcedDelivery(reply: "$JS.ACK.O1.c.1.42.7.1700000000000000000.3"),
                       SourcedDelivery(streamSeq: 42, consumerSeq: 7, timestamp: 1_700_000_000_000_000_000, pending: 3))
        XCTAssertNil(SourcedDelivery(reply: "_INBOX.x"))
        XCTAssertNil(SourcedDelivery(reply: "$JS.ACK.O1.c.1.x.7.1.3"))
        XCTAssertNil(SourcedDelivery(reply: "$JS.NAK.O1.c.1.42.7.1.3"))
    }

    private func config(_ json: String) throws -> StreamConfig {
        var c = try StreamConfig.decode(try JSONObject.parse(Array(json.utf8), typeName: "StreamConfig"))
        try c.normalize()
        return c
    }

    func test_config_decodedEchoedAndWithoutDefaultSubjects() throws {
        let c = try config(#"{"name":"AGG","sources":[{"name":"O1","opt_start_seq":5},{"name":"O2","filter_subject":"o2.b"},"#
            + #"{"name":"O3","subject_transforms":[{"src":"o3.*","dest":"x.$1"}]}]}"#)
        XCTAssertEqual(c.subjects, [], "fed by its sources only")
        XCTAssertEqual(c.sources.map(\.name), ["O1", "O2", "O3"])
        XCTAssertEqual(c.sources[0].optStartSeq, 5)
        XCTAssertEqual(c.sources[1].filters, ["o2.b"])
        XCTAssertEqual(c.sources[2].filters, ["o3.*"])
        XCTAssertEqual(c.sources[2].headerKey, "O3 o3.* x.$1")
        XCTAssertNil(c.json["subjects"])
        XCTAssertEqual((c.json["sources"] as? [[String: Any]])?.count, 3)
        XCTAssertEqual(try config(#"{"name":"S"}"#).subjects, ["S"], "no sources: the name, as before")
    }

    func test_config_refusals() {
        let refused: [(String, JSAPIError)] = [
            (#"{"name":"S","sources":[{"name":""}]}"#, JSAPIError(400, 10141, "sourced stream name is invalid")),
            (#"{"name":"S","sources":[{"name":"A"},{"name":"A"}]}"#, JSAPIError(400, 10140, "duplicate source configuration detected")),
            (#"{"name":"S","sources":[{"name":"A","filter_subject":"a.x","subject_transforms":[{"src":"a.*","dest":"x.$1"}]}]}"#,
             JSAPIError(400, 10144, "source with multiple subject transforms cannot also have a single subject filter")),
            (#"{"name":"S","sources":[{"name":"S"}]}"#, JSAPIError(500, 10052, "detected cycle")),
            (#"{"name":"S","sources":[{"name":"A","external":{"api":"$JS.x.API"}}]}"#,
             JSAPIError(500, 10052, "stream sources from another domain or account are not supported by clusterd yet")),
            (#"{"name":"S","sources":[{"name":"A","subject_transforms":[{"src":"a.*","dest":"x.$2"}]}]}"#,
             JSAPIError(400, 10146, "source transform: invalid mapping destination: wildcard index out of range in $2: [2]")),
            (#"{"name":"S","sources":[{"name":"A","subject_transforms":[{"src":"a..","dest":"x"}]}]}"#,
             JSAPIError(400, 10145, "source transform source: invalid subject a..")),
            (#"{"name":"S","sources":[{"name":"A","subject_transforms":[{"src":"a.*","dest":"x.$1"},{"src":"a.>","dest":"y.>"}]}]}"#,
             JSAPIError(400, 10147, "source filters can not overlap")),
        ]
        for (json, error) in refused {
            XCTAssertThrowsError(try config(json), json) { XCTAssertEqual($0 as? JSAPIError, error) }
        }
        XCTAssertNoThrow(try config(#"{"name":"S","sources":[{"name":"A"},{"name":"A","filter_subject":"a.x"}]}"#),
                         "the same stream twice with different filters is two sources")
    }

    func test_cycleThroughOtherStreams_isRefused() throws {
        // E mirrors A: a cycle through a mirror is one too.
        let graph: [String: [String]] = ["B": ["C"], "C": ["D", "E"], "E": ["A"], "X": []]
        var a = StreamConfig(name: "A")
        a.sources = [.init(name: "X"), .init(name: "B")]
        XCTAssertThrowsError(try JetStreamService.checkSourceCycle(a) { graph[$0] }) {
            XCTAssertEqual($0 as? JSAPIError, JSAPIError(500, 10052, "detected cycle"))
        }
        a.sources = [.init(name: "X"), .init(name: "D"), .init(name: "missing")]
        XCTAssertNoThrow(try JetStreamService.checkSourceCycle(a) { graph[$0] })
        a.sources = []
        a.mirror = .init(name: "C")
        XCTAssertThrowsError(try JetStreamService.checkSourceCycle(a) { graph[$0] }, "A mirrors C, which reaches A")
    }

    func test_sourcedEntry_isTag8_andOnlyItIsSourced() throws {
        let headers = Array("NATS/1.0\r\nNats-Stream-Source: O 1 > > o\r\n\r\n".utf8)
        let sourced = StreamEntry.encodeMessage(subject: "o", reply: nil, headers: headers, payload: [1], timestamp: 10, sourced: true)
        XCTAssertEqual(sourced.first, StreamEntry.messageSourcedTag)
        XCTAssertTrue(StreamEntry.isSourced(sourced))
        XCTAssertFalse(StreamEntry.isSourced(StreamEntry.encodeMessage(subject: "o", reply: nil, headers: headers, payload: [1],
                                                                      timestamp: 10, dedupTime: 10)))
        guard case let .message(s, r, h, p, t, d) = try StreamEntry.decode(sourced) else { return XCTFail("not a message") }
        XCTAssertEqual(s, "o")
        XCTAssertNil(r)
        XCTAssertEqual(h, headers)
        XCTAssertEqual(p, [1])
        XCTAssertEqual([t, d], [10, 10], "without a dedup time it carries the timestamp as one")
    }
}
