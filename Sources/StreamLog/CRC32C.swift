import CCRC32C

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the CPU's `crc32` instruction when it
/// has one (x86-64 SSE4.2, checked once at run time), else table-driven slicing-by-8.
///
/// Every block carries one so that a torn tail or a flipped bit is detected and localized.
public enum CRC32C {
    /// Whether `checksum` uses the CPU's CRC32C instruction (fixed for the process).
    public static let hardwareAvailable = ccrc32c_hardware_available() != 0

    /// Eight 256-entry tables: table k maps a byte that is k positions further back.
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// Checksum of `bytes`, continuing from `crc` (pass the previous result to chain parts).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return crc }
        if hardwareAvailable { return ccrc32c_hardware(crc, p, bytes.count) }
        return softwareChecksum(bytes, continuing: crc)
    }

    /// The portable table-driven path: the fallback, and the reference the hardware path is
    /// tested and benchmarked against. Same results as `checksum`.
    public static func softwareChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        guard var p = bytes.baseAddress, bytes.count > 0 else { return crc }
        var n = bytes.count
        flat.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            while n >= 8 {
                let lo = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: (p + 4).loadUnaligned(as: UInt32.self))
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                p += 8
                n -= 8
            }
            while n > 0 {
                c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                p += 1
                n -= 1
            }
        }
        return ~c
    }

    /// Checksum of a byte array (convenience for tests and small buffers).
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }
}
