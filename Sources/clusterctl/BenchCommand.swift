import ArgumentParser
import Foundation
import NATSClient
import NIOCore

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks; each prints one `RESULT key=value ...` line like natsbench.",
        subcommands: [BenchPubSub.self, BenchPub.self]
    )
}

/// One publisher connection, one subscriber connection, N messages of S bytes; reports the
/// rate at which the subscriber received them (publish start → last message received).
struct BenchPubSub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pubsub", abstract: "Core pub/sub throughput.")

    @Option(name: [.customShort("n"), .long], help: "Messages to publish.") var msgs = 1_000_000
    @Option(name: .shortAndLong, help: "Payload size in bytes.") var size = 128
    @Option(help: "Subject to use.") var subject = "bench.core"
    @Option(help: "Give up after this many seconds.") var deadline: Double = 300
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard msgs >= 1, msgs <= 1_000_000_000 else { throw ValidationError("--msgs must be between 1 and 1000000000") }
        guard size >= 0, size <= 64 * 1024 * 1024 else { throw ValidationError("--size must be between 0 and 67108864") }
        guard deadline > 0 else { throw ValidationError("--deadline must be positive") }
    }

    func run() async throws {
        try await runReportingErrors {
            let sub = try await connection.connect(name: "clusterctl bench sub")
            let pub = try await connection.connect(name: "clusterctl bench pub")
            let subject = self.subject, msgs = self.msgs  // hoisted: property-wrapper reads are not free
            let tally = ReceiveTally(expected: msgs)
            _ = try sub.subscribe(subject) { message in tally.record(bytes: message.payload.readableBytes) }
            try await sub.flush()

            let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: 97 + $0 % 26) })
            let start = NIODeadline.now()
            let stopAt = start + .milliseconds(Int64(deadline * 1000))
            var sent = 0
            while sent < msgs {
                try await pub.publish(subject, payload: payload)
                sent += 1
                if sent & 4095 == 0, NIODeadline.now() > stopAt { break }
            }
            try await pub.flush(timeout: .seconds(60))
            let publishEnd = NIODeadline.now()

            // Wait for the subscriber: bounded by the deadline, and by 5 s without progress.
            var lastCount = -1
            var lastProgress = NIODeadline.now()
            while tally.count < sent, NIODeadline.now() < stopAt {
                let c = tally.count
                if c != lastCount {
                    lastCount = c
                    lastProgress = NIODeadline.now()
                } else if NIODeadline.now() - lastProgress > .seconds(5) {
                    break
                }
                try await Task.sleep(nanoseconds: 1_000_000)
            }
            let (received, lastReceive) = tally.snapshot(fallback: lastProgress)
            let elapsed = Double(((lastReceive ?? publishEnd) - start).nanoseconds) / 1e9
            let publishSeconds = Double((publishEnd - start).nanoseconds) / 1e9
            let rate = elapsed > 0 ? Double(received) / elapsed : 0
            print(String(format: "RESULT mode=pubsub client=swift n=%d size=%d sent=%d received=%d elapsed_s=%.3f msgs_per_s=%.0f mb_per_s=%.2f pub_msgs_per_s=%.0f dropped=%d",
                         msgs, size, sent, received, elapsed, rate, rate * Double(size) / 1e6,
                         publishSeconds > 0 ? Double(sent) / publishSeconds : 0, sub.statistics.droppedMsgs))
            await pub.close()
            await sub.close()
            if received < sent { throw ExitCode.failure }
        }
    }
}

/// Publisher only (nobody subscribed): measures the client's publish path plus the server's
/// ingest, with a final flush so every message was processed.
struct BenchPub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pub", abstract: "Publish-only throughput.")

    @Option(name: [.customShort("n"), .long], help: "Messages to publish.") var msgs = 1_000_000
    @Option(name: .shortAndLong, help: "Payload size in bytes.") var size = 128
    @Option(help: "Subject to use.") var subject = "bench.pub"
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard msgs >= 1, msgs <= 1_000_000_000 else { throw ValidationError("--msgs must be between 1 and 1000000000") }
        guard size >= 0, size <= 64 * 1024 * 1024 else { throw ValidationError("--size must be between 0 and 67108864") }
    }

    func run() async throws {
        try await runReportingErrors {
            let pub = try await connection.connect(name: "clusterctl bench pub")
            let subject = self.subject, msgs = self.msgs
            let payload = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: 97 + $0 % 26) })
            let start = NIODeadline.now()
            for _ in 0..<msgs { try await pub.publish(subject, payload: payload) }
            try await pub.flush(timeout: .seconds(60))
            let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
            let rate = seconds > 0 ? Double(msgs) / seconds : 0
            print(String(format: "RESULT mode=pub client=swift n=%d size=%d elapsed_s=%.3f msgs_per_s=%.0f mb_per_s=%.2f",
                         msgs, size, seconds, rate, rate * Double(size) / 1e6))
            await pub.close()
        }
    }
}

/// Counts deliveries; written on the subscriber's event loop, read by the waiting task.
/// The clock is read only when the expected count is reached (a clock read per message
/// would be measurable at a million messages per second).
final class ReceiveTally: @unchecked Sendable {
    private let lock = NSLock()
    private let expected: Int
    private var received = 0
    private var completedAt: NIODeadline?

    init(expected: Int) { self.expected = expected }

    func record(bytes n: Int) {
        lock.lock()
        received += 1
        if received == expected { completedAt = NIODeadline.now() }
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Count and time of the last delivery (`fallback` — the last observed progress — when
    /// not everything arrived).
    func snapshot(fallback: NIODeadline) -> (Int, NIODeadline?) {
        lock.lock()
        defer { lock.unlock() }
        return (received, completedAt ?? (received > 0 ? fallback : nil))
    }
}
