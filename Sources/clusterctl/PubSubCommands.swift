import ArgumentParser
import Foundation
import NATSClient

struct Pub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a message (optionally many times).")

    @Argument(help: "Subject to publish to.") var subject: String
    @Argument(help: "Payload text.") var message: String
    @Option(name: .shortAndLong, help: "Number of times to publish.") var count = 1
    @Option(name: [.customShort("H"), .customLong("header")], help: "Header Name:value (repeatable).") var headers: [String] = []
    @Option(help: "Reply subject.") var reply: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        _ = try parseHeaders(headers)
    }

    func run() async throws {
        try await runReportingErrors {
            let headerBlock = try parseHeaders(headers)
            let nc = try await connection.connect(name: "clusterctl pub")
            for _ in 0..<count {
                try await nc.publish(subject, payload: message, reply: reply, headers: headerBlock)
            }
            try await nc.flush()
            await nc.close()
            print("published \(count) message\(count == 1 ? "" : "s") to \(subject)")
        }
    }
}

struct Sub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscribe and print messages.")

    @Argument(help: "Subject (wildcards * and > allowed).") var subject: String
    @Option(name: .shortAndLong, help: "Queue group to join.") var queue: String?
    @Option(name: .shortAndLong, help: "Exit after this many messages (default: run until interrupted).") var count: Int?
    @Flag(help: "Print only payloads, one per line.") var raw = false
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        try await runReportingErrors {
            let nc = try await connection.connect(name: "clusterctl sub")
            let subscription = try nc.subscribe(subject, queue: queue)
            if let count { try subscription.unsubscribe(after: count) }
            try await nc.flush()
            if !raw {
                FileHandle.standardError.write(Data("subscribed to \(subject)\(queue.map { " (queue \($0))" } ?? "")\n".utf8))
            }
            var received = 0
            for await message in subscription {
                received += 1
                print(raw ? message.string : Self.describe(message, number: received))
            }
            await nc.close()
        }
    }

    static func describe(_ m: NATSMessage, number: Int) -> String {
        var out = "[#\(number)] \(m.subject)"
        if let reply = m.reply { out += " reply=\(reply)" }
        if let status = m.status { out += " status=\(status)" }
        if let headers = m.headers {
            for field in headers { out += "\n  \(field.name): \(field.value)" }
        }
        return out + "\n" + m.string
    }
}

struct Req: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send a request and print the reply.")

    @Argument(help: "Subject to send the request to.") var subject: String
    @Argument(help: "Payload text.") var message: String
    @Option(help: "Seconds to wait for a reply.") var timeout: Double = 5
    @Option(name: [.customShort("H"), .customLong("header")], help: "Header Name:value (repeatable).") var headers: [String] = []
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be between 0 and 3600 seconds") }
        _ = try parseHeaders(headers)
    }

    func run() async throws {
        try await runReportingErrors {
            let nc = try await connection.connect(name: "clusterctl req")
            let reply = try await nc.request(subject, payload: message, headers: try parseHeaders(headers),
                                             timeout: .milliseconds(Int64(timeout * 1000)))
            if let headers = reply.headers {
                for field in headers { FileHandle.standardError.write(Data("\(field.name): \(field.value)\n".utf8)) }
            }
            print(reply.string)
            await nc.close()
        }
    }
}
