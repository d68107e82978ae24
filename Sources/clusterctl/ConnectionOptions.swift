import ArgumentParser
import Foundation
import NATSClient

/// Flags shared by every command that talks to a server.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.long, .customLong("url")], help: ArgumentHelp(
        "Server URL(s), nats://host:port; repeat or comma-separate for several (default $NATS_URL or nats://127.0.0.1:4222).",
        valueName: "url"))
    var server: [String] = []

    @Option(help: "User name (or put user:pass@ in the URL).")
    var user: String?

    @Option(help: "Password.")
    var password: String?

    @Option(help: "Auth token.")
    var token: String?

    @Option(name: .customLong("connect-timeout"), help: "Seconds to wait for the handshake.")
    var connectTimeoutSeconds: Double = 5

    func validate() throws {
        for url in urls {
            for part in url.split(separator: ",") where ServerAddress(part.trimmingCharacters(in: .whitespaces)) == nil {
                throw ValidationError("invalid server URL '\(part)' (expected nats://host:port)")
            }
        }
        guard connectTimeoutSeconds > 0, connectTimeoutSeconds <= 3600 else {
            throw ValidationError("--connect-timeout must be between 0 and 3600 seconds")
        }
    }

    var urls: [String] {
        if !server.isEmpty { return server }
        return [ProcessInfo.processInfo.environment["NATS_URL"] ?? "nats://127.0.0.1:4222"]
    }

    func connect(name: String) async throws -> NATSConnection {
        var options = try NATSOptions(urls: urls)
        options.name = name
        if let user { options.user = user }
        if let password { options.password = password }
        if let token { options.token = token }
        options.connectTimeout = .milliseconds(Int64(connectTimeoutSeconds * 1000))
        return try await NATSConnection.connect(options)
    }
}

/// Parses `Name: value` / `Name=value` header flags.
func parseHeaders(_ raw: [String]) throws -> NATSHeaders? {
    guard !raw.isEmpty else { return nil }
    var headers = NATSHeaders()
    for entry in raw {
        guard let sep = entry.firstIndex(where: { $0 == ":" || $0 == "=" }) else {
            throw ValidationError("header '\(entry)' must look like Name:value")
        }
        let name = entry[..<sep].trimmingCharacters(in: .whitespaces)
        let value = entry[entry.index(after: sep)...].trimmingCharacters(in: .whitespaces)
        headers.append(name, value)
    }
    do { try headers.validate() } catch let error as NATSError { throw ValidationError("\(error)") }
    return headers
}
