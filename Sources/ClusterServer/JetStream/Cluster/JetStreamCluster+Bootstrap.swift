import Foundation
import Raft

/// The bootstrap configuration a store promised (see `MetaBootstrapPlanner`): written and
/// fsync'd before any hello announces it, so a restart can never promise a second one.
enum BootstrapPromise {
    static let fileName = "meta_promise.json"

    /// The stored promise (nil: none). A damaged file stops the server: guessing could promise
    /// twice, which is what would let two meta groups bootstrap.
    static func load(root: String) throws -> [NodeID]? {
        let path = root + "/" + fileName
        guard let bytes = AtomicFile.read(path) else { return nil }
        guard let o = try? JSONObject.parse(bytes, typeName: "MetaPromise"), let texts = try? o.stringArray("voters"),
              !texts.isEmpty else {
            throw StoreError.io("\(path) is damaged; move it away only together with the whole store")
        }
        let ids = texts.compactMap(StreamAssignment.parseID)
        guard ids.count == texts.count else { throw StoreError.io("\(path) is damaged; move it away only together with the whole store") }
        return ids
    }

    static func save(_ voters: [NodeID], root: String) throws {
        try AtomicFile.write(JSJSON.encode(["voters": voters.map { StreamAssignment.hex($0) },
                                            "created": JSTime.format(JSTime.nowNanos())]), to: root + "/" + fileName)
    }
}

extension JetStreamCluster {
    /// How long a majority of the seeds waits for the others before it bootstraps the meta
    /// group without them (100 ms ticks). Nodes that start this much apart still form the group
    /// together; a later one joins as a new member (learner, then voter).
    static let bootstrapGraceTicks = 100

    /// First start of this store: adopt, join, promise or bootstrap (`MetaBootstrapPlanner`).
    func decideMetaStart(_ seeds: RouteManager.SeedSnapshot) {
        var peers: [String: MetaBootstrapView.Peer] = [:]
        for (name, id) in seeds.peers {
            peers[name] = .init(hello: membership.hellos[name], isSeed: seeds.liveSeedIDs.contains(id))
        }
        let electorate = seeds.total + (seeds.selfIsSeed ? 0 : 1)
        let seedsUp = 1 + seeds.liveSeedIDs.count // electorate members up, this node included
        if seeds.allResolved || seedsUp * 2 <= electorate {
            membership.majoritySinceTick = nil
        } else if membership.majoritySinceTick == nil {
            membership.majoritySinceTick = ticks
        }
        let view = MetaBootstrapView(
            me: host.me, electorate: electorate, selfIsSeed: seeds.selfIsSeed, allSeedsUp: seeds.allResolved,
            peers: peers, promise: membership.promise, majorityUpTicks: membership.majoritySinceTick.map { ticks - $0 },
            graceTicks: Self.bootstrapGraceTicks)
        let bootstrap: [NodeID]
        var fresh = false
        switch MetaBootstrapPlanner.next(view) {
        case .wait:
            return
        case let .promise(voters):
            do {
                try BootstrapPromise.save(voters, root: root)
            } catch {
                // Retried every tick: said once, not ten times a second.
                if !membership.promiseSaveFailed {
                    js.server.logger.error("JetStream cluster: cannot store the meta bootstrap promise (retrying): \(error)")
                }
                membership.promiseSaveFailed = true
                return
            }
            membership.promise = voters
            js.server.logger.info("JetStream cluster: promised to bootstrap the meta group with \(voters.count) voter(s) (\(seedsUp) of \(electorate) electorate member(s) up)")
            sendHellos()
            // A majority may hold it already (the others promised first).
            decideMetaStart(seeds)
            return
        case let .adopt(boot):
            // A peer bootstrapped first with this store among its voters: start from the same
            // configuration. This store never voted (it has no meta log), so it is exactly a
            // voter that has been offline since the bootstrap.
            bootstrap = boot
            js.server.logger.info("JetStream cluster: joining the meta group bootstrapped with \(boot.count) voter(s)")
        case .join:
            bootstrap = []
            js.server.logger.info("JetStream cluster: a meta group exists; waiting to be added to it as a new member")
        case let .bootstrap(voters):
            bootstrap = voters
            fresh = true
            js.server.logger.info("JetStream cluster: a majority of the seeds promised the same bootstrap; starting the meta group with \(voters.count) voter(s)")
        }
        do {
            guard let storage = try RaftStorageFactory.open(directory: metaDirectory, ids: bootstrap) else { return }
            // Of a new bootstrap, the smallest voter campaigns at once (its votes wait at the
            // others until they start the group too); if it is down, a timeout elects as before.
            startMeta(storage, campaign: fresh && bootstrap.min() == host.me)
        } catch {
            js.server.logger.error("JetStream cluster: cannot open the meta log: \(error)")
        }
    }
}
