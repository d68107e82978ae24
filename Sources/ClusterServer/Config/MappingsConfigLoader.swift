import ServerConfig

/// `mappings { "source": "destination" }` (top level: the global account; or inside an
/// account), with nats-server's weighted form `"source": [{destination: "d", weight: 50%,
/// cluster: "c"}]`. Each is checked here (`SubjectMappings`, nats-server's texts), so a bad
/// one fails the start or the reload.
extension ConfigLoader {
    static func mapMappings(_ value: ConfigValue, key: String) throws -> [SubjectMappingConfig] {
        let configs = try entries(value, key).map { source, v in
            switch v {
            case let .string(destination):
                return SubjectMappingConfig(source: source, destinations: [.init(subject: destination, weight: 100)])
            case let .array(items):
                return SubjectMappingConfig(source: source, destinations: try items.map { try mappingDestination($0, key: "\(key).\(source)") })
            case .map:
                return SubjectMappingConfig(source: source, destinations: [try mappingDestination(v, key: "\(key).\(source)")])
            default:
                throw LoadError(description: "\(key).\(source): Expected an entry for the mapping destination")
            }
        }
        for c in configs {
            do { _ = try SubjectMappings([c], cluster: nil) } catch { throw LoadError(description: "\(key): \(error)") }
        }
        return configs
    }

    private static func mappingDestination(_ v: ConfigValue, key: String) throws -> SubjectMappingConfig.Destination {
        var subject: String?
        var weight: Int?
        var cluster: String?
        for (rawKey, field) in try entries(v, key) {
            switch rawKey.lowercased() {
            case "dest", "destination": subject = try string(field, "\(key).\(rawKey)")
            case "weight":
                // `50%`, `"50%"` or 50.
                let text = try string(field, "\(key).\(rawKey)")
                guard let w = Int(text.hasSuffix("%") ? String(text.dropLast()) : text) else {
                    throw LoadError(description: "\(key): Invalid weight \"\(text)\" for mapping destination")
                }
                weight = w
            case "cluster": cluster = try string(field, "\(key).\(rawKey)")
            default: throw LoadError(description: "\(key): Unknown field \"\(rawKey)\" for mapping destination")
            }
        }
        guard let subject else { throw LoadError(description: "\(key): Missing destination for mapping") }
        guard let weight else { throw LoadError(description: "\(key): Missing weight for mapping destination \"\(subject)\"") }
        return .init(subject: subject, weight: weight, cluster: cluster)
    }
}
