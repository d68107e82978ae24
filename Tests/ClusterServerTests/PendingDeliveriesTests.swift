import XCTest
@testable import ClusterServer

/// `PendingDeliveries` keeps a consumer's ack floor incrementally; these compare it with the
/// scan it replaced (the smallest pending stream and consumer sequences) under seeded churn.
final class PendingDeliveriesTests: XCTestCase {
    func test_minHeap_popsInOrder() {
        var rng = SplitMix64(seed: 11)
        for size in [0, 1, 2, 7, 100, 1_000] {
            let values = (0..<size).map { _ in UInt64.random(in: 0..<500, using: &rng) }
            var built = MinHeap(values), inserted = MinHeap<UInt64>()
            for v in values { inserted.insert(v) }
            var a: [UInt64] = [], b: [UInt64] = []
            while let v = built.removeMin() { a.append(v) }
            while let v = inserted.removeMin() { b.append(v) }
            XCTAssertEqual(a, values.sorted(), "heapified, size \(size)")
            XCTAssertEqual(b, values.sorted(), "inserted, size \(size)")
        }
    }

    func test_floors_matchAScan_underSeededChurn() {
        for seed in UInt64(1)...20 {
            var rng = SplitMix64(seed: seed)
            var p = PendingDeliveries()
            var model: [UInt64: UInt64] = [:]  // stream seq -> consumer seq
            var nextSeq: UInt64 = 1, nextCseq: UInt64 = 1
            for step in 0..<3_000 {
                switch UInt64.random(in: 0..<10, using: &rng) {
                case 0..<4:  // a new delivery
                    p.deliver(nextSeq, cseq: nextCseq, deadline: 0)
                    model[nextSeq] = nextCseq
                    nextSeq += UInt64.random(in: 1...3, using: &rng)
                    nextCseq += 1
                case 4:  // a redelivery: a new consumer seq for a pending stream seq
                    if let s = model.keys.randomElement(using: &rng) {
                        p.deliver(s, cseq: nextCseq, deadline: 0)
                        model[s] = nextCseq
                        nextCseq += 1
                    }
                case 5:  // a deadline change keeps the consumer seq
                    if let s = model.keys.randomElement(using: &rng) { p.setDeadline(s, Int64(step)) }
                case 6:  // the oldest acked (in-order consumers)
                    if let s = model.keys.min() { p.remove(s); model[s] = nil }
                default:  // an ack in any order, or of something not pending
                    if Bool.random(using: &rng), let s = model.keys.randomElement(using: &rng) {
                        p.remove(s); model[s] = nil
                    } else {
                        p.remove(nextSeq + 100)
                    }
                }
                XCTAssertEqual(p.count, model.count)
                let want = model.isEmpty ? nil : (model.keys.min()!, model.values.min()!)
                let got = p.floors()
                XCTAssertEqual(got?.seq, want?.0, "seed \(seed) step \(step)")
                XCTAssertEqual(got?.cseq, want?.1, "seed \(seed) step \(step)")
                if got?.seq != want?.0 || got?.cseq != want?.1 { return }
            }
        }
    }

    func test_aStuckOldestEntry_doesNotGrowTheHeapsWithoutBound() {
        var p = PendingDeliveries()
        p.deliver(1, cseq: 1, deadline: 0)  // never acked
        for s in UInt64(2)...20_000 {
            p.deliver(s, cseq: s, deadline: 0)
            p.remove(s)
            XCTAssertEqual(p.floors()?.seq, 1)
        }
        XCTAssertLessThanOrEqual(p.heapSizes.seqs, 2 * p.count + 64 + 1)
        XCTAssertLessThanOrEqual(p.heapSizes.cseqs, 2 * p.count + 64 + 1)
    }
}
