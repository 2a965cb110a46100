/*
 * crc32c.h — CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), the checksum of every frame
 * on the wire and every record on disk.
 *
 * Castagnoli rather than the zlib CRC-32 because x86-64 computes it in hardware (SSE4.2
 * `crc32`), and it detects more error patterns at our frame sizes (Castagnoli 1993).
 *
 * Conventions, as in iSCSI, ext4 and LevelDB: the initial value and the final value are
 * inverted inside the function, so a checksum starts at 0 and is extended incrementally:
 *
 *     rk_crc32c(rk_crc32c(0, a, n), b, m) == rk_crc32c(0, a || b, n + m)
 *
 * Check value: rk_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef RK_CRC32C_H
#define RK_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) with len bytes of buf (borrowed; may be NULL when len == 0). Uses
 * the SSE4.2 instruction when the CPU has it, else rk_crc32c_sw. */
uint32_t rk_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table-driven (slicing-by-8) implementation. Same contract as rk_crc32c; exposed
 * so that tests can compare the two paths. */
uint32_t rk_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* True when rk_crc32c uses the hardware instruction on this CPU. */
bool rk_crc32c_hw_available(void);

#endif
