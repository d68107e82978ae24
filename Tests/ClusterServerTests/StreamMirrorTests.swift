@testable import ClusterServer
import XCTest

/// The pure parts of a stream's `mirror`: the config's checks, in nats-server 2.15.1's order
/// with its codes and texts (probed), the update rules (a mirror may be dropped, not changed or
/// added) and the mirrored entry form (tag 9, carrying the origin's sequence).
final class StreamMirrorTests: XCTestCase {
    private func config(_ json: String) throws -> StreamConfig {
        var c = try StreamConfig.decode(try JSONObject.parse(Array(json.utf8), typeName: "StreamConfig"))
        try c.normalize()
        return c
    }

    func test_config_decodedAndEchoed_withoutSubjects() throws {
        let c = try config(#"{"name":"M","mirror":{"name":"O","opt_start_seq":3,"filter_subject":"o.a"}}"#)
        XCTAssertEqual(c.subjects, [], "a mirror listens on nothing")
        XCTAssertEqual(c.mirror?.name, "O")
        XCTAssertEqual(c.copiedFrom.map(\.name), ["O"])
        XCTAssertEqual(c.upstreams, ["O"])
        XCTAssertEqual(c.json["mirror"] as? [String: AnyHashable], ["name": "O", "opt_start_seq": 3, "filter_subject": "o.a"])
        XCTAssertNil(c.json["subjects"])
        XCTAssertNil(try config(#"{"name":"S","mirror":null}"#).mirror, "null: no mirror")
    }

    func test_config_refusals() {
        let refused: [(String, JSAPIError)] = [
            (#"{"name":"M","mirror":{"name":"O"},"subjects":["a"],"sources":[{"name":"P"}],"first_seq":3}"#,
             JSAPIError(400, 10143, "stream mirrors can not have first sequence configured")),
            (#"{"name":"M","mirror":{"name":"O"},"subjects":["a"]}"#, JSAPIError(400, 10034, "stream mirrors can not contain subjects")),
            (#"{"name":"M","mirror":{"name":"O"},"sources":[{"name":"P"}]}"#,
             JSAPIError(400, 10031, "stream mirrors can not also contain other sources")),
            (#"{"name":"M","mirror":{"name":"bad.name","filter_subject":"x..y"}}"#, JSAPIError(400, 10142, "mirrored stream name is invalid")),
            (#"{"name":"M","mirror":{"name":"O","filter_subject":"x..y","subject_transforms":[{"src":"o.*","dest":"x.$1"}]}}"#,
             JSAPIError(400, 10150, "mirror with multiple subject transforms cannot also have a single subject filter")),
            (#"{"name":"M","mirror":{"name":"O","subject_transforms":[{"src":"o..","dest":"x.$1"}]}}"#,
             JSAPIError(400, 10151, "mirror transform source: invalid subject o..")),
            (#"{"name":"M","mirror":{"name":"O","subject_transforms":[{"src":"o.*","dest":"x.$3"}]}}"#,
             JSAPIError(400, 10154, "mirror transform: invalid mapping destination: wildcard index out of range in $3: [3]")),
            (#"{"name":"M","mirror":{"name":"O","subject_transforms":[{"src":"o.*","dest":"x.$1"},{"src":"o.>","dest":"y.>"}]}}"#,
             JSAPIError(400, 10152, "mirror subject filters can not overlap")),
            (#"{"name":"M","mirror":{"name":"M"}}"#, JSAPIError(500, 10052, "detected cycle")),
            (#"{"name":"M","mirror":{"name":"O","filter_subject":"bad..x"}}"#,
             JSAPIError(500, 10049, "subject filter 'bad..x' for the mirror invalid subject")),
            (#"{"name":"M","mirror":{"name":"O","external":{"api":"$JS.x.API"}}}"#,
             JSAPIError(500, 10052, "stream mirrors from another domain or account are not supported by clusterd yet")),
        ]
        for (json, error) in refused {
            XCTAssertThrowsError(try config(json), json) { XCTAssertEqual($0 as? JSAPIError, error) }
        }
    }

    func test_update_mayDropTheMirror_notChangeOrAddIt() throws {
        let mirror = try config(#"{"name":"M","mirror":{"name":"O"}}"#)
        let plain = try config(#"{"name":"M"}"#)
        let changed = JSAPIError(400, 10055, "stream mirror configuration can not be updated")
        XCTAssertNoThrow(try mirror.checkUpdate(to: mirror))
        XCTAssertNoThrow(try mirror.checkUpdate(to: plain), "promoted to an ordinary stream")
        XCTAssertThrowsError(try mirror.checkUpdate(to: try config(#"{"name":"M","mirror":{"name":"P"}}"#))) {
            XCTAssertEqual($0 as? JSAPIError, changed)
        }
        XCTAssertThrowsError(try plain.checkUpdate(to: mirror)) { XCTAssertEqual($0 as? JSAPIError, changed) }
    }

    func test_mirroredEntry_isTag9_carryingItsSequence() throws {
        let headers = Array("NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n".utf8)
        let entry = StreamEntry.encodeMessage(subject: "o", reply: nil, headers: headers, payload: [7], timestamp: 10, dedupTime: 20,
                                              mirrorSeq: 1_000_000)
        XCTAssertEqual(entry.first, StreamEntry.messageMirroredTag)
        XCTAssertEqual(StreamEntry.mirroredSeq(entry), 1_000_000)
        XCTAssertFalse(StreamEntry.isSourced(entry))
        XCTAssertFalse(StreamEntry.isDedupDecided(entry))
        XCTAssertNil(StreamEntry.mirroredSeq(StreamEntry.encodeMessage(subject: "o", reply: nil, headers: nil, payload: [7], timestamp: 10,
                                                                       dedupTime: 20)))
        guard case let .message(s, r, h, p, t, d) = try StreamEntry.decode(entry) else { return XCTFail("not a message") }
        XCTAssertEqual(s, "o")
        XCTAssertNil(r)
        XCTAssertEqual(h, headers)
        XCTAssertEqual(p, [7])
        XCTAssertEqual([t, d], [10, 20])
        var zero = entry
        for i in 1...8 { zero[i] = 0 }
        XCTAssertThrowsError(try StreamEntry.decode(zero), "no leader mirrors sequence 0")
        XCTAssertThrowsError(try StreamEntry.decode(Array(entry.prefix(5))), "truncated")
    }
}
