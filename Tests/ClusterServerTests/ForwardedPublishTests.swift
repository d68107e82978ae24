import XCTest
@testable import ClusterServer
import Raft

/// The route frame a stream's former leader forwards a held publish in: round trip, and
/// hostile bytes are refused without trapping; and which node answers a publish entry.
final class ForwardedPublishTests: XCTestCase {
    private let withID = ForwardedPublish(stream: "ROLL", subject: "roll", reply: "_INBOX.a.1",
                                          headers: Array("NATS/1.0\r\nNats-Msg-Id: id-1\r\n\r\n".utf8), payload: Array("m1".utf8))

    func test_roundTrip() throws {
        XCTAssertEqual(try ForwardedPublish.decode(withID.encode()), withID)
        let bare = ForwardedPublish(stream: "S", subject: "s.x", reply: nil, headers: nil, payload: [])
        XCTAssertEqual(try ForwardedPublish.decode(bare.encode()), bare)
    }

    func test_everyTruncation_andTrailingBytes_areRefused() {
        let bytes = withID.encode()
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try ForwardedPublish.decode(Array(bytes[..<n])), "prefix of \(n) bytes")
        }
        XCTAssertThrowsError(try ForwardedPublish.decode(bytes + [0]))
        var wrongVersion = bytes
        wrongVersion[0] = 9
        XCTAssertThrowsError(try ForwardedPublish.decode(wrongVersion))
    }

    func test_hugeLength_isRefused() {
        var bytes: [UInt8] = [ForwardedPublish.version]
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
