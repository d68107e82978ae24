import NIOCore

/// A message carried over a route (`RMSG`, or `HMSG` when it has headers).
public struct RouteMessage: Equatable {
    public var account: String
    public var subject: String
    public var reply: String?
    /// The queue groups the sender picked this node for; empty = plain interest only.
    public var queues: [String]
    public var headers: ByteBuffer?
    public var payload: ByteBuffer
}

/// One operation received on a route connection. Buffers are slices of the read buffer.
public enum RouteOp: Equatable {
    case info(json: ByteBuffer)
    case connect(json: ByteBuffer)
    case ping
    case pong
    case ok
    case err(String)
    /// `RS+ <account> <subject> [<queue> <weight>]`.
    case subscribe(account: String, subject: String, queue: String?, weight: Int)
    /// `RS- <account> <subject> [<queue>]`.
    case unsubscribe(account: String, subject: String, queue: String?)
    case message(RouteMessage)
    /// `XMSG <namespace> <#bytes>`: an opaque frame for a subsystem multiplexed on the route
    /// (the extension point for Raft traffic); dispatched by namespace.
    case extensionFrame(namespace: String, payload: ByteBuffer)
}

/// Why a route stream could not be decoded. Every case closes the route.
public enum RouteProtocolError: Error, Equatable {
    /// An op that is not a route op (e.g. a client's `PUB` on the route port).
    case unknownOperation(String)
    case maxControlLineExceeded
    case maxPayloadExceeded
    case badArguments(String)
    case missingPayloadTerminator
}

/// Decodes the route protocol from a byte stream split anywhere; same shape as
/// `ClientProtocolParser` (`next(&buffer)` returns an op or nil when more bytes are needed).
/// Pure: no I/O, no server state.
public struct RouteProtocolParser {
    private enum Pending {
        case message(account: String, subject: String, reply: String?, queues: [String])
        case extensionFrame(namespace: String)
    }

    private enum State {
        case controlLine
        case payload(Pending, headerBytes: Int?, totalBytes: Int)
    }

    /// Routes carry many queue names per RMSG, so the line limit is larger than a client's.
    public var maxControlLine: Int
    public var maxPayload: Int
    private var state: State = .controlLine

