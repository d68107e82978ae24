import ClusterServer
import Dispatch
import Foundation
import Logging

/// SIGTERM/SIGINT: graceful stop. SIGHUP: re-read the config file and apply what can change
/// at runtime. SIGUSR2: lame duck mode. The handlers run on a dispatch queue, never in signal context.
final class SignalHandlers {
    private let server: NATSServer
    private let logger: Logger
    private let configPath: String?
    private let flags: Flags
    private let onReload: (ServerOptions) -> Void
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "clusterd.signals")

    /// `onReload` runs on the signal queue after a successful reload, with the new options.
    init(server: NATSServer, logger: Logger, configPath: String?, flags: Flags,
         onReload: @escaping (ServerOptions) -> Void = { _ in }) {
        self.server = server
        self.onReload = onReload
        self.logger = logger
        self.configPath = configPath
        self.flags = flags
    }

    func install() {
        for sig in [SIGTERM, SIGINT] {
            on(sig) { [server, logger] in
                logger.info("Trapped \"\(sig == SIGTERM ? "terminated" : "interrupt")\" signal")
                server.shutdown()
            }
        }
        on(SIGHUP) { [weak self] in self?.reload() }
        on(SIGUSR2) { [server] in server.enterLameDuckMode() }
        if PowerCutMode.isEnabled {
            // Test-only (CLUSTERD_TEST_POWER_CUT=1): a simulated power cut of this node.
            on(SIGPWR) { PowerCutMode.cutAndDie() }
        }
        if TestClock.isEnabled {
            // Test-only (CLUSTERD_TEST_CLOCK=<file>): re-read the wall-clock offset (a clock jump).
            on(SIGURG) { [logger] in
                do {
                    let line = try TestClock.reload()
                    logger.warning("\(line)")
                } catch {
                    logger.error("\(error)")
                }
            }
        }
    }

    private func on(_ sig: Int32, _ body: @escaping () -> Void) {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
        source.setEventHandler(handler: body)
        source.resume()
        sources.append(source)
    }

    private func reload() {
        guard let path = configPath else {
            logger.warning("Reload requested but no configuration file was given; nothing to reload")
            return
        }
        do {
            var options = try ConfigLoader.load(path: path, into: ServerOptions())
            options.configFile = path
            flags.apply(to: &options)
            for w in ConfigLoader.lastWarnings { logger.warning("\(w)") }
            let needRestart = try server.applyReload(options)
            for name in needRestart {
                logger.warning("Config reload: option '\(name)' changed but requires a restart; keeping the running value")
            }
            logger.info("Reloaded server configuration")
            onReload(options)
        } catch {
            logger.error("Failed to reload server configuration: \(error)")
        }
    }
}
