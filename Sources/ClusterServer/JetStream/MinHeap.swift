/// A binary min-heap. A consumer keeps its pending entries in two of these, so its ack floor
/// (the smallest pending stream and consumer sequences) is found without scanning every
/// pending entry on each ack.
struct MinHeap<Element: Comparable> {
    private var elements: [Element] = []

    init() {}

    init<S: Sequence>(_ items: S) where S.Element == Element {
        elements = Array(items)
        var i = elements.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    var count: Int { elements.count }
    var isEmpty: Bool { elements.isEmpty }
    /// The smallest element, nil when empty.
    var min: Element? { elements.first }

    mutating func insert(_ e: Element) {
        elements.append(e)
        var i = elements.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard elements[i] < elements[parent] else { break }
            elements.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the smallest element.
    @discardableResult
    mutating func removeMin() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let top = elements.removeLast()
        siftDown(0)
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < elements.count && elements[l] < elements[smallest] { smallest = l }
            if r < elements.count && elements[r] < elements[smallest] { smallest = r }
            if smallest == i { return }
            elements.swapAt(i, smallest)
            i = smallest
        }
    }
}
