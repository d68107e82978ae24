/// One entry of an account's `mappings` (nats-server's subject mapping) as configured: a
/// client's publish on `source` goes to one of the destinations instead, chosen by weight.
public struct SubjectMappingConfig: Equatable, Sendable {
    public struct Destination: Equatable, Sendable {
        public var subject: String
        /// Percent, 1...100.
        public var weight: Int
        /// Only on servers of this cluster (nats-server's cluster-scoped mappings).
        public var cluster: String?

        public init(subject: String, weight: Int, cluster: String? = nil) {
            self.subject = subject
            self.weight = weight
            self.cluster = cluster
        }
    }

    public var source: String
    public var destinations: [Destination]

    public init(source: String, destinations: [Destination]) {
        self.source = source
        self.destinations = destinations
    }
}

/// An account's mappings at runtime. Pure: the weighted choice draws from the generator the
/// caller passes.
struct SubjectMappings: Sendable {
    private struct Rule: Sendable {
        let source: String
        let hasWildcard: Bool
        /// Transforms with cumulative weights; nil transform: the subject stays as published
        /// (the weight left over when the destinations add up to less than 100).
        let choices: [(transform: SubjectTransform?, upTo: UInt32)]
    }

    private let rules: [Rule]

    /// Why a mapping is refused, in nats-server's words.
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// nil when there are no mappings (the publish path checks only that).
    /// - Parameter cluster: this server's cluster name: destinations scoped to it replace the
    ///   others; destinations scoped to other clusters are not used.
    init?(_ configs: [SubjectMappingConfig], cluster: String?) throws {
        guard !configs.isEmpty else { return nil }
        rules = try configs.map { c in
            guard Subject.isValidSubscription(c.source) else { throw Invalid(description: "Subject \"\(c.source)\" is not a valid subject") }
            for d in c.destinations where d.weight < 1 || d.weight > 100 {
                throw Invalid(description: "Invalid weight \(d.weight) for mapping destination")
            }
            var transforms: [String: SubjectTransform] = [:]
            for d in c.destinations where transforms[d.subject] == nil {
                do {
                    transforms[d.subject] = try SubjectTransform.mapping(source: c.source, destination: d.subject)
                } catch {
                    throw Invalid(description: "Error adding mapping for \"\(c.source)\" to \"\(d.subject)\" : \(error)")
                }
            }
            for scope in Set(c.destinations.map(\.cluster)) where c.destinations.filter({ $0.cluster == scope }).reduce(0, { $0 + $1.weight }) > 100 {
                throw Invalid(description: "Error adding mapping for \"\(c.source)\" : total weight needs to be <= 100")
            }
            let scoped = c.destinations.filter { $0.cluster != nil && $0.cluster == cluster }
            let used = scoped.isEmpty ? c.destinations.filter { $0.cluster == nil } : scoped
            var total: UInt32 = 0
            var choices: [(SubjectTransform?, UInt32)] = used.map { d in
                total += UInt32(d.weight)
                return (transforms[d.subject], total)
            }
            if total < 100 { choices.append((nil, 100)) }
            return Rule(source: c.source, hasWildcard: Subject.hasWildcard(c.source), choices: choices)
        }
    }

    /// The subject a client's publish on `subject` goes to: the first mapping whose source
    /// matches picks a destination (`draw(100)` when there is a choice to make); nil when no
    /// mapping matches or the choice leaves the subject as it is.
    func map(_ subject: String, draw: (UInt32) -> UInt32 = { UInt32.random(in: 0..<$0) }) -> String? {
        for rule in rules {
            if rule.hasWildcard ? !Subject.matches(pattern: rule.source, subject: subject) : rule.source != subject { continue }
            let choice: SubjectTransform?
            if rule.choices.count == 1 {
                choice = rule.choices[0].transform
            } else {
                let w = draw(100)
                choice = rule.choices.first { w < $0.upTo }?.transform ?? nil
            }
            // Matched above: mapped without matching again (this runs per publish).
            return choice?.map(matched: subject, random: draw)
        }
        return nil
    }
}
