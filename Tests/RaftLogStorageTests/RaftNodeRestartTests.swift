import Raft
import RaftLogStorage
import StreamLog
import XCTest

/// A `RaftNode` driven on the durable storage the way the server's driver does it, then a power
/// loss and a restart with the state machine's own applied index (a stream's StreamLog knows the
/// last Raft index it applied). The stored commit index trails (it is persisted lazily): the
/// restart must take the applied index as committed, not crash ("applied beyond commit").
final class RaftNodeRestartTests: XCTestCase {
    func drive(_ node: RaftNode, _ storage: StreamLogRaftStorage, applied: inout [Entry]) throws {
        var rounds = 0
        while node.hasReady && rounds < 100 {
            rounds += 1
            let rd = node.ready()
            if let s = rd.snapshot { try storage.applySnapshot(s) }
            try storage.append(rd.entries)
            if let hs = rd.hardState { storage.setHardState(hs) }
            try storage.sync()
            applied.append(contentsOf: rd.committedEntries.filter { $0.type == .normal })
            node.advance(rd)
        }
    }

    func test_restartAfterPowerLoss_withAppliedAboveStoredCommit_continues() throws {
        let fs = FaultyFileSystem()
        let conf = ConfState(voters: [NodeID(1)])
        var storage = try openStorage(fs, conf: conf)
        var node = RaftNode(id: NodeID(1), storage: storage, config: RaftConfig(), random: SplitMix64(seed: 1))
        var applied: [Entry] = []
        node.startElection()
        try drive(node, storage, applied: &applied)
        XCTAssertEqual(node.role, .leader)
        for i in 0..<20 {
            _ = try node.propose([UInt8(i)])
            try drive(node, storage, applied: &applied)
        }
        XCTAssertEqual(applied.count, 20)
        let appliedIndex = applied.last!.index
        var rng = SplitMix64(seed: 9)
        fs.powerLoss(using: &rng)
        storage = try openStorage(fs, conf: conf)
        XCTAssertLessThan(storage.initialState().hardState.commit, appliedIndex, "the commit index is persisted lazily")
        XCTAssertGreaterThanOrEqual(storage.lastIndex, appliedIndex, "applied entries were synced")
        node = RaftNode(id: NodeID(1), storage: storage, config: RaftConfig(), random: SplitMix64(seed: 2), applied: appliedIndex)
        XCTAssertEqual(node.commitIndex, appliedIndex)
        applied = []
        node.startElection()
        try drive(node, storage, applied: &applied)
        _ = try node.propose([99])
        try drive(node, storage, applied: &applied)
        XCTAssertEqual(applied.map(\.data), [[99]], "nothing applied twice, the new entry applied once")
        try storage.close()
    }
}
