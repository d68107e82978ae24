@testable import ClusterServer
import XCTest

/// The quorum-lost warning and advisory follow nats-server's rules: quiet for the first 5 s of a
/// group, then at most one per 10 s (ticks are 100 ms).
final class QuorumLossReportRuleTests: XCTestCase {
    func test_quietForAGroupYoungerThanFiveSeconds() {
        XCTAssertFalse(QuorumLossReportRule.shouldReport(atTick: 1_000, openedAtTick: 1_000, lastReportedAtTick: nil))
        XCTAssertFalse(QuorumLossReportRule.shouldReport(atTick: 1_049, openedAtTick: 1_000, lastReportedAtTick: nil))
        XCTAssertTrue(QuorumLossReportRule.shouldReport(atTick: 1_050, openedAtTick: 1_000, lastReportedAtTick: nil))
    }

    func test_atMostOnePerTenSeconds() {
        XCTAssertFalse(QuorumLossReportRule.shouldReport(atTick: 500, openedAtTick: 0, lastReportedAtTick: 500))
        XCTAssertFalse(QuorumLossReportRule.shouldReport(atTick: 599, openedAtTick: 0, lastReportedAtTick: 500))
        XCTAssertTrue(QuorumLossReportRule.shouldReport(atTick: 600, openedAtTick: 0, lastReportedAtTick: 500))
    }

    func test_aSequenceOfLossesEverySecondIsReportedEveryTenSeconds() {
        var last: Int?
        var reported: [Int] = []
        for tick in stride(from: 0, through: 300, by: 10) where QuorumLossReportRule.shouldReport(
            atTick: tick, openedAtTick: 0, lastReportedAtTick: last) {
            last = tick
            reported.append(tick)
        }
        XCTAssertEqual(reported, [50, 150, 250])
    }
}
