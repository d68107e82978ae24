/// NATS header blocks (`NATS/1.0[ status[ text]]\r\nName: value\r\n...\r\n`) as JetStream reads
/// and writes them. Lookups are case-sensitive like nats-server's `getHeader`.
enum NATSHeaderBlock {
    /// The value of the first `name:` field, trimmed; nil when absent or the block is malformed.
    static func value(_ name: String, in block: [UInt8]?) -> String? {
        guard let block, !block.isEmpty else { return nil }
        let key = Array(name.utf8)
        func lineEnd(from start: Int) -> Int {
            var e = start
            while e < block.count && !(block[e] == 13 && e + 1 < block.count && block[e + 1] == 10) { e += 1 }
            return e
        }
        var i = lineEnd(from: 0) + 2 // skip the version/status line
        while i < block.count {
            let end = lineEnd(from: i)
            if end == i { break }
            let line = block[i..<end]
            if line.count > key.count, line.starts(with: key), line[line.startIndex + key.count] == 58 {
                var v = line[(line.startIndex + key.count + 1)...]
                while let f = v.first, f == 32 || f == 9 { v = v.dropFirst() }
                while let l = v.last, l == 32 || l == 9 { v = v.dropLast() }
                return String(decoding: v, as: UTF8.self)
            }
            i = end + 2
        }
        return nil
    }

    /// Builds a block from fields, optionally with a status line (`NATS/1.0 404 No Messages`).
    static func make(status: String? = nil, _ fields: [(String, String)]) -> [UInt8] {
        var s = "NATS/1.0"
        if let status { s += " " + status }
        s += "\r\n"
        for (k, v) in fields { s += "\(k): \(v)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }

    /// Appends fields to an existing block (or makes a new one), keeping its status line and fields.
    static func appending(_ fields: [(String, String)], to block: [UInt8]?) -> [UInt8] {
        guard let block, block.count >= 12, block.suffix(4).elementsEqual([13, 10, 13, 10]) else {
            return make(fields)
        }
        var out = Array(block.dropLast(2))
        for (k, v) in fields { out += Array("\(k): \(v)\r\n".utf8) }
        out += [13, 10]
        return out
    }

    /// Removes the fields named in `names` (used for headers_only size bookkeeping and rewrites).
    static func removing(_ names: Set<String>, from block: [UInt8]?) -> [UInt8]? {
        guard let block, !block.isEmpty else { return block }
        let text = String(decoding: block, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        guard !lines.isEmpty else { return block }
        let head = lines.removeFirst()
        let kept = lines.filter { line in
            guard let colon = line.firstIndex(of: ":") else { return true }
            return !names.contains(String(line[..<colon]))
        }.filter { !$0.isEmpty }
        if kept.isEmpty && head == "NATS/1.0" { return nil }
        return Array((([head] + kept).joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }
}
