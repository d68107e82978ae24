import NIOCore

/// NATS message headers (ADR-4): ordered, multi-value, case-preserving, plus the optional
/// status line (`NATS/1.0 503`, `NATS/1.0 408 Request Timeout`).
///
/// Lookups are case-sensitive, as in nats.go and nats.py: the server never changes case.
public struct NATSHeaders: Equatable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    /// One `Name: value` line.
    public struct Field: Equatable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    /// Three-digit status from the first line, e.g. 503; nil for an ordinary header block.
    public var status: Int?
    /// Text after the status code, e.g. "Request Timeout"; nil when absent.
    public var statusDescription: String?
    /// Fields in wire order; the same name may appear several times.
    public private(set) var fields: [Field] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { append(name, value) }
    }

    public var isEmpty: Bool { fields.isEmpty && status == nil }

    /// The first value for `name`, or nil. Assigning replaces every value of `name`.
    public subscript(name: String) -> String? {
        get { fields.first(where: { $0.name == name })?.value }
        set {
            if let v = newValue { set(name, v) } else { remove(name) }
        }
    }

    /// All values for `name` in wire order.
    public func values(for name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }

    /// Adds a value, keeping earlier values of the same name.
    public mutating func append(_ name: String, _ value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Replaces every value of `name` with one value, at the position of the first one.
    public mutating func set(_ name: String, _ value: String) {
        if let first = fields.firstIndex(where: { $0.name == name }) {
            fields[first].value = value
            var i = fields.count - 1
            while i > first {
                if fields[i].name == name { fields.remove(at: i) }
                i -= 1
            }
        } else {
            append(name, value)
        }
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name == name }
    }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }

    // MARK: - Wire format

    /// Checks that every name and value can be written without breaking the framing.
    public func validate() throws {
        for f in fields {
            if f.name.isEmpty { throw NATSError.invalidHeader("empty header name") }
            for b in f.name.utf8 where b == UInt8(ascii: ":") || b <= 32 || b == 127 {
                throw NATSError.invalidHeader("name '\(f.name)' contains ':', a space or a control character")
            }
            for b in f.value.utf8 where b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n") {
                throw NATSError.invalidHeader("value of '\(f.name)' contains CR or LF")
            }
        }
        if let s = status, !(100...999).contains(s) { throw NATSError.invalidHeader("status \(s) is not three digits") }
        if let d = statusDescription, d.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
            throw NATSError.invalidHeader("status description contains CR or LF")
        }
    }

    /// Number of bytes `write(into:)` produces.
    public var encodedByteCount: Int {
        var n = 10 + 2  // "NATS/1.0\r\n" + final "\r\n"
        if let s = status {
            n += 1 + String(s).utf8.count
            if let d = statusDescription, !d.isEmpty { n += 1 + d.utf8.count }
        }
        for f in fields { n += f.name.utf8.count + 2 + f.value.utf8.count + 2 }
        return n
    }

    /// Writes the header block, `NATS/1.0 ...\r\n` through the blank line. Call `validate()` first.
    @discardableResult
    public func write(into buffer: inout ByteBuffer) -> Int {
        var n = buffer.writeStaticString("NATS/1.0")
        if let s = status {
            n += buffer.writeStaticString(" ") + buffer.writeString(String(s))
            if let d = statusDescription, !d.isEmpty { n += buffer.writeStaticString(" ") + buffer.writeString(d) }
        }
        n += buffer.writeStaticString("\r\n")
        for f in fields {
            n += buffer.writeString(f.name) + buffer.writeStaticString(": ")
            n += buffer.writeString(f.value) + buffer.writeStaticString("\r\n")
        }
        n += buffer.writeStaticString("\r\n")
        return n
    }

    /// Parses a header block as it appears in HMSG (from `NATS/1.0` through the blank line).
    public static func parse(_ bytes: ByteBuffer) throws -> NATSHeaders {
        var lines = Self.splitLines(bytes.readableBytesView)
        guard !lines.isEmpty else { throw NATSError.protocolError("empty header block") }
        var headers = NATSHeaders()
        try headers.parseStatusLine(lines.removeFirst())
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex else {
                throw NATSError.protocolError("header line without name: '\(String(decoding: line, as: UTF8.self))'")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            var valueBytes = line[line.index(after: colon)...]
            while let b = valueBytes.first, b == 32 || b == 9 { valueBytes = valueBytes.dropFirst() }
            while let b = valueBytes.last, b == 32 || b == 9 { valueBytes = valueBytes.dropLast() }
            headers.append(name, String(decoding: valueBytes, as: UTF8.self))
        }
        return headers
    }

    private mutating func parseStatusLine(_ line: ArraySlice<UInt8>) throws {
        let prefix = Array("NATS/1.0".utf8)
        guard line.starts(with: prefix) else {
            throw NATSError.protocolError("header block does not start with NATS/1.0")
        }
        var rest = line.dropFirst(prefix.count)
        while let b = rest.first, b == 32 || b == 9 { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return }
        // Positional, like nats.py: three digits, then the rest of the line is the description.
        let code = rest.prefix(3)
        guard code.count == 3, code.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(String(decoding: code, as: UTF8.self)) else {
            throw NATSError.protocolError("bad status in '\(String(decoding: line, as: UTF8.self))'")
        }
        status = value
        var desc = rest.dropFirst(3)
        while let b = desc.first, b == 32 || b == 9 { desc = desc.dropFirst() }
        while let b = desc.last, b == 32 || b == 9 { desc = desc.dropLast() }
        if !desc.isEmpty { statusDescription = String(decoding: desc, as: UTF8.self) }
    }

    /// Splits on CRLF (a bare LF is tolerated); the final blank line yields an empty slice.
    private static func splitLines(_ view: ByteBufferView) -> [ArraySlice<UInt8>] {
        let bytes = Array(view)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for i in 0..<bytes.count where bytes[i] == 10 {
            var end = i
            if end > start && bytes[end - 1] == 13 { end -= 1 }
            lines.append(bytes[start..<end])
            start = i + 1
        }
        if start < bytes.count { lines.append(bytes[start...]) }
        return lines
    }
}
