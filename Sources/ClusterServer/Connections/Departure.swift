/// When a client connection of a stopping server is told to leave (pure logic, no I/O).
///
/// A connection closed with a request in flight costs the client its whole request timeout:
/// the request or its reply is lost with the socket. So from the start of a graceful stop the
/// server counts, per connection, the requests it forwarded (a publish whose reply subject the
/// client itself subscribes to) until their replies were delivered. Once the server wants the
/// client gone, the connection is told to leave at the first moment nothing is awaited — in
/// the same write as the last reply — or at the deadline (`forceLeave`). A client that sent a
/// request within `quietNanos` is not told while idle: it is likely about to send its next
/// request, which would cross the notice on the wire, reach this server and be answered on a
/// socket the client already left; it is told with that request's reply instead.
struct Departure: Equatable {
    /// Reply subjects awaited, with how many requests named each.
    private(set) var awaiting: [String: Int] = [:]
    /// The server asked this connection to leave (it is told as soon as nothing is awaited).
    private(set) var leaveRequested = false
    /// The leave notice was written; the client is expected to close and reconnect elsewhere.
    private(set) var told = false
    /// Requests counted at most; beyond that a flooding client gets no extra memory (its
    /// further requests are not waited for).
    static let maxTracked = 1024
    /// Monotonic nanoseconds of the client's last request (when the caller passes a time).
    private(set) var lastRequestNanos: UInt64?
    static let quietNanos: UInt64 = 200_000_000

    /// A request forwarded for the client; its reply will come to `reply`. `now`: monotonic
    /// nanoseconds, to tell a busy requester only with a reply (see `requestLeave`).
    mutating func requestSent(reply: String, now: UInt64? = nil) {
        if let now { lastRequestNanos = now }
        if let n = awaiting[reply] {
            awaiting[reply] = n + 1
        } else if awaiting.count < Self.maxTracked {
            awaiting[reply] = 1
        }
    }

    /// A forwarded request that nothing received: no reply will come. True when the leave
    /// notice should be written now.
    mutating func requestDropped(reply: String) -> Bool {
        if let n = awaiting[reply] { awaiting[reply] = n > 1 ? n - 1 : nil }
        return tellIfIdle()
    }

    /// A message was queued to the client; true when the leave notice should follow it now.
    mutating func delivered(subject: String) -> Bool {
        if let n = awaiting[subject] { awaiting[subject] = n > 1 ? n - 1 : nil }
        return tellIfIdle()
    }

    /// The server wants the client gone; true when it should be told now: nothing awaited,
    /// and no request within `quietNanos` before `now` (then it is told with its next reply,
    /// or by a later call once it was quiet that long).
    mutating func requestLeave(now: UInt64? = nil) -> Bool {
        leaveRequested = true
        if let now, let last = lastRequestNanos, now &- last < Self.quietNanos { return false }
        return tellIfIdle()
    }

    /// The deadline passed: true when the notice still has to be written.
    mutating func forceLeave() -> Bool {
        leaveRequested = true
        if told { return false }
        told = true
        return true
    }

    private mutating func tellIfIdle() -> Bool {
        guard leaveRequested, !told, awaiting.isEmpty else { return false }
        told = true
        return true
    }
}
