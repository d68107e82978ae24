import Foundation
import NATSClient
import XCTest

/// kill -9 of a stream's leader, between real `clusterd` processes: what a publisher sees while
/// the survivors elect the next one.
final class LeaderCrashTests: XCTestCase {
    private var procs: ProcessTestNodes!

    override func setUpWithError() throws {
        procs = try ProcessTestNodes(prefix: "crash")
    }

    override func tearDown() {
        procs?.stopAll(failed: hasRecordedFailure)
    }

    private func streamLeader(_ c: NATSConnection) async -> String? {
        guard let body = try? await c.jsRequest("STREAM.INFO.CRASH", json: "", timeout: .seconds(2)),
              let info = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        return (info["cluster"] as? [String: Any])?["leader"] as? String
    }

    /// A publish through a survivor, sent once its route to the killed leader is gone and before
    /// the election can have ended, is held until the new leader is known and acknowledged by
    /// it. Before: the survivor still knew the dead node as the leader, found no route to it and
    /// answered 503 at once, so a client saw errors for the whole election.
    func test_kill9OfTheStreamLeader_publishThroughASurvivor_isAckedByTheNextLeader() async throws {
        let ports = [try FreePort.pick(), try FreePort.pick(), try FreePort.pick()]
        let routes = ports.map { "nats://127.0.0.1:\($0)" }.joined(separator: ",")
        for (i, name) in ["n1", "n2", "n3"].enumerated() {
            try procs.start(name, args: ["-js", "-sd", procs.tempDir.appendingPathComponent(name).path,
                                         "--cluster", "nats://127.0.0.1:\(ports[i])", "--cluster_name", "crash",
                                         "--routes", routes])
        }
        let nodes = procs.nodes
        let meshed = try await ProcessTestNodes.waitUntil(seconds: 30) { nodes.allSatisfy { $0.routeCount == 2 } }
        XCTAssertTrue(meshed, "routes: \(nodes.map(\.routeCount))")

        let c1 = try await NATSConnection.connect(nodes[0].url)
        defer { Task { await c1.close() } }
        var created = false
        for _ in 0..<100 where !created {  // bounded: the meta group elects its first leader
            let body = try? await c1.jsRequest("STREAM.CREATE.CRASH",
                                               json: #"{"name":"CRASH","subjects":["crash.>"],"num_replicas":3}"#)
            created = body.map { !String(decoding: $0, as: UTF8.self).contains("\"error\"") } ?? false
            if !created { try await Task.sleep(nanoseconds: 200_000_000) }
        }
        XCTAssertTrue(created, "stream not created")
        var leaderName: String?
        for _ in 0..<100 where leaderName == nil {
            leaderName = await streamLeader(c1)
            if leaderName == nil { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        let leader = try XCTUnwrap(nodes.first { $0.name == leaderName }, "leader \(String(describing: leaderName))")
        let survivor = try XCTUnwrap(nodes.first { $0 !== leader })
        let pub = try await NATSConnection.connect(survivor.url)
        defer { Task { await pub.close() } }
        for i in 1...3 { _ = try await pub.jsPublish("crash.before", payload: "b\(i)", noResponderRetries: 20) }

        leader.kill9()
        let cut = try await ProcessTestNodes.waitUntil(seconds: 10) { survivor.routeCount == 1 }
        XCTAssertTrue(cut, "the survivor still has \(survivor.routeCount) routes")
        // At most three attempts 250 ms apart: the build that refused at once answered all three
        // with a 503 (the election starts a second after the kill at the soonest); held, one
        // attempt covers an election of up to 3 s, three cover a slow machine's.
        var answer: JetStreamPubAck?
        for attempt in 1...3 where answer == nil {
            do {
                answer = try await pub.jsPublish("crash.during", payload: "d1", msgId: "during-1", timeout: .seconds(10),
                                              noResponderRetries: 0)
            } catch let e as JetStreamAPIError where e.code == 503 && attempt < 3 {
                try await Task.sleep(nanoseconds: 250_000_000)
            }
        }
        let ack = try XCTUnwrap(answer)
        XCTAssertEqual(ack.seq, 4)
        XCTAssertEqual(ack.stream, "CRASH")
    }
}
