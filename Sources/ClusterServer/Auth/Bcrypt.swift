/// bcrypt password hashes (`$2a$`, `$2b$`, `$2y$`), as nats-server accepts them in config files.
///
/// Pure: no I/O, no randomness (hashing takes the salt as input). The cost is exponential on
/// purpose: verifying a cost-11 hash takes tens of milliseconds, so callers keep it off the
/// event loops.
public enum Bcrypt {
    /// Why a string is not a usable bcrypt hash.
    public enum HashError: Error, Equatable {
        case notBcrypt
        case badCost
        case badEncoding
    }

    /// A parsed `$2b$<cost>$<22-char salt><31-char hash>` string.
    public struct Hash: Equatable, Sendable {
        public var version: String
        public var cost: Int
        /// The 16 salt bytes.
        public var salt: [UInt8]
        /// The 23 hash bytes.
        public var digest: [UInt8]
    }

    /// True when `text` looks like a bcrypt hash (nats-server treats such passwords as hashes).
    public static func isHash(_ text: String) -> Bool {
        text.hasPrefix("$2a$") || text.hasPrefix("$2b$") || text.hasPrefix("$2y$")
    }

    public static func parse(_ text: String) throws -> Hash {
        let b = Array(text.utf8)
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"), b[3] == UInt8(ascii: "$"),
              [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(b[2]),
              b[6] == UInt8(ascii: "$") else { throw HashError.notBcrypt }
        guard let tens = digit(b[4]), let ones = digit(b[5]) else { throw HashError.badCost }
        let cost = tens * 10 + ones
        guard (4...31).contains(cost) else { throw HashError.badCost }
        guard let salt = decode(b[7..<29], count: 16), let digest = decode(b[29..<60], count: 23) else {
            throw HashError.badEncoding
        }
        return Hash(version: String(UnicodeScalar(b[2])), cost: cost, salt: salt, digest: digest)
    }

    /// The full hash string of `password` with the given 16-byte salt and cost (4...31).
    public static func hash(_ password: String, salt: [UInt8], cost: Int, version: String = "b") -> String {
        precondition(salt.count == 16 && (4...31).contains(cost))
        let digest = compute(Array(password.utf8), salt: salt, cost: cost)
        return "$2\(version)$" + (cost < 10 ? "0" : "") + "\(cost)$" + encode(salt) + encode(digest)
    }

    /// True when `password` matches the bcrypt hash `stored`; false for any malformed hash.
    public static func verify(_ password: String, against stored: String) -> Bool {
        guard let h = try? parse(stored) else { return false }
        let digest = compute(Array(password.utf8), salt: h.salt, cost: h.cost)
        var diff: UInt8 = 0
        for i in 0..<23 { diff |= digest[i] ^ h.digest[i] }
        return diff == 0
    }

    // MARK: - EksBlowfish

    /// The 23-byte bcrypt digest. The key is the password plus a NUL; Blowfish only ever uses
    /// its first 72 bytes (18 subkey words), which is bcrypt's documented length limit.
    static func compute(_ password: [UInt8], salt: [UInt8], cost: Int) -> [UInt8] {
        var key = password
        key.append(0)
        if key.count > 72 { key.removeLast(key.count - 72) }
        var state = BlowfishState()
        state.expand(key: key, salt: salt)
        let rounds = UInt64(1) << UInt64(cost)
        var i: UInt64 = 0
        while i < rounds {
            state.expand(key: key, salt: nil)
            state.expand(key: salt, salt: nil)
            i += 1
        }
        // "OrpheanBeholderScryDoubt", encrypted 64 times.
        var text: [UInt32] = [0x4F72_7068, 0x6561_6E42, 0x6568_6F6C, 0x6465_7253, 0x6372_7944, 0x6F75_6274]
        for _ in 0..<64 {
            for j in stride(from: 0, to: 6, by: 2) {
                (text[j], text[j + 1]) = state.encrypt(text[j], text[j + 1])
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(24)
        for w in text {
            out.append(UInt8(w >> 24))
            out.append(UInt8(truncatingIfNeeded: w >> 16))
            out.append(UInt8(truncatingIfNeeded: w >> 8))
            out.append(UInt8(truncatingIfNeeded: w))
        }
        out.removeLast()
        return out
    }

    // MARK: - bcrypt's base64 (own alphabet, no padding)

    private static let alphabet = Array("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
    private static let reverse: [Int8] = {
        var r = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { r[Int(c)] = Int8(i) }
        return r
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i])
            let b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(alphabet[b0 >> 2])
            out.append(alphabet[((b0 & 0x03) << 4) | (b1 >> 4)])
            if i + 1 < bytes.count { out.append(alphabet[((b1 & 0x0F) << 2) | (b2 >> 6)]) }
            if i + 2 < bytes.count { out.append(alphabet[b2 & 0x3F]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes exactly `count` bytes; nil on a character outside the alphabet.
    static func decode(_ chars: ArraySlice<UInt8>, count: Int) -> [UInt8]? {
        var values: [Int] = []
        for c in chars {
            let v = reverse[Int(c)]
            if v < 0 { return nil }
            values.append(Int(v))
        }
        var out: [UInt8] = []
        var i = 0
        while out.count < count, i + 1 < values.count {
            out.append(UInt8(truncatingIfNeeded: (values[i] << 2) | (values[i + 1] >> 4)))
            if out.count < count, i + 2 < values.count {
                out.append(UInt8(truncatingIfNeeded: ((values[i + 1] & 0x0F) << 4) | (values[i + 2] >> 2)))
            }
            if out.count < count, i + 3 < values.count {
                out.append(UInt8(truncatingIfNeeded: ((values[i + 2] & 0x03) << 6) | values[i + 3]))
            }
            i += 4
        }
        return out.count == count ? out : nil
    }

    private static func digit(_ c: UInt8) -> Int? {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? Int(c - UInt8(ascii: "0")) : nil
    }
}

/// Blowfish subkeys being expanded by bcrypt's key schedule.
struct BlowfishState {
    var p = BlowfishTables.p
    var s = BlowfishTables.s

    /// Blowfish's F on raw pointers: the S-box indices are bytes, always in range, so the
    /// hot loop skips bounds checks.
    @inline(__always)
    private static func f(_ x: UInt32, _ s: UnsafeMutablePointer<UInt32>) -> UInt32 {
        let a = s[Int(x >> 24)]
        let b = s[256 + Int((x >> 16) & 0xFF)]
        let c = s[512 + Int((x >> 8) & 0xFF)]
        let d = s[768 + Int(x & 0xFF)]
        return ((a &+ b) ^ c) &+ d
    }

    mutating func encrypt(_ left: UInt32, _ right: UInt32) -> (UInt32, UInt32) {
        var l = left, r = right
        p.withUnsafeMutableBufferPointer { pp in
            s.withUnsafeMutableBufferPointer { sp in
                Self.encryptBlock(&l, &r, pp, sp)
            }
        }
        return (l, r)
    }

    @inline(__always)
    private static func encryptBlock(_ l: inout UInt32, _ r: inout UInt32,
                                     _ pp: UnsafeMutableBufferPointer<UInt32>, _ sp: UnsafeMutableBufferPointer<UInt32>) {
        // Both buffers have fixed sizes (18 and 1024 words): checked once here.
        precondition(pp.count == 18 && sp.count == 1024)
        let p = pp.baseAddress!, s = sp.baseAddress!
        var xl = l, xr = r
        var i = 0
        while i < 16 {
            xl ^= p[i]
            xr ^= f(xl, s)
            xr ^= p[i + 1]
            xl ^= f(xr, s)
            i += 2
        }
        l = xr ^ p[17]
        r = xl ^ p[16]
    }

    /// Blowfish's key schedule with bcrypt's salt twist: `salt` nil is the plain schedule.
    mutating func expand(key: [UInt8], salt: [UInt8]?) {
        var keyPos = 0
        var saltPos = 0
        func word(_ bytes: [UInt8], _ pos: inout Int) -> UInt32 {
            var w: UInt32 = 0
            for _ in 0..<4 {
                w = (w << 8) | UInt32(bytes[pos])
                pos = (pos + 1) % bytes.count
            }
            return w
        }
        for i in 0..<18 { p[i] ^= word(key, &keyPos) }
        var l: UInt32 = 0, r: UInt32 = 0
        p.withUnsafeMutableBufferPointer { pp in
            s.withUnsafeMutableBufferPointer { sp in
                var i = 0
                while i < 18 {
                    if let salt {
                        l ^= word(salt, &saltPos)
                        r ^= word(salt, &saltPos)
                    }
                    Self.encryptBlock(&l, &r, pp, sp)
                    pp[i] = l
                    pp[i + 1] = r
                    i += 2
                }
                i = 0
                while i < 1024 {
                    if let salt {
                        l ^= word(salt, &saltPos)
                        r ^= word(salt, &saltPos)
                    }
                    Self.encryptBlock(&l, &r, pp, sp)
                    sp[i] = l
                    sp[i + 1] = r
                    i += 2
                }
            }
        }
    }
}
