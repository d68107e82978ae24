import Foundation
import NIOCore

/// Who answers a `$JS.API` request in a cluster (every node sees every request once).
extension JetStreamService {
    /// Returns true when this node should answer `op` with the single-node handlers (it leads
    /// the stream, or the request is node-local); handles meta requests itself.
    func clusterDispatch(_ cluster: JetStreamCluster, op: [String], fromRoute: Bool, reply: String, type: String, body: [UInt8]) -> Bool {
        let kind = op.first ?? ""
        let verb = op.count > 1 ? op[1] : ""
        if cluster.membership.retiringSinceTick != nil {
            // Removed from the meta group: no meta answers any more; only a stream still led
            // here while its replicas move off keeps being served.
            let metaOp = kind == "STREAM" && ["CREATE", "UPDATE", "DELETE", "PEER", "LEADER"].contains(verb)
            if !metaOp, let stream = Self.apiStream(op), cluster.leads(stream) { return true }
            if !fromRoute && !(kind == "SERVER" && verb == "REMOVE") && !(kind == "CONSUMER" && verb == "MSG") {
                fail(reply, type, .unavailable(.removedFromCluster))
            }
            return false
        }
        switch (kind, verb) {
        case ("INFO", _), ("STREAM", "NAMES"), ("STREAM", "LIST"):
            return !fromRoute
        case ("STREAM", "CREATE"), ("STREAM", "UPDATE"), ("STREAM", "DELETE"):
            if cluster.isMetaLeader {
                do { try cluster.handleMetaRequest(op, body: body, reply: reply, type: type) } catch let e as JSAPIError {
                    fail(reply, type, e)
                } catch {
                    fail(reply, type, .badRequest())
                }
            } else if !fromRoute && !cluster.metaAvailable {
                fail(reply, type, .unavailable(.noMetaLeader))
            }
            return false
        case ("STREAM", "RESTORE"):
            // The client's node stages the archive (`StreamRestoreSession`), then creates the
            // stream through the meta group.
            if !fromRoute && !cluster.metaAvailable { fail(reply, type, .unavailable(.noMetaLeader)) }
            return !fromRoute && cluster.metaAvailable
        case ("SERVER", "REMOVE") where op.count == 2:
            // A cluster-wide operator action, answered by `JetStreamAccounts` in the operator
            // account (the system account, or `$G` without accounts). Elsewhere nobody answers
            // it, as in nats-server: the client's node sends the no-responders status.
            if !isOperatorAccount && !fromRoute {
                bus.sendStatus("503", to: reply, fields: [("Nats-Subject", "$JS.API.SERVER.REMOVE")])
            }
            return false
        case ("STREAM", "PEER") where op.count == 4 && op[2] == "REMOVE":
            // Membership changes: the meta leader decides and answers once its entry commits.
            if cluster.isMetaLeader {
                do {
                    try cluster.streamPeerRemove(op[3], body: body, reply: reply, type: type)
                } catch let e as JSAPIError { fail(reply, type, e) } catch { fail(reply, type, .badRequest()) }
            } else if !fromRoute && !cluster.metaAvailable {
                fail(reply, type, .unavailable(.noMetaLeader))
            }
            return false
        case ("META", "LEADER") where op.count == 3 && op[2] == "STEPDOWN":
            if cluster.isMetaLeader {
                do { try cluster.metaStepDown(body: body, reply: reply, type: type) } catch let e as JSAPIError { fail(reply, type, e) } catch {}
            } else if !fromRoute && !cluster.metaAvailable {
                fail(reply, type, .unavailable(.noMetaLeader))
            }
            return false
        default:
            break
        }
        // Stream-scoped requests: the stream's leader answers.
        guard let stream = Self.apiStream(op) else { return !fromRoute }
        if cluster.leads(stream) {
            if verb == "LEADER" && (kind == "STREAM" || kind == "CONSUMER") {
                // A consumer runs on its stream's leader: moving the consumer's leadership
                // moves the stream's (with the same placement rules).
                do {
                    if kind == "CONSUMER" {
                        guard op.count == 5, op[2] == "STEPDOWN" else { throw JSAPIError.badRequest() }
                        guard streams[stream]?.consumers[op[4]] != nil else { throw JSAPIError.consumerNotFound }
                    }
                    try cluster.replicas[stream]?.stepDown(body: body)
                    self.reply(reply, ["type": type, "success": true])
                } catch let e as JSAPIError { fail(reply, type, e) } catch { fail(reply, type, .badRequest()) }
                return false
            }
            return true
        }
        if cluster.assignments[stream] == nil {
            // "Not found" is the meta leader's word: it announces its leadership only after
            // applying its whole log. A node whose meta state is still catching up (restarted
            // empty, or new) does not know every stream yet; it stays silent and lets the meta
            // leader answer, or says "temporarily unavailable" when there is no meta leader.
            if cluster.isMetaLeader {
                if kind == "CONSUMER" && verb == "MSG" {
                    bus.sendStatus("503", to: reply, fields: [("Nats-Subject", "$JS.API." + op.joined(separator: "."))])
                } else {
                    fail(reply, type, .streamNotFound)
                }
            } else if !fromRoute && !cluster.metaAvailable && !(kind == "CONSUMER" && verb == "MSG") {
                fail(reply, type, .unavailable(.noMetaLeader))
            }
            return false
        }
        if !fromRoute {
            if !(kind == "CONSUMER" && verb == "MSG"), let r = cluster.replicas[stream],
                      let node = cluster.host.node(r.group), node.leader == nil, node.term.rawValue > 1 {
                // A replica that lost its leader (not one still hearing of the first leader).
                fail(reply, type, .unavailable(.streamLeader(stream)))
            }
        }
        return false
    }

