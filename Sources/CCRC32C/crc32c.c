// Hardware CRC32C. Only this function is compiled for SSE4.2 (function-level target), so the
// rest of the binary still runs on any x86-64 and the caller checks the CPU first.
#include "crc32c.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int ccrc32c_hardware_available(void) {
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t ccrc32c_hardware(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t c = (uint32_t)~crc;
    // Bytes up to an 8-byte boundary, then whole words (memcpy: no unaligned-access UB).
    while (n > 0 && ((uintptr_t)b & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = _mm_crc32_u64(c, w);
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    return ~(uint32_t)c;
}

#else

// No hardware path on this architecture yet (the Swift table-driven path is used). The
// function still computes the right value, bit by bit, should it ever be called.
int ccrc32c_hardware_available(void) {
    return 0;
}

uint32_t ccrc32c_hardware(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint32_t c = ~crc;
    while (n-- > 0) {
        c ^= *b++;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

#endif
