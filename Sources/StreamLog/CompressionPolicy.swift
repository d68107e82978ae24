/// Decides, block by block, whether an append tries LZ4. Incompressible data (random bytes,
/// already-compressed payloads) would otherwise be compressed on every append only for the
/// result to be thrown away or to save a few header bytes. After `missesBeforeBackoff` tried
/// blocks in a row that did not pay, only one block in `probeInterval` is tried; the first one
/// that pays again resets to trying every block. Pure counting (no clocks), so it is
/// deterministic. It only decides whether to try: whatever LZ4 returns smaller is stored as
/// before (the block's flag says compressed or raw), so reads are unaffected.
struct CompressionPolicy: Equatable {
    /// Tried blocks in a row that did not pay before backing off.
    static let missesBeforeBackoff = 8
    /// While backed off, one block in this many is tried.
    static let probeInterval = 32

    /// Tried blocks in a row that did not pay (saturates at `missesBeforeBackoff`).
    private(set) var misses = 0
    /// Blocks since the last try while backed off.
    private(set) var sinceProbe = 0

    var isBackedOff: Bool { misses >= Self.missesBeforeBackoff }

    /// Whether LZ4 pays for a block: it saves at least an eighth. Saving less (typically the
    /// record headers around random payloads) is not worth LZ4's time on every append and the
    /// decompression on every read.
    static func pays(rawSize: Int, compressedSize: Int?) -> Bool {
        guard let c = compressedSize, rawSize > 0 else { return false }
        return rawSize - c >= rawSize / 8
    }

    /// Whether to try compressing the next block. Counts the block while backed off, so call
    /// it exactly once per block.
    mutating func shouldTry() -> Bool {
        guard isBackedOff else { return true }
        sinceProbe += 1
        guard sinceProbe >= Self.probeInterval else { return false }
        sinceProbe = 0
        return true
    }

    /// Records a tried block's outcome: `compressedSize` is nil when LZ4 did not shrink it.
    mutating func record(rawSize: Int, compressedSize: Int?) {
        if Self.pays(rawSize: rawSize, compressedSize: compressedSize) {
            misses = 0
            sinceProbe = 0
        } else {
            misses = min(misses + 1, Self.missesBeforeBackoff)
        }
    }
}
