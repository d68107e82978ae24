import XCTest
@testable import ServerConfig

/// An in-memory file system for include tests: a missing file throws.
struct MemoryFiles {
    struct NotFound: Error, CustomStringConvertible {
        let path: String
        var description: String { "no such file" }
    }

    var files: [String: String]

    func read(_ path: String) throws -> String {
        guard let text = files[path] else { throw NotFound(path: path) }
        return text
    }
}

func parseConfig(_ text: String, env: [String: String] = [:], files: [String: String] = [:],
                 fileName: String = "test.conf") throws -> ConfigValue {
    let memory = MemoryFiles(files: files)
    return try ConfigParser(environment: env, readFile: memory.read).parse(text, fileName: fileName)
}

/// The ConfigError thrown for `text`, failing the test if it parses or throws another type.
func configError(_ text: String, env: [String: String] = [:], files: [String: String] = [:],
                 fileName: String = "test.conf", file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
    do {
        let value = try parseConfig(text, env: env, files: files, fileName: fileName)
        XCTFail("expected an error, parsed \(value)", file: file, line: line)
        return nil
    } catch let error as ConfigError {
        return error
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
        return nil
    }
}

func entriesOf(_ value: ConfigValue) -> [(key: String, value: ConfigValue)] {
    value.entries ?? []
}

extension ConfigValue {
    static func block(_ pairs: KeyValuePairs<String, ConfigValue>) -> ConfigValue {
        .map(pairs.map { (key: $0.key, value: $0.value) })
    }
}
