import StreamLog

/// A JetStream API refusal: the `error` object of a response, exactly as nats-server sends it
/// (`errors.json`). Clients branch on `errCode`, so each case keeps nats-server's number.
public struct JSAPIError: Error, Equatable, CustomStringConvertible {
    public let code: Int
    public let errCode: Int
    public let text: String

    public init(_ code: Int, _ errCode: Int, _ text: String) {
        self.code = code
        self.errCode = errCode
        self.text = text
    }

    public var description: String { "\(code)/\(errCode) \(text)" }

    /// An API response carrying only this error.
    var responseBody: [String: Any] { ["error": json] }
    var json: [String: Any] { ["code": code, "err_code": errCode, "description": text] }
    /// The error object in nats-server's field order.
    var jsonText: String { "{\"code\":\(code),\"err_code\":\(errCode),\"description\":\(JSJSON.string(text))}" }

    /// 503/10008. nats-server says "JetStream system temporarily unavailable" whatever is
    /// unavailable, which sends users looking at the whole system when one stream is electing
    /// (nats.go#839). clusterd keeps the code (clients retry on it) and those words, and adds
    /// what is unavailable.
    static func unavailable(_ what: Unavailable) -> JSAPIError {
        .init(503, 10008, "JetStream system temporarily unavailable: " + what.text)
    }

    /// What a 503/10008 names.
    enum Unavailable: Equatable {
        /// No meta leader is known here.
        case noMetaLeader
        /// The meta leadership moved (or a change raced one made under another leader) while
        /// the request was handled; a retry reaches the new leader.
        case metaLeaderChanged
        /// This server was removed from the meta group.
        case removedFromCluster
        /// The stream has no leader that can take the request now.
        case streamLeader(String)
        /// This server has this many API requests queued already (`APIBacklog`).
        case apiBacklog(Int)
        /// This server's queue of publishes is full (`JetStreamService.enqueueIngest`).
        case publishBacklog

        var text: String {
            switch self {
            case .noMetaLeader: return "no JetStream meta leader (an election, or no quorum of the meta group)"
            case .metaLeaderChanged: return "the JetStream meta leader stepped down or changed, retry"
            case .removedFromCluster: return "this server was removed from the JetStream cluster"
            case .streamLeader(let s): return "stream '\(s)' has no leader (an election, or no quorum of its replicas)"
            case .apiBacklog(let n): return "this server has \(n) API requests queued, retry"
            case .publishBacklog: return "this server has too many publishes queued, retry"
            }
        }
    }

