#ifndef CLUSTERD_CRC32C_H
#define CLUSTERD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC32C instruction this library uses (x86-64 SSE4.2), else 0.
/// The answer is fixed for the life of the process.
int ccrc32c_hardware_available(void);

/// CRC32C (Castagnoli) of `n` bytes at `p`, continuing from `crc` (0 to start; the
/// pre/post inversion is done here, so results chain like the Swift software path).
/// Only valid to call when `ccrc32c_hardware_available()` returned 1.
uint32_t ccrc32c_hardware(uint32_t crc, const void *p, size_t n);

#endif
