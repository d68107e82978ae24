import ArgumentParser
import Foundation
import NATSClient

/// `clusterctl`: a small command-line client for clusterd (and any NATS server).
@main
struct Clusterctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusterctl",
        abstract: "Publish, subscribe, request and benchmark against clusterd or any NATS server.",
        subcommands: [Pub.self, Sub.self, Req.self, Bench.self]
    )
}

/// Runs a command body, turning client errors into one line on stderr and exit code 1.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as NATSError {
        FileHandle.standardError.write(Data("clusterctl: error: \(error)\n".utf8))
        throw ExitCode.failure
    } catch let error as JetStreamAPIError {
        FileHandle.standardError.write(Data("clusterctl: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