    static func badRequest(_ why: String = "bad request") -> JSAPIError { .init(400, 10003, why) }
    static func invalidJSON(_ why: String) -> JSAPIError { .init(400, 10025, "invalid JSON: \(why)") }
    /// An enum value Go's JSON decoding refused: its text quotes the raw token (`%q` of `"x"`).
    static func cannotUnmarshal(_ value: String) -> JSAPIError { invalidJSON("can not unmarshal \"\\\"\(value)\\\"\"") }
    static let notEnabled = JSAPIError(503, 10076, "JetStream not enabled")
    static let streamNotFound = JSAPIError(404, 10059, "stream not found")
    static let streamNameExists = JSAPIError(400, 10058, "stream name already in use with a different configuration")
    static let subjectsOverlap = JSAPIError(400, 10065, "subjects overlap with an existing stream")
    static func streamConfig(_ why: String) -> JSAPIError { .init(500, 10052, why) }
    static let replicasNotSupported = JSAPIError(500, 10074, "replicas > 1 not supported in non-clustered mode")
    static let streamNameMismatch = JSAPIError(400, 10056, "stream name in subject does not match request")
    static let maxConsumers = JSAPIError(400, 10026, "maximum consumers limit reached")
    static func streamUpdate(_ why: String) -> JSAPIError { .init(500, 10052, why) }
    static let consumerNotFound = JSAPIError(404, 10014, "consumer not found")
    static let consumerNameExists = JSAPIError(400, 10013, "consumer name already in use")
    static let consumerExists = JSAPIError(400, 10148, "consumer already exists")
    static let consumerDoesNotExist = JSAPIError(400, 10149, "consumer does not exist")
    static func consumerCreate(_ why: String) -> JSAPIError { .init(500, 10012, why) }
    static let noMessage = JSAPIError(404, 10037, "no message found")
    static let expectedStream = JSAPIError(400, 10060, "expected stream does not match")
    static func wrongLastSequence(_ seq: UInt64) -> JSAPIError { .init(400, 10071, "wrong last sequence: \(seq)") }
    static func wrongLastMsgID(_ id: String) -> JSAPIError { .init(400, 10070, "wrong last msg ID: \(id)") }
    static let messageTooLarge = JSAPIError(400, 10054, "message size exceeds maximum allowed")
    static func storeFailed(_ why: String) -> JSAPIError { .init(503, 10077, why) }
    static let sealed = JSAPIError(400, 10109, "invalid operation on sealed stream")
    /// A publish to a stream whose restore is still putting the archive's messages in.
    static let beingRestored = JSAPIError(503, 10062, "stream is being restored")
    static func rollupFailed(_ why: String) -> JSAPIError { .init(500, 10111, why) }
    static let invalidTTL = JSAPIError(400, 10165, "invalid per-message TTL")
    static let msgTTLDisabled = JSAPIError(400, 10166, "per-message TTL is disabled")
    static let lastSubjectSeqSubjectWithoutSeq = JSAPIError(
        400, 10193, "expected last subject sequence subject requires expected last subject sequence")
    static let streamSourceHeader = JSAPIError(400, 10227, "message header Nats-Stream-Source is reserved")
    static func apiLevel(_ level: Int) -> JSAPIError { .init(412, 10185, "JetStream minimum api level required") }
    static let invalidStreamName = JSAPIError(400, 10128, "Stream name can not contain path separators")
    static let deleteDenied = JSAPIError(500, 10057, "message delete not permitted")
    /// A message delete that removed nothing: past the stream's end nats-server's store says EOF.
    static func messageNotDeleted(_ seq: UInt64, lastSeq: UInt64) -> JSAPIError {
        JSAPIError(500, 10057, seq > lastSeq ? "stream store EOF" : "no message found")
    }
    static let purgeDenied = JSAPIError(500, 10110, "stream purge not permitted")
    static func storageResources(_ why: String) -> JSAPIError { .init(500, 10047, why) }
    static let durableNameMismatch = JSAPIError(400, 10017, "consumer name in subject does not match durable name in request")
    static let durableRequired = JSAPIError(400, 10016, "consumer expected to be durable but no durable name set in subject")
    static let ephemeralWithDurable = JSAPIError(400, 10019, "consumer expected to be ephemeral but detected a durable name set in subject")
    static let ephemeralWithDurableInSubject = JSAPIError(400, 10020, "consumer expected to be ephemeral but a durable name was set in request")
    static let filterMismatch = JSAPIError(400, 10131, "Consumer create request did not match filtered subject from create subject")
    static let filterSubjectsInFilteredCreate = JSAPIError(400, 10137, "Consumer Filter Subjects cannot be used with create subject that includes a filter")
    static let consumerNameInvalid = JSAPIError(400, 10127, "Consumer name can not contain path separators")
    static let durableNameInvalid = JSAPIError(400, 10103, "durable name can not contain '.', '*', '>'")
    static let consumerNameTooLong = JSAPIError(400, 10102, "consumer name is too long, maximum allowed is 255")
    static let workQueueOverlap = JSAPIError(400, 10099, "filtered consumer not unique on workqueue stream")
    static let workQueueDeliverAll = JSAPIError(400, 10100, "consumer must be deliver all on workqueue stream")
    static let workQueueAckExplicit = JSAPIError(400, 10101, "workqueue stream requires explicit ack")
    static let consumerDescriptionTooLong = JSAPIError(400, 10107, "consumer description is too long, maximum allowed is 4096")
    static let streamDescriptionTooLong = JSAPIError(500, 10052, "stream description is too long, maximum allowed is 4096")
}

/// Errors of the stored-message layer that the publish path turns into API errors.
enum StoreError: Error, Equatable {
    case maxMessages, maxBytes, maxMessagesPerSubject, messageTooLarge, io(String)
    /// The disk is full (ENOSPC, EDQUOT): nothing was stored; may work again later.
    case noSpace(String)
    /// A block the operation had to read is corrupt. Not `isLocal`: the replica's repair
    /// (a copy from the leader) fixes that block, and stopping the replica would keep it from
    /// running.
    case corrupt(String)

    /// A file system failure: a full disk told apart (it may pass), anything else an I/O error.
    init(_ e: FileSystemError) {
        if case .noSpace = e { self = .noSpace("\(e)") } else { self = .io("\(e)") }
    }

    /// A failure of this node's storage, not a decision about the message: another replica
    /// with the same state stores it (`Stream.PublishOutcome.localFailure`).
    var isLocal: Bool {
        switch self {
        case .io, .noSpace: return true
        default: return false
        }
    }

    var apiError: JSAPIError {
        switch self {
        case .maxMessages: return .storeFailed("maximum messages exceeded")
        case .maxBytes: return .storeFailed("maximum bytes exceeded")
        case .maxMessagesPerSubject: return .storeFailed("maximum messages per subject exceeded")
        case .messageTooLarge: return .messageTooLarge
        case .io(let why), .noSpace(let why), .corrupt(let why):
            return .storageResources("insufficient storage resources available: \(why)")
        }
    }
}
