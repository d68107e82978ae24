import CLZ4

/// Thin, bounds-checked wrapper over liblz4's block API.
public enum LZ4Codec {
    /// Compresses `source`; returns nil when the result would not be smaller (store raw then).
    public static func compress(_ source: UnsafeRawBufferPointer) -> [UInt8]? {
        guard source.count > 0, source.count < Int(Int32.max) else { return nil }
        let bound = Int(LZ4_compressBound(Int32(source.count)))
        var written: Int32 = 0
        let out = [UInt8](unsafeUninitializedCapacity: bound) { dst, count in
            written = LZ4_compress_default(
                UnsafeRawPointer(source.baseAddress!).assumingMemoryBound(to: CChar.self),
                UnsafeMutableRawPointer(dst.baseAddress!).assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(bound))
            count = max(0, Int(written))
        }
        guard written > 0, Int(written) < source.count else { return nil }
        return out
    }

    /// Decompresses into exactly `rawSize` bytes; nil when the input is malformed.
    public static func decompress(_ source: UnsafeRawBufferPointer, rawSize: Int) -> [UInt8]? {
        guard rawSize >= 0, rawSize < Int(Int32.max), source.count < Int(Int32.max) else { return nil }
        if rawSize == 0 { return source.count == 0 ? [] : nil }
        guard let base = source.baseAddress else { return nil }
        var out = [UInt8](repeating: 0, count: rawSize)
        let n = out.withUnsafeMutableBytes { dst -> Int32 in
            LZ4_decompress_safe(
                base.assumingMemoryBound(to: CChar.self),
                dst.baseAddress!.assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(rawSize))
        }
        return Int(n) == rawSize ? out : nil
    }
}
