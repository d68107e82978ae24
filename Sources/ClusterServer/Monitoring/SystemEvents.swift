import Foundation
import NIOCore

/// System events in the `system_account`, as nats-server 2.15.1 publishes them (probed side by
/// side): `$SYS.ACCOUNT.<account>.CONNECT` when a client's CONNECT is accepted and
/// `$SYS.ACCOUNT.<account>.DISCONNECT` when it goes, with the server, the client and, on
/// disconnect, what it sent and received and why it closed. Built only when somebody listens
/// (subscribers on other nodes count: interest crosses the routes).
extension NATSServer {
    /// nats-server's `ServerInfo` block of every system message: `flags` bit 0 is "JetStream
    /// enabled"; `seq` counts this server's system messages.
    func systemServerInfo() -> [String: Any] {
        var info: [String: Any] = [
            "name": serverName, "host": options.host, "id": serverID, "ver": ServerVersion.nats,
            "jetstream": options.jetStream, "flags": options.jetStream ? 1 : 0,
            "seq": systemSequence.wrappingIncrementThenLoad(ordering: .relaxed),
            "time": MonitoringEndpoints.rfc3339(Date()),
        ]
        if !systemClusterName.isEmpty { info["cluster"] = systemClusterName }
        return info
    }

    /// The cluster this server is in ("" when it is in none).
    var systemClusterName: String { routeManager?.clusterName ?? options.clusterName ?? "" }

    /// Publishes a client's connect or disconnect event.
    func publishClientEvent(_ conn: ClientConnection, connected: Bool) {
        guard let system = systemAccount else { return }
        let subject = "$SYS.ACCOUNT.\(conn.account.name).\(connected ? "CONNECT" : "DISCONNECT")"
        guard hasInterest(subject, in: system) else { return }
        let snap = conn.snapshot(includeSubscriptions: false)
        var client: [String: Any] = [
            "start": MonitoringEndpoints.rfc3339(snap.start), "host": snap.ip, "id": snap.cid, "acc": snap.account,
            "kind": "Client", "client_type": "nats",
        ]
        for (key, value) in [("user", snap.user ?? ""), ("name", snap.name), ("lang", snap.lang), ("ver", snap.version)]
        where !value.isEmpty {
            client[key] = value
        }
        var event: [String: Any] = [
            "type": "io.nats.server.advisory.v1.client_\(connected ? "connect" : "disconnect")",
            "id": JetStreamService.generateName(), "timestamp": MonitoringEndpoints.rfc3339(Date()),
            "server": systemServerInfo(),
        ]
        if !connected {
            client["stop"] = event["timestamp"]
            // The client's side: what it sent is what this server received from it.
            event["sent"] = ["msgs": snap.inMsgs, "bytes": snap.inBytes]
            event["received"] = ["msgs": snap.outMsgs, "bytes": snap.outBytes]
            event["reason"] = conn.closedReason
        }
        event["client"] = client
        publishSystemMessage(event, to: subject, in: system)
    }

    /// Sends a system event or an answer to a system request, as JSON.
    func publishSystemMessage(_ body: [String: Any], to subject: String, in account: Account) {
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        publishInternal(subject: subject, payload: ByteBuffer(bytes: data), in: account)
    }
}

/// Why a client connection closed, in nats-server's words (its `ClosedState` texts), for the
/// disconnect event.
enum CloseReason {
    static let clientClosed = "Client Closed"
    static let serverShutdown = "Server Shutdown"
    static let slowConsumer = "Slow Consumer (Pending Bytes)"
    static let slowConsumerWriteDeadline = "Slow Consumer (Write Deadline)"
    static let protocolViolation = "Protocol Violation"

    /// The reason behind an `-ERR` the server closed a connection with.
    static func forError(_ text: String) -> String {
        switch text {
        case "Maximum Payload Violation": return "Maximum Message Payload Exceeded"
        case "Stale Connection": return "Stale Connection"
        case "Authentication Timeout": return "Authentication Timeout"
        case "Authorization Violation": return "Authentication Failure"
        case "maximum account active connections exceeded": return "Maximum Account Connections Exceeded"
        default: return protocolViolation
        }
    }
}
