import Dispatch
import Foundation
import NIOCore
import Raft

/// `$JS.API.SERVER.REMOVE` as one cluster-wide operator action, as in nats-server (where it is
/// answered in the system account only and removes the server from the one meta group, so from
/// every stream). Here each account with JetStream runs its own meta group, so the removal is
/// decided once, by the meta leader of the first account with JetStream (the *primary*, the
/// same on every node), and carried to the others through that decision's own meta entry:
///
/// 1. Every node hears the request in the operator account (the `system_account`, or `$G` when
///    no accounts are configured); only the primary's meta leader goes on.
/// 2. It asks each account's JetStream on this node which of its meta members is that server
///    (its current store; or the given `peer_id`) and proposes one `server_remove` entry in the
///    primary's meta group with its own id and `accounts: {name: id}` for the others.
/// 3. When the entry applies (on every node, again on every restart), each other account
///    *adopts* its id; that account's meta leader proposes its own `server_remove`, so the
///    removal is in every account's replicated state and its replicas move, even when that
///    account had no leader at the time of the request.
///
/// The answer comes when the primary's entry commits; the other accounts follow within their
/// next membership round (1 s) once they have a leader.
extension JetStreamAccounts {
    /// The account whose `$JS.API.SERVER.REMOVE` is the operator's: `$G` without accounts,
    /// else the configured `system_account` (nil: nobody may remove servers).
    var operatorAccount: Account? {
        if server.options.accounts.isEmpty { return server.globalAccount }
        return server.options.systemAccount.flatMap { server.account(named: $0) }
    }

    /// Subscribes the operator's `SERVER.REMOVE` (cluster-wide interest: every node hears it)
    /// and links each account's meta group to the others for adopted removals.
    func startServerRemoval() {
        guard let primary = services.first(where: { $0.cluster != nil }), let account = operatorAccount else { return }
        for js in services {
            js.queue.sync {
                js.isOperatorAccount = js.account === account
                if js === primary { js.cluster?.onServerRemoved = { [weak self] others in self?.adopt(others) } }
            }
        }
        let sub = server.subscribeInternal("$JS.API.SERVER.REMOVE", propagates: true, in: account) { [weak self] msg in
            guard let self, let reply = msg.reply else { return }
            let body = Array(msg.payload.readableBytesView)
            self.serverRemove(body: body, reply: reply, fromRoute: msg.fromRoute, primary: primary, in: account)
        }
        server.shutdownHooks.append { [weak self] in self?.server.unsubscribeInternal(sub, in: account) }
    }

    /// Hands each adopted id to its account's meta group (on that account's queue).
    private func adopt(_ others: [String: NodeID]) {
        for (name, id) in others {
            guard let js = services.first(where: { $0.account.name == name }), let c = js.cluster else { continue }
            js.queue.async { c.adoptRemoval(id) }
        }
    }

    private func serverRemove(body: [UInt8], reply: String, fromRoute: Bool, primary: JetStreamService, in account: Account) {
        guard let pc = primary.cluster else { return }
        let type = JetStreamService.responseType(["SERVER", "REMOVE"])
        let answer: ([String: Any]) -> Void = { [server] body in
            var b = body
            b["type"] = type
            server.publishInternal(subject: reply, payload: ByteBuffer(bytes: JSJSON.encode(b)), in: account)
        }
        let fail: (JSAPIError) -> Void = { answer(JetStreamService.errorResponse(type: type, $0)) }
        primary.queue.async { [self] in
            guard pc.isMetaLeader else {
                if !fromRoute && !pc.metaAvailable { fail(.unavailable(.noMetaLeader)) }
                return
            }
            let peer: String, peerID: String
            do {
                let o = try JSONObject.parse(body, typeName: "JSApiMetaServerRemoveRequest")
                peer = try o.string("peer") ?? ""
                peerID = try o.string("peer_id") ?? ""
            } catch let e as JSAPIError {
                return fail(e)
            } catch {
                return fail(.badRequest())
            }
            guard !(peer.isEmpty && peerID.isEmpty) else { return fail(.badRequest()) }
            // Each account's member for that server, read on that account's queue.
            let found = FoundIDs()
            let group = DispatchGroup()
            for js in services {
                guard let c = js.cluster, js !== primary else { continue }
                group.enter()
                js.queue.async {
                    if let id = c.metaMember(peer: peer, peerID: peerID) { found.set(js.account.name, id) }
                    group.leave()
                }
            }
            let own = pc.metaMember(peer: peer, peerID: peerID)
            group.notify(queue: primary.queue) {
                let others = found.all
                guard own != nil || !others.isEmpty else {
                    return fail(JSAPIError(400, 10044, "server is not a member of the cluster"))
                }
                guard pc.isMetaLeader else { return }
                do {
                    try pc.proposeServerRemoval(own, others: others, done: answer)
                } catch let e as JSAPIError {
                    fail(e)
                } catch {
                    fail(.unavailable(.metaLeaderChanged))
                }
            }
        }
    }
}

/// Ids collected from several queues at once.
private final class FoundIDs: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String: NodeID] = [:]
    func set(_ account: String, _ id: NodeID) { lock.lock(); ids[account] = id; lock.unlock() }
    var all: [String: NodeID] { lock.lock(); defer { lock.unlock() }; return ids }
}