    public init(maxControlLine: Int = 64 * 1024, maxPayload: Int = 64 * 1_048_576) {
        precondition(maxControlLine > 0 && maxPayload >= 0)
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    public var isIdle: Bool {
        if case .controlLine = state { return true }
        return false
    }

    public mutating func next(_ buffer: inout ByteBuffer) throws -> RouteOp? {
        while true {
            switch state {
            case .controlLine:
                guard let line = try takeLine(&buffer) else { return nil }
                if let op = try parseControlLine(line) { return op }
            case let .payload(pending, headerBytes, total):
                let available = buffer.readableBytes
                if available > total,
                   buffer.getInteger(at: buffer.readerIndex + total, as: UInt8.self) != UInt8(ascii: "\r") {
                    throw RouteProtocolError.missingPayloadTerminator
                }
                guard available >= total + 2 else { return nil }
                guard buffer.getInteger(at: buffer.readerIndex + total + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
                    throw RouteProtocolError.missingPayloadTerminator
                }
                let headers = headerBytes.map { buffer.readSlice(length: $0)! }
                let payload = buffer.readSlice(length: total - (headerBytes ?? 0))!
                buffer.moveReaderIndex(forwardBy: 2)
                state = .controlLine
                switch pending {
                case let .message(account, subject, reply, queues):
                    return .message(RouteMessage(account: account, subject: subject, reply: reply, queues: queues,
                                                 headers: headers, payload: payload))
                case let .extensionFrame(namespace):
                    return .extensionFrame(namespace: namespace, payload: payload)
                }
            }
        }
    }

    private func takeLine(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let nl = buffer.readableBytesView.firstIndex(of: 0x0A) else {
            if buffer.readableBytes > maxControlLine { throw RouteProtocolError.maxControlLineExceeded }
            return nil
        }
        let length = nl - buffer.readerIndex
        if length > maxControlLine { throw RouteProtocolError.maxControlLineExceeded }
        var line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    private enum Verb { case info, connect, ping, pong, ok, err, subscribe, unsubscribe, rmsg, hmsg, xmsg }

    /// Route verbs, the message ones first (the hot path).
    private static let verbs: [(name: [UInt8], verb: Verb)] = [
        (Array("RMSG".utf8), .rmsg), (Array("XMSG".utf8), .xmsg), (Array("HMSG".utf8), .hmsg),
        (Array("RS+".utf8), .subscribe), (Array("RS-".utf8), .unsubscribe), (Array("PING".utf8), .ping),
        (Array("PONG".utf8), .pong), (Array("INFO".utf8), .info), (Array("CONNECT".utf8), .connect),
        (Array("+OK".utf8), .ok), (Array("-ERR".utf8), .err),
    ]

    /// The verb spelled by `raw[op]` in any case; matched on the bytes, so no String is built
    /// or compared per line.
    private static func verb(_ raw: UnsafeRawBufferPointer, _ op: Range<Int>) -> Verb? {
        for (name, verb) in verbs where name.count == op.count {
            var k = 0
            while k < name.count {
                let c = raw[op.lowerBound + k]
                if (c >= 97 && c <= 122 ? c - 32 : c) != name[k] { break }
                k += 1
            }
            if k == name.count { return verb }
        }
        return nil
    }

    private mutating func parseControlLine(_ line: ByteBuffer) throws -> RouteOp? {
        // Tokenize over the line's bytes in place: RMSG is the hot path, so no byte copy.
        let (verb, args, opEnd): (Verb?, [String], Int) = try line.withUnsafeReadableBytes { raw in
            var ranges: [Range<Int>] = []
            ranges.reserveCapacity(8)
            var i = 0
            let n = raw.count
            while i < n {
                while i < n && (raw[i] == 32 || raw[i] == 9) { i += 1 }
                if i >= n { break }
                let start = i
                while i < n && raw[i] != 32 && raw[i] != 9 { i += 1 }
                ranges.append(start..<i)
            }
            guard let first = raw.first, first != 32, first != 9, let op = ranges.first else {
                throw RouteProtocolError.unknownOperation("")
            }
            let verb = Self.verb(raw, op)
            // JSON or text follows these (and an unknown verb is refused): no arguments to split.
            let wholeRest = verb == .info || verb == .connect || verb == .err || verb == nil
            let args = wholeRest ? [] : ranges.dropFirst().map {
                String(decoding: UnsafeRawBufferPointer(rebasing: raw[$0]), as: UTF8.self)
            }
            return (verb, args, op.upperBound)
        }
        guard let verb else {
            throw RouteProtocolError.unknownOperation(String(decoding: line.readableBytesView.prefix(opEnd), as: UTF8.self))
        }
        switch verb {
        case .info, .connect:
            var rest = line
            rest.moveReaderIndex(forwardBy: opEnd)
            let json = ClientProtocolParser.trimmed(rest)
            return verb == .info ? .info(json: json) : .connect(json: json)
        case .ping: return .ping
        case .pong: return .pong
        case .ok: return .ok
        case .err:
            var rest = line
            rest.moveReaderIndex(forwardBy: opEnd)
            var text = String(buffer: ClientProtocolParser.trimmed(rest))
            if text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") { text = String(text.dropFirst().dropLast()) }
            return .err(text)
        case .subscribe:
            guard (2...4).contains(args.count) else { throw RouteProtocolError.badArguments("RS+: wrong number of arguments") }
            var weight = 1
            if args.count == 4 {
                guard let w = Self.parseSize(args[3]), w > 0 else { throw RouteProtocolError.badArguments("RS+: bad queue weight") }
                weight = w
            }
            return .subscribe(account: args[0], subject: args[1], queue: args.count >= 3 ? args[2] : nil, weight: weight)
        case .unsubscribe:
            guard (2...3).contains(args.count) else { throw RouteProtocolError.badArguments("RS-: wrong number of arguments") }
            return .unsubscribe(account: args[0], subject: args[1], queue: args.count == 3 ? args[2] : nil)
        case .rmsg: return try startMessage(args, hasHeaders: false)
        case .hmsg: return try startMessage(args, hasHeaders: true)
        case .xmsg:
            guard args.count == 2 else { throw RouteProtocolError.badArguments("XMSG: wrong number of arguments") }
            guard let total = Self.parseSize(args[1]) else { throw RouteProtocolError.badArguments("XMSG: bad size") }
            if total > maxPayload { throw RouteProtocolError.maxPayloadExceeded }
            state = .payload(.extensionFrame(namespace: args[0]), headerBytes: nil, totalBytes: total)
            return nil
        }
    }

    /// `RMSG <acc> <subject> [+ <reply> <q>... | | <q>... | <reply>] <#bytes>`; HMSG has
    /// `<#hdr> <#total>` instead of `<#bytes>`.
    private mutating func startMessage(_ args: [String], hasHeaders: Bool) throws -> RouteOp? {
        let op = hasHeaders ? "HMSG" : "RMSG"
        let sizes = hasHeaders ? 2 : 1
        guard args.count >= 2 + sizes else { throw RouteProtocolError.badArguments("\(op): wrong number of arguments") }
        guard let total = Self.parseSize(args[args.count - 1]) else { throw RouteProtocolError.badArguments("\(op): bad size") }
        var headerBytes: Int?
        if hasHeaders {
            guard let h = Self.parseSize(args[args.count - 2]), h <= total else {
                throw RouteProtocolError.badArguments("\(op): bad header size")
            }
            headerBytes = h
        }
        if total > maxPayload { throw RouteProtocolError.maxPayloadExceeded }
        let middle = args[2..<(args.count - sizes)]
        var reply: String?
        var queues: [String] = []
        if let marker = middle.first {
            switch marker {
            case "+":
                guard middle.count >= 3 else { throw RouteProtocolError.badArguments("\(op): '+' needs a reply and queues") }
                reply = middle[middle.startIndex + 1]
                queues = Array(middle.dropFirst(2))
            case "|":
                guard middle.count >= 2 else { throw RouteProtocolError.badArguments("\(op): '|' needs queues") }
                queues = Array(middle.dropFirst())
            default:
                guard middle.count == 1 else { throw RouteProtocolError.badArguments("\(op): wrong number of arguments") }
                reply = marker
            }
        }
        state = .payload(.message(account: args[0], subject: args[1], reply: reply, queues: queues),
                         headerBytes: headerBytes, totalBytes: total)
        return nil
    }

    static func parseSize(_ s: String) -> Int? {
        guard !s.isEmpty, s.utf8.count <= 18, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(s)
    }
}
