import Dispatch
import Foundation
import Logging

/// Creates or updates the streams of the config's `streams` list once the server serves.
///
/// It talks to JetStream only through `$JS.API.STREAM.INFO/CREATE/UPDATE` requests on the
/// server's internal request path, as any client would: the API is the stable contract
/// whatever serves it (one node's JetStream today, the clustered meta group later), and a
/// request answered by another node comes back over the routes. Streams are handled one at a
/// time in declaration order (an update that moves subjects from one stream to another
/// depends on order). Transient answers are retried with backoff until they succeed; a
/// definitive refusal is logged as an error and the next stream is handled.
///
/// The declared config is the whole config, as with `nats stream add --config`: fields left
/// out get the server's defaults, and a stream edited by hand is set back at the next boot.
public final class DeclarativeStreams: @unchecked Sendable {
    /// Request timeout and retry backoff. A forming cluster drops API requests silently
    /// (no meta leader to answer), so a short timeout gets the streams in place sooner; a slow
    /// but successful create is harmless, the retry's INFO finds it.
    public struct Timing: Sendable {
        public var requestTimeout: Double = 2
        public var initialBackoff: Double = 0.25
        public var maxBackoff: Double = 5

        public init(requestTimeout: Double = 2, initialBackoff: Double = 0.25, maxBackoff: Double = 5) {
            self.requestTimeout = requestTimeout
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
        }
    }

    /// Where one declared stream stands.
    public enum State: Equatable, Sendable {
        case pending(attempts: Int)
        case done(DeclaredStreamPlan.Outcome)
        case failed(String)
    }

    private let server: NATSServer
    private let timing: Timing
    private let queue = DispatchQueue(label: "clusterd.declared-streams")
    // All below: only on `queue`.
    private var streams: [DeclaredStream] = []
    private var states: [String: State] = [:]
    /// Bumped by `apply` and `stop`: callbacks of an older round are dropped.
    private var generation = 0
    private var index = 0
    private var attempts = 0
    private var configBefore: String?

    public init(server: NATSServer, timing: Timing = Timing()) {
        self.server = server
        self.timing = timing
    }

    /// Starts (or, after a config reload, restarts) bringing `streams` to their declared
    /// configs. Streams no longer declared are left alone (never deleted).
    public func apply(_ streams: [DeclaredStream]) {
        queue.async {
            self.generation += 1
            self.streams = streams
            self.states = Dictionary(uniqueKeysWithValues: streams.map { ($0.name, State.pending(attempts: 0)) })
            self.index = 0
            self.attempts = 0
            self.startCurrent(self.generation)
        }
    }

    /// Stops retrying (server shutdown).
    public func stop() {
        queue.sync { generation += 1 }
    }

    /// A snapshot of every declared stream's state, by name.
    public var snapshot: [String: State] { queue.sync { states } }

    /// `/metrics` lines: how many declared streams are pending, ready or failed.
    public func prometheusText() -> String {
        var pending = 0, ready = 0, failed = 0
        for s in snapshot.values {
            switch s {
            case .pending: pending += 1
            case .done: ready += 1
            case .failed: failed += 1
            }
        }
        return """
        # HELP clusterd_declared_streams Streams from the config's streams list, by reconcile state.
        # TYPE clusterd_declared_streams gauge
        clusterd_declared_streams{state="pending"} \(pending)
        clusterd_declared_streams{state="ready"} \(ready)
        clusterd_declared_streams{state="failed"} \(failed)

        """
    }

    // MARK: - the loop (on `queue`)

    private func startCurrent(_ gen: Int) {
        guard gen == generation, index < streams.count else { return }
        configBefore = nil
        send(.info, gen)
    }

    private func send(_ call: DeclaredStreamPlan.Call, _ gen: Int) {
        let stream = streams[index]
        let body: [UInt8] = call == .info ? [] : stream.configJSON
        server.requestInternal(subject: call.subject(stream: stream.name), payload: body, timeout: timing.requestTimeout) {
            [weak self] reply in
            guard let self else { return }
            self.queue.async { self.handle(call, DeclaredStreamPlan.decode(reply), gen) }
        }
    }

    private func handle(_ call: DeclaredStreamPlan.Call, _ reply: DeclaredStreamPlan.Reply, _ gen: Int) {
        guard gen == generation, index < streams.count else { return }
        let name = streams[index].name
        if call == .info, case let .ok(config) = reply { configBefore = config }
        switch DeclaredStreamPlan.next(after: call, reply: reply, configBefore: configBefore) {
        case let .call(next):
            send(next, gen)
        case let .retry(reason):
            attempts += 1
            states[name] = .pending(attempts: attempts)
            let delay = DeclaredStreamPlan.backoff(attempt: attempts, initial: timing.initialBackoff, maximum: timing.maxBackoff)
            // The first few waits are expected while JetStream starts; say so once, then rarely.
            if attempts == 1 || attempts % 20 == 0 {
                server.logger.warning("Declared stream '\(name)': \(reason); retrying (attempt \(attempts))")
            }
            queue.asyncAfter(deadline: .now() + delay) { [weak self] in self?.startCurrent(gen) }
        case let .done(outcome):
            states[name] = .done(outcome)
            switch outcome {
            case .created: server.logger.info("Declared stream '\(name)' created")
            case .updated: server.logger.info("Declared stream '\(name)' updated to its declared config")
            case .unchanged: server.logger.info("Declared stream '\(name)' is up to date")
            }
            advance(gen)
        case let .failed(reason):
            states[name] = .failed(reason)
            server.logger.error("Declared stream '\(name)' not applied: \(reason)")
            advance(gen)
        }
    }

    private func advance(_ gen: Int) {
        index += 1
        attempts = 0
        startCurrent(gen)
    }
}
