import Dispatch
import Foundation
import NIOCore

/// Every account's JetStream on this node: one `JetStreamService` per account that has
/// JetStream (its own streams, store directory, limits and `$JS.API` in its own subject
/// namespace), a "JetStream not enabled for account" responder in every other account, and
/// the shared `/jsz` and `/metrics` views. Which account gets what is `JetStreamAccountPlan`.
public final class JetStreamAccounts: @unchecked Sendable {
    let server: NATSServer
    /// The running JetStreams, in config order.
    public private(set) var services: [JetStreamService] = []
    private var refusals: [(Account, Subscription)] = []
    /// Refusals are answered here, not on the publisher's thread (as JetStream hops to its queue).
    private let queue = DispatchQueue(label: "clusterd.jetstream.refusals")

    public init(server: NATSServer) { self.server = server }

    /// Starts the JetStream of each account that has one and subscribes the refusals;
    /// registers `/jsz` for all of them.
    public func start() throws {
        let plan = JetStreamAccountPlan(accounts: server.options.accounts)
        for served in plan.served {
            guard let account = server.account(named: served.account) else { continue }
            let js = JetStreamService(server: server, account: account, limits: served.limits)
            try js.start(registerMonitoring: false)
            services.append(js)
        }
        for name in plan.refused {
            guard let account = server.account(named: name) else { continue }
            let sub = server.subscribeInternal("$JS.API.>", in: account) { [weak self] msg in
                guard let self, let reply = msg.reply else { return }
                let subject = msg.subject
                self.queue.async { self.refuse(subject: subject, reply: reply, in: account) }
            }
            refusals.append((account, sub))
        }
        startServerRemoval()
        server.monitoringHandlers["/jsz"] = { [weak self] query in self?.jsz(query) ?? [:] }
        server.shutdownHooks.append { [weak self] in self?.stopRefusing() }
    }

    private func stopRefusing() {
        for (account, sub) in refusals { server.unsubscribeInternal(sub, in: account) }
        refusals.removeAll()
    }

    /// nats-server's answer in an account without JetStream (see `Refusal`).
    private func refuse(subject: String, reply: String, in account: Account) {
        switch Self.refusalReply(subject: subject, .notEnabledForAccount) {
        case nil:
            return
        case .noResponders?:
            server.sendStatus("503", to: reply, fields: [("Nats-Subject", subject)], in: account)
        case .body(let body)?:
            server.publishInternal(subject: reply, payload: ByteBuffer(bytes: body), in: account)
        }
    }

    /// What answers a `$JS.API` request refused with `error` (see `Refusal`); nil: nothing.
    enum RefusalReply { case noResponders, body([UInt8]) }

    static func refusalReply(subject: String, _ error: JSAPIError) -> RefusalReply? {
        let op = subject.split(separator: ".", omittingEmptySubsequences: false).dropFirst(2).map(String.init)
        switch refusal(for: op) {
        case .none:
            return nil
        case .noResponders:
            return .noResponders
        case .error:
            let type = JetStreamService.responseType(op)
            var body = JetStreamService.errorResponse(type: type, error)
            // nats-server's paged refusals carry an empty item list too.
            if type.hasSuffix("_names_response") || type.hasSuffix("_list_response") {
                body[op.first == "CONSUMER" ? "consumers" : "streams"] = [Any]()
            }
            return .body(JSJSON.encode(body))
        }
    }

    /// How nats-server treats a `$JS.API` request in an account without JetStream: its API
    /// requests get the 10039 error, direct gets and pull requests find no responder, and
    /// anything else is not an API subject at all (no answer).
    enum Refusal: Equatable { case error, noResponders, none }

    static func refusal(for op: [String]) -> Refusal {
        let streamOps: Set = ["CREATE", "UPDATE", "NAMES", "LIST", "INFO", "DELETE", "PURGE", "SNAPSHOT", "RESTORE",
                              "MSG", "LEADER", "PEER"]
        let consumerOps: Set = ["CREATE", "DURABLE", "NAMES", "LIST", "INFO", "DELETE", "PAUSE", "LEADER", "UNPIN"]
        switch (op.first ?? "", op.count > 1 ? op[1] : "") {
        case ("INFO", _) where op.count == 1: return .error
        case ("DIRECT", "GET"), ("CONSUMER", "MSG"): return .noResponders
        case ("STREAM", let v) where streamOps.contains(v): return .error
        case ("CONSUMER", let v) where consumerOps.contains(v): return .error
        default: return .none
        }
    }

    /// `/jsz` over every account's JetStream.
    func jsz(_ query: [String: String]) -> [String: Any] {
        let parts = services.map { $0.jsz(query) }
        let o = server.options
        let base: [String: Any] = [
            "server_id": server.serverID, "now": JSTime.format(JSTime.nowNanos()),
            "config": o.jszConfig(storeDirectory: (o.storeDirectory ?? "") + "/jetstream"),
        ]
        var out = Self.mergeJsz(parts, base: base)
        // clusterd: each account's own meta group (`meta_cluster` above is the first one's).
        var metas: [String: Any] = [:]
        for (js, part) in zip(services, parts) { if let mc = part["meta_cluster"] { metas[js.account.name] = mc } }
        if !metas.isEmpty { out["meta_clusters"] = metas }
        return out
    }

    /// Sums the per-account `/jsz` objects: counters add up, account details concatenate;
    /// server-wide fields come from the first part (or `base` when there is none).
    static func mergeJsz(_ parts: [[String: Any]], base: [String: Any]) -> [String: Any] {
        guard var out = parts.first else {
            var o = base
            for k in summed { o[k] = 0 }
            o["api"] = ["level": JetStreamService.apiLevel, "total": 0, "errors": 0]
            return o
        }
        for part in parts.dropFirst() {
            for k in summed { out[k] = number(out[k]) + number(part[k]) }
            let a = out["api"] as? [String: Any] ?? [:], b = part["api"] as? [String: Any] ?? [:]
            out["api"] = ["level": JetStreamService.apiLevel,
                          "total": number(a["total"]) + number(b["total"]), "errors": number(a["errors"]) + number(b["errors"])]
            if let more = part["account_details"] as? [[String: Any]] {
                out["account_details"] = (out["account_details"] as? [[String: Any]] ?? []) + more
            }
        }
        return out
    }

    private static let summed = ["memory", "storage", "reserved_memory", "reserved_storage", "accounts",
                                 "streams", "consumers", "messages", "bytes"]

    private static func number(_ v: Any?) -> Int64 {
        switch v {
        case let i as Int: return Int64(i)
        case let i as Int64: return i
        case let u as UInt64: return Int64(clamping: u)
        default: return 0
        }
    }

    /// `/metrics` gauges of every account's streams and consumers (labelled by account
    /// except `$G`).
    public func prometheusText() -> String {
        JetStreamService.prometheusText(services.flatMap { $0.metricRows() })
    }
}
