import XCTest
@testable import ClusterServer
import Raft

/// The route frame a publish is forwarded in (by a former leader, or relayed by a node without a
/// replica): round trip, and
/// hostile bytes are refused without trapping; and which node answers a publish entry.
final class ForwardedPublishTests: XCTestCase {
    private let withID = ForwardedPublish(stream: "ROLL", subject: "roll", reply: "_INBOX.a.1",
                                          headers: Array("NATS/1.0\r\nNats-Msg-Id: id-1\r\n\r\n".utf8), payload: Array("m1".utf8))

    func test_roundTrip() throws {
        XCTAssertEqual(try ForwardedPublish.decode(withID.encode()), withID)
        let bare = ForwardedPublish(stream: "S", subject: "s.x", reply: nil, headers: nil, payload: [])
        XCTAssertEqual(try ForwardedPublish.decode(bare.encode()), bare)
        var relay = withID
        relay.relay = true
        XCTAssertEqual(try ForwardedPublish.decode(relay.encode()), relay)
    }

    /// A forward that is not a relay keeps version 1's bytes, which older nodes read; a relay is
    /// the same behind version 2 and a flags byte.
    func test_versions() throws {
        let v1 = withID.encode()
        XCTAssertEqual(v1.first, 1)
        var relay = withID
        relay.relay = true
        XCTAssertEqual(relay.encode(), [2, 1] + v1.dropFirst())
        XCTAssertEqual(try ForwardedPublish.decode([2, 0] + v1.dropFirst()), withID, "flags without the relay bit")
    }

    func test_everyTruncation_andTrailingBytes_areRefused() {
        var relay = withID
        relay.relay = true
        for bytes in [withID.encode(), relay.encode()] {
            for n in 0..<bytes.count {
                XCTAssertThrowsError(try ForwardedPublish.decode(Array(bytes[..<n])), "prefix of \(n) bytes")
            }
            XCTAssertThrowsError(try ForwardedPublish.decode(bytes + [0]))
        }
        let bytes = withID.encode()
        var wrongVersion = bytes
        wrongVersion[0] = 9
        XCTAssertThrowsError(try ForwardedPublish.decode(wrongVersion))
    }

    func test_hugeLength_isRefused() {
        var bytes: [UInt8] = [1]
        bytes += [0xFE, 0xFF, 0xFF, 0xFF] // a stream name "4 GiB" long
        XCTAssertThrowsError(try ForwardedPublish.decode(bytes))
    }

    /// The proposer answers its own entry, leader or not, but not another term's entry that
    /// replaced its proposal at that index; a Raft leader answers every entry it applies but
    /// those of the leader that handed over to it.
    func test_whoAnswersAPublishEntry() {
        let t3 = Term(3), t4 = Term(4)
        XCTAssertTrue(StreamReplica.answersPublish(isRaftLeader: false, proposedTerm: t3, entryTerm: t3))
        XCTAssertFalse(StreamReplica.answersPublish(isRaftLeader: false, proposedTerm: t3, entryTerm: t4))
        XCTAssertFalse(StreamReplica.answersPublish(isRaftLeader: false, proposedTerm: nil, entryTerm: t3))
        XCTAssertTrue(StreamReplica.answersPublish(isRaftLeader: true, proposedTerm: nil, entryTerm: t3))
        XCTAssertTrue(StreamReplica.answersPublish(isRaftLeader: true, proposedTerm: t3, entryTerm: t4))
        // A leader handed over to from term 3 leaves term 3's entries to their proposer.
        XCTAssertFalse(StreamReplica.answersPublish(isRaftLeader: true, handedOverTerm: t3, proposedTerm: nil, entryTerm: t3))
        XCTAssertTrue(StreamReplica.answersPublish(isRaftLeader: true, handedOverTerm: t3, proposedTerm: nil, entryTerm: Term(2)))
        XCTAssertTrue(StreamReplica.answersPublish(isRaftLeader: true, handedOverTerm: t3, proposedTerm: t4, entryTerm: t4))
    }
}
