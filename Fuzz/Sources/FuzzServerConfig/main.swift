import ClusterServer
import ServerConfig

// Config files come from operators, but also from templating and include chains; the parser
// must turn any text into a value or a one-line positioned error. A parsed file must render
// back to text that parses to the same value, and mapping it to ServerOptions must not trap.
// `include` reads from a fixed in-memory file set (one of them includes itself).
private let files: [String: String] = [
    "/f/a.conf": "port: 4222\ncluster { name: x }\n",
    "/f/loop.conf": "include ./loop.conf\n",
    "/f/tls.conf": "tls { cert_file: c.pem, key_file: k.pem, verify: true, timeout: 0.5 }\n",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parser = ConfigParser(environment: ["FUZZ": "1k", "LIST": "[a, b]"], readFile: { path in
        guard let body = files[path] else { throw ConfigError(file: path, line: 1, column: 1, message: "no such file") }
        return body
    })
    let root: ConfigValue
    do {
        root = try parser.parse(text, fileName: "/f/main.conf")
    } catch let error as ConfigError {
        precondition(!error.description.contains("\n"), "multi-line error: \(error.description)")
        return 0
    } catch {
        preconditionFailure("unexpected error type \(error)")
    }
    let again = try? parser.parse(root.rendered(), fileName: "/f/main.conf")
    precondition(again == root, "rendered config does not parse back to the same value")
    var warnings: [String] = []
    _ = try? ConfigLoader.map(root, into: ServerOptions(), warnings: &warnings)
    return 0
}
