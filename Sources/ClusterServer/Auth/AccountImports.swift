import Atomics
import Foundation
import NIOConcurrencyHelpers

/// Sits in the exporting account's namespace on an imported stream's subject and re-delivers
/// each local publish in the importing account (under its prefix or `to` subject).
///
/// Node-local (it does not announce interest): every node runs the same forwarder, and the
/// re-delivery reaches other nodes' subscribers through the importing account's own route
/// interest, so each message crosses the mesh once.
final class StreamImportSink: MessageSink, @unchecked Sendable {
    let importer: Account
    let spec: ImportConfig
    private let counter = ManagedAtomic<UInt64>(0)

    init(importer: Account, spec: ImportConfig) {
        self.importer = importer
        self.spec = spec
    }

    func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool {
        // Imports do not chain, and routed copies were already forwarded where they came from.
        if message.imported || message.fromRoute { return false }
        var m = message
        m.imported = true
        if let to = spec.to {
            m.subject = to
        } else if let prefix = spec.prefix {
            m.subject = prefix + "." + message.subject
        }
        return importer.deliver(m, seed: counter.wrappingIncrementThenLoad(ordering: .relaxed)) > 0
    }
}

/// Sits in the importing account's namespace on an imported service's subject: forwards each
/// request into the exporting account with its reply subject rewritten to a private
/// `_R_.<prefix>.<n>` subject, and maps responses on that subject back to the requester.
final class ServiceImportSink: MessageSink, @unchecked Sendable {
    /// How long a request waits for its response mapping (nats-server's response threshold).
    static let responseThresholdSeconds: Double = 120
    /// Outstanding requests kept at most by default; the oldest are dropped beyond it.
    static let defaultMaxPending = 100_000

    let importer: Account
    let exporter: Account
    let spec: ImportConfig
    let streamedResponses: Bool
    /// `_R_.<random>`: this node's reply namespace for this import.
    let replyPrefix: String
    let maxPending: Int
    private let now: () -> UInt64
    private let lock = NIOLock()
    /// Outstanding requests by token. Tokens are issued in increasing order with increasing
    /// deadlines, so expiry and eviction walk up from `lowestToken` (amortized O(1)).
    private var pending: [UInt64: (reply: String, deadline: UInt64)] = [:]
    private var nextToken: UInt64 = 0
    private var lowestToken: UInt64 = 1
    private let counter = ManagedAtomic<UInt64>(0)
    /// The response subscription, inserted in the exporting account (announced to routes, so
    /// responders on other nodes reach it).
    private(set) var responseSubscription: Subscription?

    init(importer: Account, exporter: Account, spec: ImportConfig, streamedResponses: Bool, replyPrefix: String,
         maxPending: Int = defaultMaxPending, now: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.maxPending = maxPending
        self.importer = importer
        self.exporter = exporter
        self.spec = spec
        self.streamedResponses = streamedResponses
        self.replyPrefix = replyPrefix
        self.now = now
    }

    /// Inserts the request forwarder (importer) and the response catcher (exporter).
    func install() -> [Subscription] {
        let request = Subscription(subject: spec.localSubject, queue: nil, sid: "import", sink: self, ownerID: 0,
                                   propagates: false)
        importer.sublist.insert(request)
        let responses = Subscription(subject: replyPrefix + ".>", queue: nil, sid: "import-reply",
                                     sink: ResponseSink(owner: self), ownerID: 0, propagates: true)
        exporter.sublist.insert(responses)
        responseSubscription = responses
        return [request, responses]
    }

    var pendingCount: Int { lock.withLock { pending.count } }

    func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool {
        if message.imported || message.fromRoute { return false }
        var m = message
        m.imported = true
        if spec.to != nil { m.subject = spec.subject }
        var token: UInt64?
        if let reply = message.reply {
            let t = register(reply)
            token = t
            m.reply = replyPrefix + "." + String(t, radix: 36)
        }
        let n = exporter.deliver(m, seed: counter.wrappingIncrementThenLoad(ordering: .relaxed))
        if n == 0, let token { _ = lock.withLock { pending.removeValue(forKey: token) } }
        return n > 0
    }

    private func register(_ reply: String) -> UInt64 {
        let t = now()
        return lock.withLock {
            nextToken += 1
            // Drop what expired, then the oldest while full: both are at the low end.
            while lowestToken < nextToken {
                if let e = pending[lowestToken], e.deadline > t, pending.count < maxPending { break }
                pending[lowestToken] = nil
                lowestToken += 1
            }
            pending[nextToken] = (reply, t &+ UInt64(Self.responseThresholdSeconds * 1e9))
            return nextToken
        }
    }

    /// A response on `_R_.<prefix>.<token>`: back to the requester's reply subject.
    fileprivate func respond(_ message: RoutedMessage) -> Bool {
        let subject = message.subject
        guard subject.hasPrefix(replyPrefix + ".") else { return false }
        guard let token = UInt64(subject.dropFirst(replyPrefix.count + 1), radix: 36) else { return false }
        let t = now()
        let reply: String? = lock.withLock {
            guard let entry = pending[token] else { return nil }
            if entry.deadline <= t || !streamedResponses { pending[token] = nil }
            return entry.deadline > t ? entry.reply : nil
        }
        guard let reply else { return false }
        var m = message
        m.subject = reply
        m.reply = nil
        m.imported = true
        m.fromRoute = false
        return importer.deliver(m, seed: counter.wrappingIncrementThenLoad(ordering: .relaxed)) > 0
    }
}

/// The exporter-side subscription of a service import's reply namespace.
private final class ResponseSink: MessageSink, @unchecked Sendable {
    unowned let owner: ServiceImportSink
    init(owner: ServiceImportSink) { self.owner = owner }
    func deliver(_ message: RoutedMessage, to subscription: Subscription) -> Bool { owner.respond(message) }
}

enum AccountImports {
    /// Installs every configured import; `randomToken` names this node's reply namespaces.
    static func install(accounts: [String: Account], randomToken: () -> String) -> [ServiceImportSink] {
        var services: [ServiceImportSink] = []
        for importer in accounts.values.sorted(by: { $0.name < $1.name }) {
            for spec in importer.config.imports {
                guard let exporter = accounts[spec.account] else { continue }
                switch spec.kind {
                case .stream:
                    let sink = StreamImportSink(importer: importer, spec: spec)
                    exporter.sublist.insert(Subscription(subject: spec.subject, queue: nil, sid: "import", sink: sink,
                                                         ownerID: 0, propagates: false))
                case .service:
                    let export = exporter.config.exports.first {
                        $0.kind == .service && Subject.matches(pattern: $0.subject, subject: spec.subject)
                    }
                    let sink = ServiceImportSink(importer: importer, exporter: exporter, spec: spec,
                                                 streamedResponses: export?.streamedResponses ?? false,
                                                 replyPrefix: "_R_." + randomToken())
                    _ = sink.install()
                    services.append(sink)
                }
            }
        }
        return services
    }
}