    /// The stream a stream-scoped request names: STREAM.<verb>.<stream>...,
    /// STREAM.MSG.<GET|DELETE>.<stream>, STREAM.LEADER.STEPDOWN.<stream>, CONSUMER.<verb>.<stream>...,
    /// CONSUMER.MSG.NEXT.<stream>.<c>, CONSUMER.DURABLE.CREATE.<stream>.<c>; nil for others.
    static func apiStream(_ op: [String]) -> String? {
        switch (op.first ?? "", op.count > 1 ? op[1] : "") {
        case ("STREAM", "MSG"), ("STREAM", "LEADER"), ("CONSUMER", "MSG"), ("CONSUMER", "DURABLE"), ("CONSUMER", "LEADER"):
            return op.count > 3 ? op[3] : nil
        case ("STREAM", "NAMES"), ("STREAM", "LIST"):
            return nil
        case ("STREAM", _), ("CONSUMER", _):
            return op.count > 2 ? op[2] : nil
        default:
            return nil
        }
    }

    /// The replica a `STREAM.MSG.GET` must make a ReadIndex round on before answering: the
    /// stream reads linearizably, or the request asked for it (`StreamReplica+Reads.swift`).
    func linearizableGet(_ cluster: JetStreamCluster, op: [String], headers: [UInt8]?) -> StreamReplica? {
        guard op.count == 4, op[0] == "STREAM", op[1] == "MSG", op[2] == "GET", let r = cluster.replicas[op[3]] else { return nil }
        return r.linearizableReads || StreamReplica.requestsLinearizable(headers) ? r : nil
    }

    /// A publish on a clustered stream's subjects (this node leads it): replicate first.
    func clusterIngest(_ cluster: JetStreamCluster, stream name: String, subject: String, reply: String?,
                       headers: [UInt8]?, payload: [UInt8]) {
        guard let r = cluster.replicas[name] else { return }
        if subject.hasPrefix("$JS.API.") && !r.stream.config.noAck { return }
        r.propose(subject: subject, reply: reply, headers: headers, payload: payload)
    }

    /// Whether `s`'s consumers may deliver now. In a cluster only while this node surely leads
    /// the stream (its lease, in wall-clock time): a leader that was frozen or cut off would
    /// otherwise serve from its stale consumer state — messages a newer leader delivered and
    /// had acked since — until it hears of the newer term. Otherwise asks for a heartbeat round;
    /// the housekeeping tick pumps again.
    func mayDeliver(_ s: Stream) -> Bool {
        guard let cluster, let r = cluster.replicas[s.name] else { return true }
        if cluster.host.holdsLease(r.group) { return true }
        cluster.host.renewLease(r.group)
        return false
    }

    /// The stamp `s`'s consumer deliveries carry (finding 15's delayed copy): the stream's
    /// group, unique per account and stream incarnation (group ids are never handed out
    /// twice), and this leader's term. nil for a stream that is not replicated by Raft.
    func deliveryStamp(_ s: Stream) -> DeliveryStamp? {
        guard let cluster, let r = cluster.replicas[s.name], let node = cluster.host.node(r.group) else { return nil }
        return DeliveryStamp(key: r.deliveryKey, term: node.term.rawValue)
    }
}

struct DeferredReply: Error {}
