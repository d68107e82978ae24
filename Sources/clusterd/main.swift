import ArgumentParser
import ClusterServer
import Foundation
import Logging

/// Exits with nats-server's `[FTL]` line shape, which supervisors and harnesses recognise.
func fatal(_ message: String) -> Never {
    let stamp = (try? LogSink(path: nil))?.timestamp() ?? ""
    FileHandle.standardError.write(Data("[\(getpid())] \(stamp) [FTL] \(message)\n".utf8))
    exit(1)
}

let arguments = Flags.normalize(Array(CommandLine.arguments.dropFirst()))
let flags: Flags
do {
    flags = try Flags.parse(arguments)
} catch {
    let text = Flags.message(for: error)
    if Flags.exitCode(for: error) == .success {
        print(Flags.helpMessage())
        exit(0)
    }
    fatal(text.replacingOccurrences(of: "\n", with: " "))
}
if flags.version {
    print("clusterd: v\(ServerVersion.clusterd) (nats-server compatible v\(ServerVersion.nats))")
    exit(0)
}
let unsupported = flags.unsupported()
if !unsupported.isEmpty {
    fatal("not supported yet: \(unsupported.joined(separator: ", "))")
}

if let problem = flags.invalid().first {
    fatal(problem)
}

var options = ServerOptions()
if let path = flags.config {
    do {
        options = try ConfigLoader.load(path: path, into: options)
    } catch {
        fatal("\(error)")
    }
    options.configFile = path
}
flags.apply(to: &options)
// Test seam, documented in docs/deploy.md: route seeds named in this hosts-format file are
// dialed at the listed address (lets a test run the Kubernetes config on loopback).
let hostsFile = ProcessInfo.processInfo.environment["CLUSTERD_HOSTS_FILE"].flatMap { $0.isEmpty ? nil : $0 }
if let hostsFile {
    do {
        options.routeHostOverrides = try HostsFile.load(path: hostsFile)
    } catch {
        fatal("CLUSTERD_HOSTS_FILE: \(error)")
    }
}
if !options.declaredStreams.isEmpty && !options.jetStream {
    fatal("the config declares streams but JetStream is not enabled (add a jetstream block or -js)")
}
if !options.declaredStreams.isEmpty && !options.accounts.isEmpty {
    // Declared streams are made in $G, which (as in nats-server) has no JetStream once accounts exist.
    fatal("the config declares streams, but with accounts configured the global account has no JetStream")
}
if let t = options.tls, t.certFile.isEmpty || t.keyFile.isEmpty {
    fatal("TLS needs a certificate and its key: --tlscert and --tlskey")
}

let sink: LogSink
do {
    sink = try LogSink(path: options.logFile)
} catch {
    fatal("\(error)")
}
let level: Logger.Level = options.trace ? .trace : (options.debug ? .debug : .info)
LoggingSystem.bootstrap { _ in NATSLogHandler(level: level, sink: sink) }
let logger = Logger(label: "clusterd")
for warning in ConfigLoader.lastWarnings { logger.warning("\(warning)") }
if let hostsFile {
    logger.warning("Route host names are resolved through CLUSTERD_HOSTS_FILE=\(hostsFile) first (a test setting)")
}

if TestClock.isEnabled {
    // Test-only: a restarted node keeps its jumped clock (as a machine whose clock is wrong).
    do {
        let line = try TestClock.reload()
        logger.warning("\(line) (CLUSTERD_TEST_CLOCK, a test setting)")
    } catch {
        fatal("\(error)")
    }
}

// Soft open-files limit up to the hard one; store files share a descriptor pool under it.
let openFiles = OpenFiles.configure(override: ProcessInfo.processInfo.environment["CLUSTERD_MAX_OPEN_STORE_FILES"].flatMap { Int($0) })
logger.info("Open files limit \(openFiles.limit); store files keep at most \(openFiles.storeFiles) open")
let server = NATSServer(options: options, logger: logger)
// JetStream subscribes before the listener opens, so the first client already finds $JS.API.
var jetStream: JetStreamAccounts?
if options.jetStream {
    // One JetStream per account that has one (only $G without configured accounts).
    let js = JetStreamAccounts(server: server)
    do {
        try js.start()
    } catch {
        fatal("Could not start JetStream: \(error)")
    }
    // Per-stream and per-consumer gauges (pending, ack pending, redelivered) on /metrics.
    server.metricsProviders.append { [weak js] in js?.prometheusText() ?? "" }
    jetStream = js
}
// Declared streams go through the JetStream API like any client's requests, once serving.
let declaredStreams = options.jetStream ? DeclarativeStreams(server: server) : nil
if let declaredStreams {
    server.metricsProviders.append { [weak declaredStreams] in declaredStreams?.prometheusText() ?? "" }
    server.shutdownHooks.append { [weak declaredStreams] in declaredStreams?.stop() }
}
// Handlers first: a supervisor may signal as soon as it sees "Server is ready".
var lastDeclared = options.declaredStreams
let signals = SignalHandlers(server: server, logger: logger, configPath: flags.config, flags: flags) { reloaded in
    // A changed streams list is applied at once; the rest of a reload is the server's.
    guard reloaded.declaredStreams != lastDeclared else { return }
    lastDeclared = reloaded.declaredStreams
    if let declaredStreams {
        declaredStreams.apply(reloaded.declaredStreams)
    } else if !reloaded.declaredStreams.isEmpty {
        logger.error("Config reload: streams are declared but JetStream is not enabled; ignoring them")
    }
}
signals.install()
do {
    try server.start()
} catch let error as TLSContexts.LoadError {
    fatal("\(error)")
} catch let error as ListenError {
    fatal(error.description)
} catch {
    fatal("Could not start the server: \(error)")
}
if let declaredStreams, !options.declaredStreams.isEmpty {
    declaredStreams.apply(options.declaredStreams)
}
if let pidFile = flags.pidFile {
    try? "\(getpid())".write(toFile: pidFile, atomically: true, encoding: .utf8)
}

server.waitUntilShutdown()
exit(0)
