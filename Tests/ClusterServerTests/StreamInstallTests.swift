import Foundation
import Raft
import RaftLogStorage
import XCTest
@testable import ClusterServer

/// The catch-up frames, and switching a staged stream copy in, crash-safe.
final class CatchupWireTests: XCTestCase {
    private let frames: [CatchupFrame] = [
        .stateRequest(group: 7, request: 1, minIndex: 99),
        .messagesRequest(group: 7, request: 2, from: 5, to: 500, maxBytes: 1 << 20),
        .state(group: 7, request: 3, CatchupState(index: 12, term: 3, voters: [1, 2, 3], learners: [9], firstSeq: 4, lastSeq: 40,
                                                  deleted: [6, 7, 40], consumers: ["C1": Array("{}".utf8), "D": []])),
        .state(group: 7, request: 6, CatchupState(index: 12, term: 3, voters: [1], learners: [], firstSeq: 4, lastSeq: 40, deleted: [],
                                                  consumers: [:], dedupSkews: [.init(seq: 4, skew: -600_000_000_000), .init(seq: 30, skew: .max)])),
        .state(group: 7, request: 7, CatchupState(index: 12, term: 3, voters: [1], learners: [], firstSeq: 41, lastSeq: 40, deleted: [],
                                                  consumers: [:], removedLastMsgID: "ordér-40")),
        .state(group: 7, request: 8, CatchupState(index: 12, term: 3, voters: [1], learners: [], firstSeq: 4, lastSeq: 40, deleted: [40],
                                                  consumers: [:], dedupSkews: [.init(seq: 4, skew: 1)], removedLastMsgID: "")),
        .state(group: 7, request: 9, CatchupState(index: 12, term: 3, voters: [1], learners: [], firstSeq: 4, lastSeq: 40, deleted: [],
                                                  consumers: [:], config: Array(#"{"name":"S","max_msgs":4}"#.utf8))),
        .state(group: 7, request: 10, CatchupState(index: 12, term: 3, voters: [1], learners: [], firstSeq: 4, lastSeq: 40, deleted: [40],
                                                   consumers: [:], dedupSkews: [.init(seq: 4, skew: 1)], removedLastMsgID: "x", config: [])),
        .messages(group: 7, request: 4, from: 4, next: 9, [
            CatchupMessage(seq: 4, time: -1, subject: "a.b", headers: Array("NATS/1.0\r\n\r\n".utf8), payload: [1, 2]),
            CatchupMessage(seq: 8, time: 1 << 60, subject: "c", headers: nil, payload: []),
        ]),
        .refused(group: 7, request: 5, reason: "not the stream leader"),
    ]

    func test_everyFrame_roundTrips() throws {
        for f in frames { XCTAssertEqual(try CatchupWire.decode(CatchupWire.encode(f)), f) }
    }

    func test_truncatedOrPaddedFrames_throwNeverTrap() {
        for f in frames {
            let bytes = CatchupWire.encode(f)
            for n in 0..<bytes.count { XCTAssertThrowsError(try CatchupWire.decode(Array(bytes[0..<n])), "\(f) cut at \(n)") }
            XCTAssertThrowsError(try CatchupWire.decode(bytes + [0]))
        }
    }

    /// Frames keep the oldest version that holds what they carry, so a copy reaches an older
    /// node unless it carries what that node would lose (a config goes only to a node that
    /// announced it reads one).
    func test_stateFrames_useTheOldestVersionThatHoldsThem() {
        let versions = frames.compactMap { f -> UInt8? in
            guard case .state = f else { return nil }
            return CatchupWire.encode(f).first
        }
        XCTAssertEqual(versions, [CatchupWire.version, CatchupWire.versionWithDedupMarks, CatchupWire.versionWithRemovedLastID,
                                  CatchupWire.versionWithRemovedLastID, CatchupWire.versionWithConfig, CatchupWire.versionWithConfig])
        // A version-4 frame must hold its config.
        var bytes = CatchupWire.encode(frames[6])
        XCTAssertEqual(bytes.first, CatchupWire.versionWithConfig)
        bytes.removeLast(4 + 25) // the config's length and bytes
        bytes += [0xff, 0xff, 0xff, 0xff]
        XCTAssertThrowsError(try CatchupWire.decode(bytes), "a config frame without its config")
    }

    func test_hugeCounts_areRejectedBeforeAllocating() {
        // A state frame claiming 2^32-1 voters in a few bytes.
        var bytes: [UInt8] = [CatchupWire.version, 3] + [UInt8](repeating: 0, count: 32)
        bytes += [0xff, 0xff, 0xff, 0xfe]
        XCTAssertThrowsError(try CatchupWire.decode(bytes))
        XCTAssertThrowsError(try CatchupWire.decode([9, 1]), "unknown version")
        XCTAssertThrowsError(try CatchupWire.decode([CatchupWire.version, 77] + [UInt8](repeating: 0, count: 16)), "unknown tag")
    }
}

final class StreamInstallTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "install-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/consumers", withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func msg(_ seq: UInt64) -> CatchupMessage {
        CatchupMessage(seq: seq, time: Int64(seq) * 10, subject: "s.\(seq)", headers: seq == 6 ? Array("NATS/1.0\r\nX: y\r\n\r\n".utf8) : nil,
                       payload: Array("m\(seq)".utf8))
    }

    private let state = CatchupState(index: 30, term: 2, voters: [1, 2, 3], learners: [], firstSeq: 5, lastSeq: 11,
                                     deleted: [7, 8, 10, 11], consumers: ["C1": Array("{\"a\":1}".utf8), "../evil": [1]],
                                     dedupSkews: [.init(seq: 6, skew: -600)], removedLastMsgID: "id-11")

    /// Builds the copy of `state` (messages 5, 6, 9; 7, 8, 10, 11 deleted) and commits it.
    private func stageAndCommit() throws {
        let copy = try StagedStreamCopy(streamDirectory: dir, compress: true)
        for op: StreamCatchup.Op in [.append(msg(5)), .append(msg(6)), .append(msg(9)), .finish(lastSeq: 11)] { try copy.apply(op) }
        try copy.commit(state)
    }

    /// An old store with messages 1...3 and a consumer record that the install must replace.
    private func writeOldState() throws {
        let old = try StreamLogStore(directory: dir + "/msgs", config: StreamConfig(name: "S"))
        for i in 1...3 { _ = try old.append(subject: "old", headers: nil, payload: [UInt8(i)], time: 1) }
        try old.sync()
        old.close()
        try AtomicFile.write([1], to: dir + "/consumers/OLD.json")
        try AtomicFile.write(DedupSkews(marks: [.init(seq: 2, skew: 99)]).encode(), to: dir + "/" + DedupSkews.fileName)
    }

    /// A copy's blocks follow the stream's `compression` (`CatchupSession` passes the replica's):
    /// raw for `none`, LZ4 for `s2`.
    func test_copy_compressesOnlyWhenAsked() throws {
        let payload = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        var bytes: [Bool: Int] = [:]
        for compress in [false, true] {
            let copy = try StagedStreamCopy(streamDirectory: dir, compress: compress)
            for seq: UInt64 in 1...40 {
                try copy.apply(.append(CatchupMessage(seq: seq, time: 1, subject: "s", headers: nil, payload: payload)))
            }
            let msgs = copy.directory + "/msgs"
            bytes[compress] = try FileManager.default.contentsOfDirectory(atPath: msgs).filter { $0.hasSuffix(".seg") }
                .reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: msgs + "/" + $1)[.size] as? Int) ?? 0) }
            copy.abandon()
        }
        XCTAssertGreaterThan(bytes[false] ?? 0, 40 * 1000, "none: every payload byte")
        XCTAssertLessThan(bytes[true] ?? .max, 40 * 1000 / 4, "s2: a fraction")
    }

    func test_finishedCopy_replacesTheStore_withExactSequences() throws {
        try writeOldState()
        try stageAndCommit()
        let meta = try XCTUnwrap(try StreamInstall.rollForward(streamDirectory: dir, created: 0))
        XCTAssertEqual(meta.index, LogIndex(30))
        XCTAssertEqual(meta.term, Term(2))
        XCTAssertEqual(meta.conf.voters, [NodeID(1), NodeID(2), NodeID(3)])
        let store = try StreamLogStore(directory: dir + "/msgs", config: StreamConfig(name: "S"))
        defer { store.close() }
        let st = store.state
        XCTAssertEqual([st.messages, st.firstSeq, st.lastSeq], [3, 5, 11])
        for seq: UInt64 in [5, 6, 9] {
            let m = try XCTUnwrap(store.load(seq))
            XCTAssertEqual(m.subject, "s.\(seq)")
            XCTAssertEqual(m.payload, Array("m\(seq)".utf8))
            XCTAssertEqual(m.time, Int64(seq) * 10)
            XCTAssertEqual(m.headers, msg(seq).headers)
        }
        XCTAssertNil(store.load(7))
        XCTAssertEqual(store.deletedSequences(limit: 100), [7, 8, 10, 11])
        XCTAssertEqual(try store.append(subject: "new", headers: nil, payload: [], time: 99), 12)
        XCTAssertEqual(AtomicFile.read(dir + "/consumers/C1.json"), Array("{\"a\":1}".utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/consumers/OLD.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/evil.json"), "consumer names never leave the directory")
        // The leader's dedup offset marks replace the old ones; the id of its removed last
        // message (11) comes along.
        XCTAssertEqual(AtomicFile.read(dir + "/" + DedupSkews.fileName).flatMap(DedupSkews.decode),
                       DedupSkews(marks: [.init(seq: 6, skew: -600)], removedLast: .init(seq: 11, id: "id-11")))
    }

    /// A copy carries the config its leader's store applied at the copied index: it becomes
    /// the replica's `meta.json`, which the replica opens with (and replays the log after the
    /// index by). A copy without one (from an older leader) removes the stale file instead.
    func test_copysConfig_becomesTheAppliedConfig_orTheStaleOneIsRemoved() throws {
        func config(maxMsgs: Int64) -> StreamConfig {
            var c = StreamConfig(name: "S")
            c.maxMsgs = maxMsgs
            return c
        }
        try JetStreamService.writeMeta(config: config(maxMsgs: 100), created: 5, directory: dir)
        var withConfig = state
        withConfig.config = JSJSON.encode(config(maxMsgs: 7).json)
        let copy = try StagedStreamCopy(streamDirectory: dir, compress: true)
        for op: StreamCatchup.Op in [.append(msg(5)), .append(msg(6)), .append(msg(9)), .finish(lastSeq: 11)] { try copy.apply(op) }
        try copy.commit(withConfig)
        XCTAssertNotNil(try StreamInstall.rollForward(streamDirectory: dir, created: 5))
        XCTAssertEqual(StreamReplica.readAppliedConfig(directory: dir)?.maxMsgs, 7)

        try stageAndCommit() // no config in this copy
        XCTAssertNotNil(try StreamInstall.rollForward(streamDirectory: dir, created: 5))
        XCTAssertNil(StreamReplica.readAppliedConfig(directory: dir), "a copy without a config leaves no stale applied config")
    }

    /// A marker that no longer decodes (a damaged disk): before anything moved the copy is
    /// discarded and the old state stands (the leader's next offer copies again); after the
    /// store moved, opening stops with an error rather than pair the copy with the old Raft log.
    func test_unreadableMarker_discardsAnUnmovedCopy_stopsAMovedOne() throws {
        try writeOldState()
        try stageAndCommit()
        let marker = StreamInstall.directory(dir) + "/" + StreamInstall.markerName
        try AtomicFile.write(Array("garbage".utf8), to: marker)
        XCTAssertNil(try StreamInstall.rollForward(streamDirectory: dir, created: 0))
        XCTAssertFalse(FileManager.default.fileExists(atPath: StreamInstall.directory(dir)))
        let store = try StreamLogStore(directory: dir + "/msgs", config: StreamConfig(name: "S"))
        XCTAssertEqual(store.state.messages, 3, "the old store stands")
        store.close()

        try stageAndCommit()
        AtomicFile.removeTree(dir + "/msgs")
        try FileManager.default.moveItem(atPath: StreamInstall.directory(dir) + "/msgs", toPath: dir + "/msgs")
        try AtomicFile.write(Array("garbage".utf8), to: marker)
        XCTAssertThrowsError(try StreamInstall.rollForward(streamDirectory: dir, created: 0))
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker), "kept for a repair by hand")
    }

    func test_interruptedCopy_isDiscarded_andTheOldStateStands() throws {
        try writeOldState()
        let copy = try StagedStreamCopy(streamDirectory: dir, compress: true)
        try copy.apply(.append(msg(5)))
        copy.abandon() // the process died here: no marker
        XCTAssertNil(try StreamInstall.rollForward(streamDirectory: dir, created: 0))
        XCTAssertFalse(FileManager.default.fileExists(atPath: StreamInstall.directory(dir)))
        let store = try StreamLogStore(directory: dir + "/msgs", config: StreamConfig(name: "S"))
        defer { store.close() }
        XCTAssertEqual(store.state.messages, 3)
        XCTAssertNotNil(AtomicFile.read(dir + "/consumers/OLD.json"))
    }

    func test_crashMidSwitch_finishesOnTheNextOpen_andRaftLogContinuesAfterTheCopy() throws {
        try writeOldState()
        try stageAndCommit()
        // Crash after the store moved in but before consumers and the Raft log did.
        AtomicFile.removeTree(dir + "/msgs")
        try FileManager.default.moveItem(atPath: StreamInstall.directory(dir) + "/msgs", toPath: dir + "/msgs")
        let meta = try XCTUnwrap(try StreamInstall.rollForward(streamDirectory: dir, created: 0))
        XCTAssertNotNil(AtomicFile.read(dir + "/consumers/C1.json"))
        let raft = try StreamLogRaftStorage.open(directory: dir + "/raft", bootstrap: ConfState(voters: [NodeID(1), NodeID(2), NodeID(3)]))
        try StreamInstall.finishRaftLog(meta, storage: raft, streamDirectory: dir)
        XCTAssertEqual(raft.firstIndex, LogIndex(31))
        XCTAssertEqual(raft.snapshot().metadata.index, LogIndex(30))
        XCTAssertFalse(FileManager.default.fileExists(atPath: StreamInstall.directory(dir)))
        try raft.close()
        // Running it again (a crash before the install directory was removed) changes nothing.
        XCTAssertNil(try StreamInstall.rollForward(streamDirectory: dir, created: 0))
        let store = try StreamLogStore(directory: dir + "/msgs", config: StreamConfig(name: "S"))
        XCTAssertEqual(store.state.lastSeq, 11)
        store.close()
    }

    func test_finishRaftLog_keepsEntriesAfterAMatchingIndex_replacesADivergentLog() throws {
        let conf = ConfState(voters: [NodeID(1), NodeID(2)])
        for (term, keeps) in [(UInt64(1), true), (UInt64(2), false)] {
            let path = dir + "/raft\(term)"
            let raft = try StreamLogRaftStorage.open(directory: path, bootstrap: conf)
            try raft.append((1...10).map { Entry(term: Term(1), index: LogIndex($0), type: .normal, data: [UInt8($0)]) })
            try raft.sync()
            try FileManager.default.createDirectory(atPath: StreamInstall.directory(dir), withIntermediateDirectories: true)
            try StreamInstall.finishRaftLog(SnapshotMetadata(index: LogIndex(6), term: Term(term), conf: conf), storage: raft, streamDirectory: dir)
            XCTAssertEqual(raft.firstIndex, LogIndex(7))
            // Kept entries may have been acknowledged to the leader: dropping them could lose commits.
            XCTAssertEqual(raft.lastIndex, LogIndex(keeps ? 10 : 6), "term \(term)")
            try raft.close()
        }
    }
}
