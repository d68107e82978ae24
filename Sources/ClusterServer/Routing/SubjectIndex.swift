import NIOConcurrencyHelpers

/// Subjects (wildcards allowed) of many owners in a token tree, so "which owners' subjects
/// overlap this one" (`Subject.overlaps`) costs about the subject's length plus the answer,
/// not a comparison with every stored subject. Used for the stream subject overlap check,
/// which otherwise scans every stream on every create.
///
/// A reference type: the tree's nodes are shared, so a copy would not be independent. Safe to
/// use from any thread (a lock): the meta state writes it on the JetStream queue, and a client
/// publish that finds no interest reads it on its event loop (`JetStreamService+Unrouted`).
final class SubjectIndex: @unchecked Sendable {
    private final class Node {
        var children: [String: Node] = [:]
        /// Owners whose subject ends at this node.
        var owners: Set<String> = []
        var isEmpty: Bool { children.isEmpty && owners.isEmpty }
    }

    private let root = Node()
    private let lock = NIOLock()

    /// No subject is stored (`remove` prunes emptied branches, so the root tells).
    var isEmpty: Bool { lock.withLock { root.isEmpty } }

    init() {}

    private static func tokens(_ subject: String) -> [String] {
        subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// Records that `owner` uses `subject`.
    func insert(_ subject: String, owner: String) {
        lock.withLock { insertLocked(subject, owner: owner) }
    }

    private func insertLocked(_ subject: String, owner: String) {
        var node = root
        for t in Self.tokens(subject) {
            if let next = node.children[t] {
                node = next
            } else {
                let next = Node()
                node.children[t] = next
                node = next
            }
        }
        node.owners.insert(owner)
    }

    /// Forgets `owner`'s use of `subject` (and the branches nobody uses any more).
    func remove(_ subject: String, owner: String) {
        lock.withLock { _ = Self.remove(Self.tokens(subject)[...], owner: owner, from: root) }
    }

    /// Removes below `node`; true when `node` became empty.
    private static func remove(_ tokens: ArraySlice<String>, owner: String, from node: Node) -> Bool {
        if let t = tokens.first {
            if let child = node.children[t], remove(tokens.dropFirst(), owner: owner, from: child) {
                node.children[t] = nil
            }
        } else {
            node.owners.remove(owner)
        }
        return node.isEmpty
    }

    /// Owners with a stored subject that some literal subject matches together with `subject`.
    func owners(overlapping subject: String) -> Set<String> {
        let tokens = Self.tokens(subject)[...]
        var out: Set<String> = []
        lock.withLock { Self.collect(tokens, at: root, into: &out) }
        return out
    }

    private static func collect(_ tokens: ArraySlice<String>, at node: Node, into out: inout Set<String>) {
        guard let t = tokens.first else {
            // The query ends here: stored subjects of the same length overlap.
            out.formUnion(node.owners)
            return
        }
        // A stored `>` here takes the query's one or more remaining tokens.
        if let gt = node.children[">"] { out.formUnion(gt.owners) }
        let rest = tokens.dropFirst()
        switch t {
        case ">":
            // The query's `>` takes any one or more further tokens: everything below.
            for (k, child) in node.children where k != ">" { all(child, into: &out) }
        case "*":
            for (k, child) in node.children where k != ">" { collect(rest, at: child, into: &out) }
        default:
            if let child = node.children[t] { collect(rest, at: child, into: &out) }
            if let child = node.children["*"] { collect(rest, at: child, into: &out) }
        }
    }

    private static func all(_ node: Node, into out: inout Set<String>) {
        out.formUnion(node.owners)
        for child in node.children.values { all(child, into: &out) }
    }
}
